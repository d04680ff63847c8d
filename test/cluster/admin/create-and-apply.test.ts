import { test } from "node:test";
import assert from "node:assert/strict";
import { createCluster } from "../../../src/cluster/admin/create.ts";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import { checkCluster } from "../../../src/cluster/admin/check.ts";
import {
  clusterClient,
  redisCliCheck,
  startEmptyNodes,
  topologyOf,
  writeKeys,
  wrongKeys,
} from "./cluster-fixture.ts";

const KEYS = 20_000;

test("create builds a 3x1 cluster from empty nodes with even slots and replicas on their masters", async (t) => {
  const nodes = await startEmptyNodes(t, 6);
  const topology = topologyOf(nodes, 3);
  const assignment = await createCluster(topology);
  assert.deepEqual(
    assignment.map((a) => a.slots),
    ["0-5461", "5462-10922", "10923-16383"],
  );
  const report = await checkCluster(topology);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(
    report.shards.map((s) => [s.name, s.slots, s.replicas.length]),
    [
      ["shard-0", 5462, 1],
      ["shard-1", 5461, 1],
      ["shard-2", 5461, 1],
    ],
  );
  await redisCliCheck(topology.shards[0]!.master);
});

test("apply grows 3 to 5 shards and shrinks back to 3 without losing a key", async (t) => {
  const nodes = await startEmptyNodes(t, 10);
  const three = topologyOf(nodes, 3);
  const five = topologyOf(nodes, 5);
  await applyTopology(three);
  const client = clusterClient(t, three);
  await writeKeys(client, KEYS);

  const grown = await applyTopology(five);
  assert.equal(grown.plan.join.length, 4);
  assert.equal(grown.moved.length, grown.plan.rebalance.moves.length);
  assert.ok(grown.moved.length > 6000, `moved ${grown.moved.length} slots`);
  await redisCliCheck(five.shards[0]!.master);
  assert.deepEqual(await wrongKeys(client, KEYS), []);
  const report5 = await checkCluster(five);
  assert.deepEqual(report5.problems, []);
  assert.ok(report5.shards.every((s) => s.slots === 3276 || s.slots === 3277));

  const again = await applyTopology(five);
  assert.equal(again.plan.changes, false, "a second apply finds nothing to do");

  await applyTopology(three);
  await redisCliCheck(three.shards[0]!.master);
  assert.deepEqual(await wrongKeys(client, KEYS), []);
  const report3 = await checkCluster(three);
  assert.deepEqual(report3.problems, []);
  assert.equal(
    report3.shards.reduce((n, s) => n + s.keys, 0),
    KEYS,
  );
});
