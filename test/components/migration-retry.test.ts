/**
 * Migrations run until the cluster equals the configuration, and no deployment deletes a shard
 * that may still own slots. Mocks have no engine, so the engine's part is stated and the program's
 * part asserted: the migration workload's replacementTrigger changes on every run (so the engine
 * replaces it, i.e. runs it again, whatever the last run did: since CLI 3.238 a resource whose
 * afterCreate hook failed is recorded as created), every resource of every shard carries a named
 * beforeDelete hook, and each later run registers a hook of that name, which the test calls as the
 * engine would when it deletes a removed shard's resources (a failing before-hook fails the delete,
 * `--continue-on-error` included; the engine then deletes nothing the resource depends on).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type * as pulumi from "@pulumi/pulumi";
import { installMocks, startRun, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");

const DRAINED = "redis-migration-shard-drained";
const SUCCEEDED = "redis-migration-run-succeeded";

interface Run {
  resources: Recorded[];
  hook(name: string): pulumi.ResourceHook;
}

async function deploy(stack: "dev" | "prod", shards: number): Promise<Run> {
  const run = startRun();
  createStack({ name: "redis", spec: { ...stackSpec(stack), shards } }, run.opts);
  return { resources: await run.settle(), hook: run.hook };
}

const isCustom = (r: Recorded) => !r.type.startsWith("distributed-redis:");
const migration = (run: Run) => run.resources.find((r) => r.name === "redis-migration-run")!;

/** What the engine hands a hook for `resource` (delete hooks get the old state). */
const hookArgs = (resource: Recorded, outputs?: Record<string, unknown>): pulumi.ResourceHookArgs => ({
  urn: resource.urn,
  id: `${resource.name}-id`,
  name: resource.name,
  type: resource.type,
  oldInputs: resource.inputs,
  ...(outputs ? { newOutputs: outputs } : {}),
});

/** Runs the hooks the engine runs for the migration's create, as that create ended. */
function migrationCreated(run: Run, outputs: Record<string, unknown>): void {
  run.hook(SUCCEEDED).callback(hookArgs(migration(run), outputs));
}

/** The engine's beforeDelete call for each resource; the names of those it refused. */
async function deleteAll(run: Run, resources: Recorded[]): Promise<string[]> {
  const refused: string[] = [];
  for (const resource of resources) {
    for (const name of resource.hooks["beforeDelete"] ?? []) {
      try {
        await run.hook(name).callback(hookArgs(resource));
      } catch (err) {
        assert.match((err as Error).message, /may still own slots or keys/);
        refused.push(resource.name);
      }
    }
  }
  return refused;
}

const platforms = [
  {
    platform: "docker",
    stack: "dev",
    from: 5,
    to: 3,
    failed: { exitCode: 1, containerLogs: "slot 9000: MIGRATE timeout" },
    succeeded: { exitCode: 0, containerLogs: "the cluster matches the topology" },
  },
  {
    platform: "kubernetes",
    stack: "prod",
    from: 6,
    to: 4,
    // A Job whose await failed is not created, so its afterCreate hook never runs.
    failed: undefined,
    succeeded: { kind: "Job", status: { succeeded: 1 } },
  },
] as const;

for (const p of platforms) {
  describe(`${p.platform}: ${p.from} -> ${p.to} shards over successive deployments`, () => {
    test("every resource of every shard carries the drain hook, and the migration a fresh trigger", async () => {
      const run = await deploy(p.stack, p.from);
      const shardResources = run.resources.filter((r) => isCustom(r) && /^redis-shard-\d/.test(r.name));
      assert.ok(shardResources.length >= p.from * 2);
      for (const r of shardResources) assert.deepEqual(r.hooks["beforeDelete"], [DRAINED], r.name);
      const again = await deploy(p.stack, p.from);
      assert.equal(typeof migration(run).replacementTrigger, "string");
      assert.notEqual(migration(again).replacementTrigger, migration(run).replacementTrigger);
      // Only the trigger differs: the same topology means the same inputs.
      assert.deepEqual(migration(again).inputs, migration(run).inputs);
    });

    test("a failed migration runs again in the next deployment, and only its success lets the removed shards go", async () => {
      const before = await deploy(p.stack, p.from);
      const removed = (next: Run) => {
        const urns = new Set(next.resources.map((r) => r.urn));
        return before.resources.filter((r) => isCustom(r) && !urns.has(r.urn));
      };

      // Deployment 1: the migration fails; with --continue-on-error the engine goes on to the deletes.
      const first = await deploy(p.stack, p.to);
      const gone = removed(first);
      assert.ok(gone.length > 0);
      assert.ok(
        gone.every((r) => Number(/^redis-shard-(\d+)/.exec(r.name)?.[1]) >= p.to),
        gone.map((r) => r.name).join(", "),
      );
      if (p.failed)
        assert.throws(() => migrationCreated(first, p.failed), /dredis cluster apply failed \(exit 1\)/);
      assert.deepEqual(
        await deleteAll(first, gone),
        gone.map((r) => r.name),
      );

      // Deployment 2: the same program; the new trigger replaces the workload, which fails again.
      const second = await deploy(p.stack, p.to);
      assert.notEqual(migration(second).replacementTrigger, migration(first).replacementTrigger);
      if (p.failed) assert.throws(() => migrationCreated(second, p.failed));
      assert.deepEqual(
        await deleteAll(second, removed(second)),
        gone.map((r) => r.name),
      );

      // Deployment 3: the run succeeds, so the removed shards are drained and may go.
      const third = await deploy(p.stack, p.to);
      migrationCreated(third, p.succeeded);
      assert.deepEqual(await deleteAll(third, removed(third)), []);
    });

    test("a shard still in the topology may be replaced before the migration has run", async () => {
      const run = await deploy(p.stack, p.to);
      const kept = run.resources.filter((r) => isCustom(r) && r.name.startsWith("redis-shard-0"));
      assert.ok(kept.length > 0);
      assert.deepEqual(await deleteAll(run, kept), []);
    });
  });
}

test("kubernetes: a Job Pulumi did not await proves no drain", async () => {
  const before = await deploy("prod", 6);
  const run = await deploy("prod", 4);
  const urns = new Set(run.resources.map((r) => r.urn));
  const gone = before.resources.filter((r) => isCustom(r) && !urns.has(r.urn));
  migrationCreated(run, { kind: "Job", metadata: { annotations: { "pulumi.com/skipAwait": "true" } } });
  assert.deepEqual(
    await deleteAll(run, gone),
    gone.map((r) => r.name),
  );
});

test("hooks the caller gives SlotMigration run as well as the topology guard", async () => {
  const { SlotMigration } = await import("../../components/slot-migration.ts");
  const { ResourceHook } = await import("@pulumi/pulumi");
  const { planCluster } = await import("../../components/plan/topology.ts");
  const own = new ResourceHook("caller-before-create", () => {});
  const run = startRun();
  new SlotMigration(
    "redis-migration",
    {
      platform: "kubernetes",
      clusterName: "redis",
      topology: JSON.stringify(planCluster("redis", { ...stackSpec("prod") }).topology),
      maxmemoryMb: 64,
      image: "dredis:test",
      password: "secret",
      passwordSecret: "redis-auth",
    },
    { ...run.opts, hooks: { beforeCreate: [own], afterDelete: [own] } },
  );
  const component = (await run.settle()).find((r) => r.name === "redis-migration")!;
  assert.deepEqual(component.hooks, {
    beforeCreate: ["caller-before-create", "redis-migration-topology-guard"],
    beforeUpdate: ["redis-migration-topology-guard"],
    afterDelete: ["caller-before-create"],
  });
});
