/**
 * The resource hooks of a slot migration. They run on the machine that runs `pulumi up`, which
 * cannot reach the shards, so they only read what Pulumi hands them: the migration's old and new
 * topology (to refuse unsafe changes and show the planned step at preview) and the finished run's
 * outputs (to fail the deployment when the run failed). The decisions are the pure functions of
 * `plan/migration.ts`.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseTopology, type Topology } from "../src/cluster/topology.ts";
import {
  checkTopologyChange,
  describeMigration,
  migrationRunFailure,
  type MigrationRunOutputs,
} from "./plan/migration.ts";

/** Reads the topology a SlotMigration registered as its input (absent before the first deploy). */
function registeredTopology(inputs: Record<string, unknown> | undefined): Topology | undefined {
  const json = inputs?.["topology"];
  return typeof json === "string" ? parseTopology(JSON.parse(json), "registered topology") : undefined;
}

/** Refuses an unsafe topology change and logs the step the migration workload will take. */
export function guardTopologyChange(args: pulumi.ResourceHookArgs): void {
  const next = registeredTopology(args.newInputs);
  if (!next) return;
  const step = checkTopologyChange(registeredTopology(args.oldInputs), next);
  pulumi.log.info(`slot migration: ${describeMigration(step)}`);
}

/** Fails the deployment when the migration run did not succeed, with its logs. */
export function assertMigrationSucceeded(args: pulumi.ResourceHookArgs): void {
  const failure = migrationRunFailure((args.newOutputs ?? {}) as MigrationRunOutputs);
  if (failure) throw new Error(failure);
}

export interface MigrationHooks {
  /** Bound to the SlotMigration component (beforeCreate, beforeUpdate); runs at preview too. */
  guard: pulumi.ResourceHook;
  /** Bound to the migration workload (afterCreate: every topology change re-creates it). */
  succeeded: pulumi.ResourceHook;
}

/** Hook names must be unique in a deployment, so they carry the component's name. */
export function createMigrationHooks(name: string): MigrationHooks {
  return {
    guard: new pulumi.ResourceHook(`${name}-topology-guard`, guardTopologyChange, { onDryRun: true }),
    succeeded: new pulumi.ResourceHook(`${name}-run-succeeded`, assertMigrationSucceeded),
  };
}
