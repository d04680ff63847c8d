/**
 * Scaling under mocks: the same stack deployed with 3, then 5, then 3 shards again. Mocks have no
 * engine and so no diff; what decides the engine's plan is asserted instead: which URNs stay, which
 * appear or disappear, and whether their inputs changed.
 *
 * Pulumi runs deletes after all creates and updates of an update. So on 5 -> 3, the migration
 * workload (replaced on every deployment, see migration-retry.test.ts) drains shard-3 and shard-4
 * before their resources, absent from the program, are deleted, and their drain hook lets them go
 * only once that run succeeded.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { parseTopology } from "../../src/cluster/topology.ts";
import { installMocks, startRun, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");

async function deploy(shards: number): Promise<Map<string, Recorded>> {
  const run = startRun();
  createStack({ name: "redis", spec: { ...stackSpec("dev"), shards } }, run.opts);
  return new Map((await run.settle()).map((r) => [r.urn, r]));
}

let three: Map<string, Recorded>;
let five: Map<string, Recorded>;
let threeAgain: Map<string, Recorded>;
before(async () => {
  three = await deploy(3);
  five = await deploy(5);
  threeAgain = await deploy(3);
});

const MIGRATION = "redis-migration-run";
const migration = (graph: Map<string, Recorded>) => [...graph.values()].find((r) => r.name === MIGRATION)!;
const migratedTopology = (graph: Map<string, Recorded>) =>
  parseTopology(JSON.parse((migration(graph).inputs["command"] as string[])[3]!));

test("3 -> 5: shards 0-2 keep their URNs and byte-identical inputs", () => {
  for (const [urn, before] of three) {
    if (before.name.startsWith("redis-shard-")) {
      const after = five.get(urn);
      assert.ok(after, `${urn} still exists`);
      assert.equal(JSON.stringify(after.inputs), JSON.stringify(before.inputs), `${before.name} unchanged`);
    }
  }
});

test("3 -> 5: exactly two shards are added, and nothing else is created or deleted", () => {
  const added = [...five.keys()].filter((urn) => !three.has(urn)).map((urn) => five.get(urn)!);
  const removed = [...three.keys()].filter((urn) => !five.has(urn));
  assert.deepEqual(removed, []);
  assert.deepEqual(
    added.filter((r) => r.type === "distributed-redis:index:RedisShard").map((r) => r.name),
    ["redis-shard-3", "redis-shard-4"],
  );
  assert.ok(
    added.every((r) => /^redis-shard-[34]/.test(r.name)),
    `only shard-3 and shard-4 resources: ${added.map((r) => r.name).join(", ")}`,
  );
  // Per shard: the component, and per node a volume, a container and its settings writer.
  assert.equal(added.length, 2 * (1 + 2 * 3));
});

test("3 -> 5: the proxies are untouched (their seeds are the first three shards)", () => {
  for (const [urn, before] of three) {
    if (before.name.startsWith("redis-proxy"))
      assert.equal(JSON.stringify(five.get(urn)!.inputs), JSON.stringify(before.inputs), before.name);
  }
});

test("3 -> 5: the migration workload's inputs change (so it is replaced and runs again) and list 5 shards", () => {
  assert.notEqual(JSON.stringify(migration(five).inputs), JSON.stringify(migration(three).inputs));
  assert.equal(migration(five).urn, migration(three).urn);
  assert.deepEqual(
    migratedTopology(five).shards.map((s) => s.name),
    ["shard-0", "shard-1", "shard-2", "shard-3", "shard-4"],
  );
  const hashEnv = (graph: Map<string, Recorded>) =>
    (migration(graph).inputs["envs"] as string[]).find((e) => e.startsWith("TOPOLOGY_HASH="));
  assert.notEqual(hashEnv(five), hashEnv(three));
});

test("5 -> 3: the removed shards' resources are absent and the drain topology no longer lists them", () => {
  const removed = [...five.values()].filter((r) => ![...threeAgain.keys()].includes(r.urn));
  assert.ok(removed.length > 0);
  assert.ok(
    removed.every((r) => /^redis-shard-[34]/.test(r.name)),
    removed.map((r) => r.name).join(", "),
  );
  assert.deepEqual(
    migratedTopology(threeAgain).shards.map((s) => s.name),
    ["shard-0", "shard-1", "shard-2"],
  );
  // The migration is an update of existing URNs, i.e. it runs before the deletes of shard-3 and shard-4.
  assert.ok(five.has(migration(threeAgain).urn));
  assert.notEqual(JSON.stringify(migration(threeAgain).inputs), JSON.stringify(migration(five).inputs));
  assert.equal(JSON.stringify(migration(threeAgain).inputs), JSON.stringify(migration(three).inputs));
});
