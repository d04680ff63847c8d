/**
 * The resource hooks of a slot migration. They run on the machine that runs `pulumi up`, which
 * cannot reach the shards, so they only read what Pulumi hands them: the migration's old and new
 * topology (to refuse unsafe changes and show the planned step at preview), the finished run's
 * outputs (to fail the deployment when the run failed), and, for a shard resource about to be
 * deleted, whether this deployment's run drained its shard. The decisions are the pure functions
 * of `plan/migration.ts`.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseTopology, type Topology } from "../src/cluster/topology.ts";
import { DredisError, ErrorCodes } from "../src/errors.ts";
import {
  checkTopologyChange,
  describeMigration,
  drainRefusal,
  migrationRunOutcome,
  shardOfResource,
  type MigrationOutcome,
  type MigrationRunOutputs,
  type MigrationStep,
} from "./plan/migration.ts";
import { shardTlsChangeRefusal } from "./plan/shard-tls.ts";

/** Reads the topology a SlotMigration registered as its input (absent before the first deploy). */
function registeredTopology(inputs: Record<string, unknown> | undefined): Topology | undefined {
  const json = inputs?.["topology"];
  return typeof json === "string" ? parseTopology(JSON.parse(json), "registered topology") : undefined;
}

/**
 * Why a change of the password (seen as the digests SlotMigration registers) is refused, if it
 * is: a new password reaches the nodes only through the two-step rotation, whose first step
 * needs the password they have now.
 */
export function passwordChangeRefusal(
  oldInputs: Record<string, unknown> | undefined,
  newInputs: Record<string, unknown> | undefined,
): string | undefined {
  const before = oldInputs?.["passwordHash"];
  const after = newInputs?.["passwordHash"];
  const previous = newInputs?.["previousPasswordHash"];
  if (typeof before !== "string" || typeof after !== "string" || after === before) return undefined;
  if (previous === before) return undefined;
  return previous === undefined
    ? "the password changed without previousPassword: the nodes would keep the old one while the proxies " +
        "use the new. Set previousPassword to the password the cluster has now, keep the new password, and " +
        "run pulumi up (the nodes accept both until every proxy uses the new one, then the old one is " +
        "dropped); remove previousPassword in the next deployment"
    : "previousPassword is not the password the cluster has now (the one of the last deployment): " +
        "set it to that password, or set password back to it";
}

/**
 * Whether a SlotMigration's registered inputs say the shards run TLS-only: undefined when they
 * say nothing (a first deploy, or one made before `shardTls` was registered).
 */
function registeredShardTls(inputs: Record<string, unknown> | undefined): boolean | undefined {
  const value = inputs?.["shardTls"];
  return typeof value === "boolean" ? value : undefined;
}

/**
 * The warning for `shardTls` set on a cluster whose last deployment registered no `shardTls`
 * (made before it was registered, so plain before shardTls existed, or TLS-only in between):
 * turning TLS on cannot be told from keeping it, so it is not refused, but said at the preview,
 * where the user can still stop. Undefined for a first deploy, a registered value, or no shardTls.
 */
export function shardTlsUnknownWarning(
  oldInputs: Record<string, unknown> | undefined,
  newInputs: Record<string, unknown> | undefined,
): string | undefined {
  if (typeof oldInputs?.["topology"] !== "string") return undefined;
  if (registeredShardTls(oldInputs) !== undefined || registeredShardTls(newInputs) !== true) return undefined;
  return (
    "shardTls is set, and this cluster's last deployment was made before dredis recorded whether its " +
    "shards run TLS, so turning it on cannot be told from keeping it. If the running nodes serve plain " +
    "connections, do not go on: a node replaced to serve TLS only could not join them (there is no mixed " +
    "mode) and the roll would stop at its health check; remove shardTls, or deploy a new cluster (another " +
    "stack or name) with it and move the data. If the cluster already runs with shardTls, go on: this " +
    "deployment records it, and turning it off later is refused"
  );
}

/**
 * Refuses an unsafe topology, password or shardTls change and logs the step the migration
 * workload will take.
 */
export function guardTopologyChange(args: pulumi.ResourceHookArgs): void {
  const step = refuseUnsafeChange(args.oldInputs, args.newInputs);
  const unknownTls = shardTlsUnknownWarning(args.oldInputs, args.newInputs);
  if (unknownTls) pulumi.log.warn(unknownTls);
  const previous = args.newInputs?.["previousPasswordHash"];
  if (previous !== undefined && args.oldInputs?.["passwordHash"] === args.newInputs?.["passwordHash"])
    // Not refused: it is also how a rotation whose run failed is run again.
    pulumi.log.warn(
      "previousPassword is set but the password did not change since the last deployment: if that " +
        "rotation finished, remove previousPassword (the nodes no longer accept it, so the migration fails)",
    );
  if (step) pulumi.log.info(`slot migration: ${describeMigration(step)}`);
}

/**
 * Throws on an unsafe password, shardTls or topology change between two registrations of the
 * guarded inputs (SlotMigration's, or the ChangeGuard's before the shards); returns the planned
 * migration step, if a topology is given.
 */
export function refuseUnsafeChange(
  oldInputs: Record<string, unknown> | undefined,
  newInputs: Record<string, unknown> | undefined,
): MigrationStep | undefined {
  const refusal =
    passwordChangeRefusal(oldInputs, newInputs) ??
    shardTlsChangeRefusal(registeredShardTls(oldInputs), registeredShardTls(newInputs) ?? false);
  if (refusal) throw new DredisError(ErrorCodes.UNSAFE_CHANGE, refusal);
  const next = registeredTopology(newInputs);
  return next ? checkTopologyChange(registeredTopology(oldInputs), next) : undefined;
}

/** Fails the deployment when the migration run did not succeed, with its logs. */
export function assertMigrationSucceeded(args: pulumi.ResourceHookArgs): void {
  const outcome = migrationRunOutcome((args.newOutputs ?? {}) as MigrationRunOutputs);
  if (outcome.kind === "failed") throw new Error(outcome.message);
  if (outcome.kind === "unconfirmed") pulumi.log.warn(`slot migration: ${outcome.message}`);
}

/**
 * An afterCreate hook for another one-shot run of `dredis cluster apply` (the rotation's second
 * step): fails the deployment when the run failed, with its logs.
 */
export function createRunSucceededHook(name: string): pulumi.ResourceHook {
  return new pulumi.ResourceHook(`${name}-run-succeeded`, assertMigrationSucceeded);
}

export interface MigrationHooks {
  /** Bound to the SlotMigration component (beforeCreate, beforeUpdate); runs at preview too. */
  guard: pulumi.ResourceHook;
  /** Bound to the migration workload (afterCreate: it is re-created, so run, on every deployment). */
  succeeded: pulumi.ResourceHook;
  /**
   * Bound to every resource of every shard (beforeDelete): refuses to delete a shard that left the
   * topology unless this deployment's migration run succeeded. Deletes of removed resources come
   * after all creates, so the run has finished by then; a failed before-hook fails the delete,
   * and the engine deletes nothing the failed resource depends on, `--continue-on-error` included.
   */
  drained: pulumi.ResourceHook;
}

export interface MigrationHookContext {
  /** Prefix of every shard resource's name (`<clusterName>-shard-<index>...`). */
  clusterName: string;
  /** The topology this deployment applies. */
  topology: Topology;
}

/**
 * Hook names must be unique in a deployment, so they carry the component's name. They are created
 * on every run: the engine finds a delete hook by the name stored with the resource, and a
 * removed shard's resources were bound in an earlier deployment.
 */
export function createMigrationHooks(name: string, context: MigrationHookContext): MigrationHooks {
  // This deployment's run, as its afterCreate hook saw it; none until then.
  let outcome: MigrationOutcome | undefined;
  return {
    guard: new pulumi.ResourceHook(`${name}-topology-guard`, guardTopologyChange, { onDryRun: true }),
    succeeded: new pulumi.ResourceHook(`${name}-run-succeeded`, (args) => {
      outcome = migrationRunOutcome((args.newOutputs ?? {}) as MigrationRunOutputs);
      assertMigrationSucceeded(args);
    }),
    drained: new pulumi.ResourceHook(`${name}-shard-drained`, (args) => {
      const shard = shardOfResource(context.clusterName, args.name);
      const refusal = drainRefusal(args.name, shard, context.topology, outcome);
      if (refusal) throw new DredisError(ErrorCodes.UNSAFE_CHANGE, refusal);
    }),
  };
}
