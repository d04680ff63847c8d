/**
 * Waits for the cluster to converge after a change: every node agrees on the slot owners, no
 * slot is open and every node reports cluster_state:ok.
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import type { Topology } from "../topology.ts";
import { readClusterState, type ClusterState } from "./cluster-state.ts";
import type { NodePool } from "./node-pool.ts";
import { findProblems, type Problem, type ProblemKind } from "./problems.ts";

const CONVERGENCE: ProblemKind[] = [
  "disagreement",
  "cluster-state",
  "open-slot",
  "not-joined",
  "replica-detached",
];

/** Polls until none of the `awaited` problems (by default: convergence) remain; throws naming what is left on timeout. */
export async function waitForAgreement(
  pool: NodePool,
  topology: Topology,
  timeoutMs: number,
  signal?: AbortSignal,
  awaited: readonly ProblemKind[] = CONVERGENCE,
): Promise<ClusterState> {
  const deadline = Date.now() + timeoutMs;
  let remaining: Problem[] = [];
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    const state = await readClusterState(pool, topology);
    remaining = findProblems(state).filter((p) => awaited.includes(p.kind));
    if (remaining.length === 0) return state;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new DredisError(
    ErrorCodes.NOT_CONVERGED,
    `the cluster did not converge within ${timeoutMs} ms:\n${remaining.map((p) => `  - ${p.message}`).join("\n")}\n` +
      "re-run the same command to continue, or run: dredis cluster check --topology <topology>",
  );
}
