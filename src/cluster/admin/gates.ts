/**
 * The gates: an operation refuses to start on a cluster it could make worse, and says which
 * problem stopped it and how to fix it. The CLI exits with code 2 on a refusal.
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import { readClusterState, type ClusterState } from "./cluster-state.ts";
import type { NodePool } from "./node-pool.ts";
import { findProblems, type Problem, type ProblemKind } from "./problems.ts";
import type { Topology } from "../topology.ts";

export const GATE_REFUSED = ErrorCodes.GATE;

/** True for the error a gate throws (the CLI maps it to exit code 2). */
export const isGateRefusal = (err: unknown): err is DredisError =>
  err instanceof DredisError && err.code === GATE_REFUSED;

/**
 * Throws a refusal listing every problem whose kind `tolerated` does not accept. `tolerated`
 * may look at the problem itself (an open slot an interrupted migration left is resumable).
 */
export function refuseOnProblems(
  operation: string,
  problems: readonly Problem[],
  tolerated: (problem: Problem) => boolean,
): void {
  const blocking = problems.filter((p) => !tolerated(p));
  if (blocking.length === 0) return;
  const lines = blocking.map((p) => `  - ${p.message}\n    fix: ${p.fix}`);
  throw new DredisError(
    GATE_REFUSED,
    `refusing to ${operation}: ${blocking.length} problem(s)\n${lines.join("\n")}`,
  );
}

export const kinds =
  (...allowed: ProblemKind[]) =>
  (problem: Problem): boolean =>
    allowed.includes(problem.kind);

/**
 * Reads the cluster, re-reading for up to `settleMs` while the only problems are the kind
 * gossip clears by itself (views that have not converged yet), so a gate does not refuse on
 * the echo of the previous step.
 */
export async function readSettled(
  pool: NodePool,
  topology: Topology,
  settleMs = 5_000,
): Promise<{ state: ClusterState; problems: Problem[] }> {
  const deadline = Date.now() + settleMs;
  while (true) {
    const state = await readClusterState(pool, topology);
    const problems = findProblems(state);
    const transient = problems.some((p) => p.kind === "disagreement" || p.kind === "cluster-state");
    if (!transient || Date.now() >= deadline) return { state, problems };
    await new Promise((r) => setTimeout(r, 200));
  }
}
