/**
 * Waits for the cluster to converge after a change: every node agrees on the slot owners, no
 * slot is open and every node reports cluster_state:ok.
 *
 * The bound is on progress, not on the whole wait: on a loaded machine gossip reaches the nodes
 * slowly but steadily, so the wait goes on while fewer problems (or fewer disagreeing views) are
 * left, and stops after `timeoutMs` without any improvement (and at most LONGEST_WAIT_FACTOR times
 * `timeoutMs` in all). A node may also never accept a new owner by itself: one that owns a slot
 * without a config epoch above the previous owner's (an epoch bump it missed) is ignored by the
 * others' gossip forever. When views stop converging, the owners they disagree about get
 * `CLUSTER BUMPEPOCH` (what redis-cli's fix does), so their claims win everywhere.
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import type { Topology } from "../topology.ts";
import { formatSlots, readClusterState, type ClusterState } from "./cluster-state.ts";
import type { NodePool } from "./node-pool.ts";
import type { ProgressEvent } from "./options.ts";
import { findProblems, viewDifferences, type Problem, type ProblemKind } from "./problems.ts";

const CONVERGENCE: ProblemKind[] = [
  "disagreement",
  "cluster-state",
  "open-slot",
  "not-joined",
  "replica-detached",
];

/** Problems that keep views from converging and that only an operator (or `fix`) clears: named when the wait fails. */
const STRUCTURAL: ProblemKind[] = ["slot-conflict", "uncovered-slots", "failed-node", "unreachable"];

const POLL_MS = 200;
/** Views that made no progress for this long get their owners' epochs bumped (again at most this often). */
const NUDGE_AFTER_MS = 3_000;
/** How often a wait that goes on is reported. */
const REPORT_EVERY_MS = 5_000;
/** The whole wait, however steady the progress, is at most this many times `timeoutMs`. */
const LONGEST_WAIT_FACTOR = 5;

/** How `waitForAgreement` waits. */
export interface AgreementWait {
  /** How long the wait may go without progress (and LONGEST_WAIT_FACTOR times this in all). */
  timeoutMs: number;
  signal?: AbortSignal;
  /** The problems waited out; convergence (CONVERGENCE) by default. */
  awaited?: readonly ProblemKind[];
  /** Told every REPORT_EVERY_MS while the wait goes on, and of every epoch bump. */
  onProgress?: (event: ProgressEvent) => void;
}

/**
 * Polls until none of the awaited problems remain; throws naming what is left after `timeoutMs`
 * without progress.
 */
export async function waitForAgreement(
  pool: NodePool,
  topology: Topology,
  { timeoutMs, signal, awaited = CONVERGENCE, onProgress }: AgreementWait,
): Promise<ClusterState> {
  const started = Date.now();
  const hardDeadline = started + LONGEST_WAIT_FACTOR * timeoutMs;
  let lastProgress = started;
  let lastNudge = started;
  let lastReport = started;
  let best = Infinity;
  const bumped: string[] = [];
  let remaining: Problem[] = [];
  let others: Problem[] = [];
  while (true) {
    signal?.throwIfAborted();
    const state = await readClusterState(pool, topology);
    const problems = findProblems(state);
    remaining = problems.filter((p) => awaited.includes(p.kind));
    if (remaining.length === 0) return state;
    others = problems.filter((p) => STRUCTURAL.includes(p.kind));
    const differences = awaited.includes("disagreement") ? viewDifferences(state) : [];
    // Fewer problems or fewer slot views left to converge is progress.
    const score = remaining.length + differences.reduce((sum, d) => sum + d.slots.length, 0);
    const now = Date.now();
    if (score < best) {
      best = score;
      lastProgress = now;
    }
    if (differences.length > 0 && now - Math.max(lastProgress, lastNudge) >= NUDGE_AFTER_MS) {
      lastNudge = now;
      bumped.push(...(await bumpOwners(pool, state, differences, onProgress)));
    }
    if (now - lastReport >= REPORT_EVERY_MS) {
      lastReport = now;
      onProgress?.({
        type: "step",
        message: `waiting for the cluster to converge (${((now - started) / 1000).toFixed(0)} s): ${remaining.length} problem(s) left, e.g. ${remaining[0]!.message}`,
      });
    }
    if (now - lastProgress >= timeoutMs || now >= hardDeadline) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const waited = Date.now() - started;
  const why =
    Date.now() - lastProgress >= timeoutMs
      ? `no progress for ${timeoutMs} ms (${(waited / 1000).toFixed(0)} s in all)`
      : `still progressing after ${(waited / 1000).toFixed(0)} s, the longest wait (${LONGEST_WAIT_FACTOR} x ${timeoutMs} ms)`;
  const tried =
    bumped.length > 0
      ? `the config epoch of ${[...new Set(bumped)].join(", ")} was bumped (CLUSTER BUMPEPOCH) so their slot claims win, without effect. `
      : "";
  const cause =
    others.length > 0
      ? `gossip cannot settle this by itself while:\n${others.map((p) => `  - ${p.message}\n    fix: ${p.fix}`).join("\n")}\n`
      : "";
  throw new DredisError(
    ErrorCodes.NOT_CONVERGED,
    `the cluster did not converge: ${why}:\n${remaining.map((p) => `  - ${p.message}`).join("\n")}\n${cause}${tried}` +
      "re-run the same command to continue, or run: dredis cluster check --topology <topology>",
  );
}

/**
 * `CLUSTER BUMPEPOCH` on every master that alone claims slots some views still give to another
 * node (a slot claimed by two masters is a conflict for `fix`, not for gossip). Returns the
 * addresses of the owners it reached.
 */
async function bumpOwners(
  pool: NodePool,
  state: ClusterState,
  differences: { slots: number[] }[],
  onProgress?: (event: ProgressEvent) => void,
): Promise<string[]> {
  const slotsByOwner = new Map<string, Set<number>>();
  for (const { slots } of differences)
    for (const slot of slots) {
      const claims = state.claims[slot]!;
      if (claims.length !== 1) continue;
      if (!slotsByOwner.has(claims[0]!)) slotsByOwner.set(claims[0]!, new Set());
      slotsByOwner.get(claims[0]!)!.add(slot);
    }
  const reached: string[] = [];
  for (const [id, slots] of slotsByOwner) {
    const owner = state.byId.get(id);
    if (!owner?.reachable) continue;
    const reply = await pool
      .get(owner.address)
      .call("CLUSTER", "BUMPEPOCH")
      .catch((err: Error) => `error: ${err.message}`);
    reached.push(owner.address);
    onProgress?.({
      type: "step",
      message: `${differences.length} node(s) still give slots ${formatSlots([...slots].sort((a, b) => a - b))} to another node than ${owner.address}${owner.shard ? ` (${owner.shard})` : ""}, their owner: CLUSTER BUMPEPOCH on it (${String(reply)}) so its claim wins`,
    });
  }
  return reached;
}
