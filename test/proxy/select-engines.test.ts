/**
 * SELECT where the shards have one database: Redis 7 shards, and Valkey 9 without
 * `cluster-databases`. The proxy keeps Redis Cluster's answer on both.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster, type Cleanup } from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import type { Engine } from "../../src/cluster/engine.ts";

const COMMANDS = [
  ["SELECT", "0"],
  ["SELECT", "1"],
  ["SELECT", "15"],
  ["SELECT", "-1"],
  ["SELECT", "x"],
];

async function replies(t: Cleanup, engine: Engine): Promise<{ proxy: string[]; node: string[] }> {
  const cluster = await startCluster(t, { engine, masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, {}, { busyProxy: true });
  const viaProxy = await RawClient.connect(proxy.port);
  const node = await RawClient.connect(cluster.masters[0]!.port);
  t.after(() => {
    viaProxy.close();
    node.close();
  });
  const [fromProxy, fromNode] = await Promise.all([viaProxy.pipeline(COMMANDS), node.pipeline(COMMANDS)]);
  return { proxy: fromProxy.map(String), node: fromNode.map(String) };
}

const REDIS_CLUSTER = [
  "+OK\r\n",
  "-ERR SELECT is not allowed in cluster mode\r\n",
  "-ERR SELECT is not allowed in cluster mode\r\n",
  "-ERR SELECT is not allowed in cluster mode\r\n",
  "-ERR value is not an integer or out of range\r\n",
];

test("on Redis shards SELECT answers as a cluster node: only database 0", async (t) => {
  const { proxy, node } = await replies(t, "redis");
  assert.deepEqual(node, REDIS_CLUSTER);
  assert.deepEqual(proxy, REDIS_CLUSTER);
});

test("on Valkey 9 shards with one database SELECT keeps Redis Cluster's answer (the node itself says the index is out of range)", async (t) => {
  const { proxy, node } = await replies(t, "valkey");
  assert.deepEqual(proxy, REDIS_CLUSTER);
  assert.equal(node[1], "-ERR DB index is out of range\r\n");
});
