/**
 * What the migration workload (`dredis cluster apply`) is expected to do when the topology
 * goes from one state to the next, whether that change is safe, and whether a finished run
 * succeeded. Pure functions: the resource hooks that call them run on the deploy host, where
 * mocks cannot reach, so this is where their logic is tested.
 */
import type { Topology } from "../../src/cluster/topology.ts";
import { DredisError, ErrorCodes } from "../../src/errors.ts";
import { evenQuotas } from "../../src/cluster/even-split.ts";
import { SLOT_COUNT } from "../../src/cluster/key-slot.ts";

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
      ErrorCodes.UNSAFE_CHANGE,
      `refusing to add (${added.join(", ")}) and remove (${removed.join(", ")}) shards in one ` +
        "deployment: change the shard count in one direction per `pulumi up`",
    );
  // The forecast assumes the cluster was even under `previous`, and splits as the planner does.
  const owned = evenQuotas(names(previous));
  const sum = (shards: string[], quotas: Map<string, number>) =>
    shards.reduce((total, name) => total + quotas.get(name)!, 0);
  if (added.length) {
    const current = new Map([...owned].map(([name, count]) => [name, { length: count }]));
    return { kind: "add-shards", added, slotsToMove: sum(added, evenQuotas(names(next), current)) };
  }
  if (removed.length) return { kind: "remove-shards", removed, slotsToMove: sum(removed, owned) };
  const changed = next.shards
    .filter((s) => JSON.stringify(s) !== JSON.stringify(previous.shards.find((p) => p.name === s.name)))
    .map((s) => s.name);
  return changed.length ? { kind: "reconfigure", shards: changed } : { kind: "none" };
}

/** One line for the deploy log, e.g. "add shard-3, shard-4 and move 6553 of 16384 slots to them". */
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

/**
 * How long one migration run may take, in minutes: long enough to move the whole data set (a
 * step moves less: at most half when shrinking, the new shards' share when growing), sized from
 * what the plan knows, `shards` x `maxmemoryMb` bytes, at the slower of 10 MB/s and 15,000 keys/s
 * of 256 bytes each (half the slowest rate `bench/migration.ts` measured), plus 10 minutes for
 * the checks, joins and agreement waits around the moves.
 */
export function migrationTimeoutMinutes(shards: number, maxmemoryMb: number): number {
  const bytes = shards * maxmemoryMb * 1024 * 1024;
  const seconds = Math.max(bytes / (10 * 1024 * 1024), bytes / 256 / 15_000);
  return 10 + Math.ceil(seconds / 60);
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
      ErrorCodes.UNSAFE_CHANGE,
      `refusing ${next.shards.length} shards: Redis Cluster needs at least ${MIN_SHARDS} masters to fail over`,
    );
  const step = planMigration(previous, next);
  if (previous && step.kind === "remove-shards" && step.removed.length * 2 > previous.shards.length)
    throw new DredisError(
      ErrorCodes.UNSAFE_CHANGE,
      `refusing to remove ${step.removed.length} of ${previous.shards.length} shards at once: ` +
        "the rest would have to absorb more than their own data in one step; remove at most half per `pulumi up`",
    );
  return step;
}

/**
 * The outputs of a finished migration run, as the platforms report them: a Docker container's
 * `exitCode` and `containerLogs`, or a Kubernetes Job's `kind`, `metadata` and `status`.
 */
export interface MigrationRunOutputs {
  exitCode?: number;
  containerLogs?: string;
  kind?: string;
  metadata?: { annotations?: Record<string, string> };
  status?: { failed?: number; succeeded?: number };
}

/**
 * What a finished run proves: it succeeded (the cluster equals its topology: removed shards own
 * nothing and were forgotten), it failed, or nothing (a Job Pulumi did not await, in render mode
 * or with `pulumi.com/skipAwait`: not a failure, but no proof of a drain either).
 */
export type MigrationOutcome =
  { kind: "succeeded" } | { kind: "failed"; message: string } | { kind: "unconfirmed"; message: string };

/** Exit codes of `dredis cluster apply`. */
const EXIT_REFUSED = 2;

export function migrationRunOutcome(outputs: MigrationRunOutputs): MigrationOutcome {
  if (outputs.kind === "Job" || outputs.status !== undefined) {
    const status = outputs.status ?? {};
    if (status.succeeded) return { kind: "succeeded" };
    if (status.failed)
      return {
        kind: "failed",
        message:
          `the slot migration Job did not succeed (failed pods: ${status.failed}); ` +
          "read its logs with kubectl logs job/<name>",
      };
    return {
      kind: "unconfirmed",
      message:
        "the slot migration Job was not awaited (render mode or pulumi.com/skipAwait), " +
        "so whether it finished is unknown",
    };
  }
  if (outputs.exitCode === 0) return { kind: "succeeded" };
  const what =
    outputs.exitCode === EXIT_REFUSED
      ? "refused the change (exit 2)"
      : outputs.exitCode === undefined
        ? "reported no exit code"
        : `failed (exit ${outputs.exitCode})`;
  const logs = outputs.containerLogs?.trim();
  return { kind: "failed", message: `dredis cluster apply ${what}${logs ? `:\n${logs}` : ""}` };
}

/** Undefined unless the run failed; otherwise what the operator needs to read. */
export function migrationRunFailure(outputs: MigrationRunOutputs): string | undefined {
  const outcome = migrationRunOutcome(outputs);
  return outcome.kind === "failed" ? outcome.message : undefined;
}

/** The topology shard a shard resource belongs to, from its name (`<cluster>-shard-<index>...`). */
export function shardOfResource(clusterName: string, resourceName: string): string | undefined {
  const prefix = `${clusterName}-shard-`;
  if (!resourceName.startsWith(prefix)) return undefined;
  const index = /^(\d+)(?:-|$)/.exec(resourceName.slice(prefix.length))?.[1];
  return index === undefined ? undefined : `shard-${Number(index)}`;
}

/**
 * Whether a shard's resource may be deleted in this deployment; undefined when it may, otherwise
 * why not. A shard still in the topology is being replaced (or destroyed with the rest), never
 * drained. A shard outside it may own slots and keys until a migration run of *this* deployment
 * succeeded: a run that failed, was not confirmed, or did not happen proves nothing, whatever
 * earlier deployments did.
 */
export function drainRefusal(
  resourceName: string,
  shard: string | undefined,
  topology: Topology,
  outcome: MigrationOutcome | undefined,
): string | undefined {
  if (shard === undefined)
    return (
      `refusing to delete ${resourceName}: it is not named like a shard resource ` +
      "(<cluster>-shard-<index>...), so whether its shard was drained cannot be checked"
    );
  if (topology.shards.some((s) => s.name === shard) || outcome?.kind === "succeeded") return undefined;
  const unproven =
    outcome === undefined
      ? "no slot migration finished in this deployment"
      : outcome.kind === "failed"
        ? "the slot migration of this deployment failed"
        : outcome.message;
  return (
    `refusing to delete ${resourceName}: ${shard} is no longer in the topology and ${unproven}, ` +
    `so ${shard} may still own slots or keys. Fix what stopped the migration and run \`pulumi up\` ` +
    `again: it runs the migration again and deletes ${shard} once the migration has drained it`
  );
}
