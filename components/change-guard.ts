/**
 * ChangeGuard: the topology/password/shardTls guard of `hooks.ts`, bound to a resource that every
 * shard depends on, so the engine runs it (and refuses) before it touches any shard, also with
 * `pulumi up --skip-preview`. SlotMigration keeps its own guard (it comes after the shards).
 *
 * Why a custom resource (a built-in `pulumi:index:Stash`, no provider plugin) and not a component:
 * `dependsOn` a component only waits for its custom children (it has none), while a custom
 * resource's registration answers after its step, hooks included, so a refusal stops every
 * resource waiting for it. A Stash's update only records its new `input`: no side effect.
 */
import * as pulumi from "@pulumi/pulumi";
import { passwordHash } from "./password-hash.ts";
import { refuseUnsafeChange } from "./hooks.ts";

/** What the guard compares, as SlotMigration and the ChangeGuard register it. */
export interface GuardedInputs {
  topology: string;
  shardTls: boolean;
  passwordHash: pulumi.Output<string>;
  previousPasswordHash?: pulumi.Output<string>;
}

/** The guard's inputs from the cluster's: the topology JSON, whether shardTls is set, password digests. */
export function guardedInputs(args: {
  clusterName: string;
  topologyJson: string;
  shardTls: boolean;
  password: pulumi.Input<string>;
  previousPassword?: pulumi.Input<string> | undefined;
}): GuardedInputs {
  return {
    topology: args.topologyJson,
    // For the guard to refuse turning shardTls on or off for a running cluster (no mixed mode).
    shardTls: args.shardTls,
    // Digests, for the guard to see a password change and whether it is a rotation.
    passwordHash: passwordHash(args.clusterName, args.password),
    ...(args.previousPassword === undefined
      ? {}
      : { previousPasswordHash: passwordHash(args.clusterName, args.previousPassword) }),
  };
}

/** The Stash's inputs hold the guarded ones under `input`. */
function stashed(inputs: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const input = inputs?.["input"];
  return typeof input === "object" && input !== null ? (input as Record<string, unknown>) : undefined;
}

/** The ChangeGuard's hook: refuses what SlotMigration's guard refuses; logs nothing (SlotMigration does). */
export function guardChangeBeforeShards(args: pulumi.ResourceHookArgs): void {
  refuseUnsafeChange(stashed(args.oldInputs), stashed(args.newInputs));
}

/**
 * The guard resource `name` (`<cluster>-change-guard`). Its hook is bound to updates only: on
 * its first deployment (a new cluster, or the first deployment of an existing one after it came)
 * nothing was recorded to compare with, and SlotMigration's guard still runs.
 */
export function createChangeGuard(
  name: string,
  inputs: GuardedInputs,
  opts: pulumi.CustomResourceOptions,
): pulumi.Resource {
  const hook = new pulumi.ResourceHook(`${name}-hook`, guardChangeBeforeShards, { onDryRun: true });
  return new pulumi.Stash(name, { input: inputs }, { ...opts, hooks: { beforeUpdate: [hook] } });
}
