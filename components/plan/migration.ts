/**
 * What the migration workload (`dredis cluster apply`) is expected to do when the topology
 * goes from one state to the next, whether that change is safe, and whether a finished run
 * succeeded. Pure functions: the resource hooks that call them run on the deploy host, where
 * mocks cannot reach, so this is where their logic is tested.
 */
import type { Topology } from "../../src/cluster/topology.ts";
import { DredisError } from "../../src/errors.ts";
import { SLOT_COUNT } from "./topology.ts";

/** An inclusive range of hash slots. */
export interface SlotRange {
  first: number;
  last: number;
}

/** The even split of all 16384 slots over `shards` masters, as `dredis cluster apply` targets it. */
export function evenSlotRanges(shards: number): SlotRange[] {
  return Array.from({ length: shards }, (_, i) => ({
    first: Math.floor((i * SLOT_COUNT) / shards),
    last: Math.floor(((i + 1) * SLOT_COUNT) / shards) - 1,
  }));
}

export type MigrationStep =
  | { kind: "create"; shards: string[] }
  | { kind: "none" }
  | { kind: "reconfigure"; shards: string[] }
  | { kind: "add-shards"; added: string[]; slotsToMove: number }
  | { kind: "remove-shards"; removed: string[]; slotsToMove: number };

/** The step from `previous` (undefined: nothing deployed yet) to `next`. */
export function planMigration(previous: Topology | undefined, next: Topology): MigrationStep {
  const names = (t: Topology) => t.shards.map((s) => s.name);
  if (!previous) return { kind: "create", shards: names(next) };
  const before = new Set(names(previous));
  const after = new Set(names(next));
  const added = names(next).filter((n) => !before.has(n));
  const removed = names(previous).filter((n) => !after.has(n));
  if (added.length && removed.length)
    throw new DredisError(
      "E_UNSAFE_CHANGE",
      `refusing to add (${added.join(", ")}) and remove (${removed.join(", ")}) shards in one ` +
        "deployment: change the shard count in one direction per `pulumi up`",
    );
  const nextSlots = evenSlotRanges(next.shards.length);
  const previousSlots = evenSlotRanges(previous.shards.length);
  const size = (r: SlotRange) => r.last - r.first + 1;
  if (added.length)
    return {
      kind: "add-shards",
      added,
      slotsToMove: next.shards.reduce(
        (sum, s, i) => (before.has(s.name) ? sum : sum + size(nextSlots[i]!)),
        0,
      ),
    };
  if (removed.length)
    return {
      kind: "remove-shards",
      removed,
      slotsToMove: previous.shards.reduce(
        (sum, s, i) => (after.has(s.name) ? sum : sum + size(previousSlots[i]!)),
        0,
      ),
    };
  const changed = next.shards
    .filter((s) => JSON.stringify(s) !== JSON.stringify(previous.shards.find((p) => p.name === s.name)))
    .map((s) => s.name);
  return changed.length ? { kind: "reconfigure", shards: changed } : { kind: "none" };
}

/** One line for the deploy log, e.g. "add shard-3, shard-4 and move 6554 of 16384 slots to them". */
export function describeMigration(step: MigrationStep): string {
  switch (step.kind) {
    case "create":
      return `create the cluster: ${step.shards.length} shards (${step.shards.join(", ")}), slots split evenly`;
    case "none":
      return "topology unchanged: the migration workload only checks the cluster";
    case "reconfigure":
      return `re-attach the nodes of ${step.shards.join(", ")} (replicas changed); no slot moves`;
    case "add-shards":
      return `add ${step.added.join(", ")} and move ${step.slotsToMove} of ${SLOT_COUNT} slots to them`;
    case "remove-shards":
      return (
        `drain ${step.removed.join(", ")} (${step.slotsToMove} slots move to the remaining shards), ` +
        "then delete them: Pulumi runs deletes after all creates and updates"
      );
  }
}

/** The smallest cluster Redis Cluster can fail over in: a majority of 3 masters. */
export const MIN_SHARDS = 3;

/**
 * Refuses a topology change that could lose data or availability; returns the planned step
 * otherwise. Called with the migration's old and new topology before it is applied.
 */
export function checkTopologyChange(previous: Topology | undefined, next: Topology): MigrationStep {
  if (next.shards.length < MIN_SHARDS)
    throw new DredisError(
      "E_UNSAFE_CHANGE",
      `refusing ${next.shards.length} shards: Redis Cluster needs at least ${MIN_SHARDS} masters to fail over`,
    );
  const step = planMigration(previous, next);
  if (previous && step.kind === "remove-shards" && step.removed.length * 2 > previous.shards.length)
    throw new DredisError(
      "E_UNSAFE_CHANGE",
      `refusing to remove ${step.removed.length} of ${previous.shards.length} shards at once: ` +
        "the rest would have to absorb more than their own data in one step; remove at most half per `pulumi up`",
    );
  return step;
}

/**
 * The outputs of a finished migration run, as the platforms report them: a Docker container's
 * `exitCode` and `containerLogs`, or a Kubernetes Job's `status`.
 */
export interface MigrationRunOutputs {
  exitCode?: number;
  containerLogs?: string;
  status?: { failed?: number; succeeded?: number };
  /** "Job" for a Kubernetes Job (whose `status` is absent when it was not awaited). */
  kind?: string;
}

/** Exit codes of `dredis cluster apply`. */
const EXIT_REFUSED = 2;

/** Undefined when the run succeeded, otherwise what the operator needs to read. */
export function migrationRunFailure(outputs: MigrationRunOutputs): string | undefined {
  if (outputs.status !== undefined)
    return outputs.status.succeeded
      ? undefined
      : `the slot migration Job did not succeed (failed pods: ${outputs.status.failed ?? 0}); ` +
          "read its logs with kubectl logs job/<name>";
  // A Job without status was not awaited (`kubernetes:renderYamlToDirectory` only writes its
  // manifest, `pulumi.com/skipAwait`): it has not run here, so there is no result to judge.
  if (outputs.kind === "Job") return undefined;
  if (outputs.exitCode === 0) return undefined;
  const what =
    outputs.exitCode === EXIT_REFUSED
      ? "refused the change (exit 2)"
      : outputs.exitCode === undefined
        ? "reported no exit code"
        : `failed (exit ${outputs.exitCode})`;
  const logs = outputs.containerLogs?.trim();
  return `dredis cluster apply ${what}${logs ? `:\n${logs}` : ""}`;
}
