/**
 * Legacy (key by key) slot moves when a source shard's primary changes mid-run: the run stops with an
 * error naming the shard and both primaries (its open slots name the old primary, so it does not
 * go on by itself); `fix` then a re-run complete the move with every key where it belongs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import { fixCluster } from "../../../src/cluster/admin/fix.ts";
import { addShard } from "../../../src/cluster/admin/shards.ts";
import { checkCluster } from "../../../src/cluster/admin/check.ts";
import {
  adminConnections,
  clusterClient,
  redisCliCheck,
  startEmptyNodes,
  topologyOf,
  writeKeys,
  wrongKeys,
} from "./cluster-fixture.ts";
import { until } from "../../support/redis.ts";

const KEYS = 20_000;

test("legacy migration: a source shard fails over mid-run; the run stops naming the shard and both primaries, fix and a re-run complete it", async (t) => {
  const nodes = await startEmptyNodes(t, 8);
  const three = topologyOf(nodes, 3, 1);
  const four = topologyOf(nodes, 4, 1);
  await applyTopology(three);
  await addShard(four, "shard-3");
  const client = clusterClient(t, four);
  await writeKeys(client, KEYS);
  const connect = adminConnections(t);
  let failover: Promise<unknown> | undefined;
  let shard: (typeof four.shards)[number] | undefined;
  // CLUSTER FAILOVER (not TAKEOVER): the replica catches up first, so no moved key is lost to it.
  const failed = await applyTopology(four, {
    slotMigration: "legacy",
    slotsPerBatch: 8,
    parallelBatches: 1,
    onProgress: (event) => {
      if (failover || event.type !== "slot-start") return;
      shard = four.shards.find((s) => s.name === event.from)!;
      failover = connect(shard.replicas[0]!).call("CLUSTER", "FAILOVER");
    },
  }).then(
    () => undefined,
    (err: Error) => err,
  );
  assert.equal(await failover, "OK");
  assert.ok(shard && failed instanceof Error, "the run with a failed-over source stops");
  const replica = shard.replicas[0]!;
  assert.match(
    failed.message,
    new RegExp(`shard ${shard.name}'s primary changed from ${shard.master} to ${replica} \\(`),
  );
  assert.match(failed.message, /during the move of slots/);
  assert.match(failed.message, /re-run the same command/);

  await fixCluster(four);
  await applyTopology(four, { slotMigration: "legacy" });
  await until(async () => (await checkCluster(four)).problems.length === 0, 30_000, "the cluster to settle");
  assert.equal((await checkCluster(four)).shards.map((s) => s.slots).join(","), "4096,4096,4096,4096");
  await redisCliCheck(replica);
  assert.deepEqual(await wrongKeys(client, KEYS), []);
});
