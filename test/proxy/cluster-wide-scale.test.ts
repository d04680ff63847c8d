/**
 * Cluster-wide commands right after a scale: a new shard joins and slots (with their keys) move
 * to it, and DBSIZE, KEYS, SCRIPT LOAD and CONFIG SET through the proxy count and reach the new master at once,
 * not from the next timed map refresh (set to a minute here, so only the fix can pass).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { freePorts } from "../../src/local/ports.ts";
import { startCluster, startStandalone, until } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";
import { SlotMover } from "../support/slot-mover.ts";

const KEYS = 300;

test("DBSIZE, KEYS, SCRIPT LOAD and CONFIG SET count the new shard as soon as slots moved to it", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, { refreshIntervalMs: 60_000 }, { busyProxy: true });
  const client = proxyClient(t, proxy.port);
  const keys = Array.from({ length: KEYS }, (_, i) => `scaled:${i}`);
  for (const key of keys) await client.set(key, key);
  assert.equal(await client.dbsize(), KEYS);

  // A new shard: an empty cluster node, met by the cluster.
  const [busPort] = await freePorts(1);
  const fresh = await startStandalone(t, {
    "cluster-enabled": true,
    "cluster-config-file": "nodes.conf",
    "cluster-port": busPort!,
    "cluster-node-timeout": 2000,
  });
  const freshAdmin = cluster.connect(fresh);
  await cluster.connect(cluster.masters[0]!).call("CLUSTER", "MEET", fresh.host, fresh.port, busPort!);
  await until(
    async () => {
      for (const node of [...cluster.masters, fresh]) {
        const nodes = String(await cluster.connect(node).call("CLUSTER", "NODES"))
          .trim()
          .split("\n");
        if (nodes.length < 4 || nodes.some((line) => /handshake|noaddr/.test(line))) return false;
      }
      return String(await freshAdmin.call("CLUSTER", "INFO")).includes("cluster_state:ok");
    },
    30_000,
    "the new node and the masters to know each other",
  );

  // Slots of a third of the keys move to it, from each of the three shards.
  const grown = { ...cluster, masters: [...cluster.masters, fresh] };
  const mover = await SlotMover.create(grown);
  const slots = [...new Set(keys.filter((_, i) => i % 3 === 0).map((key) => slotOf(key)))];
  for (const slot of slots) {
    const from = SlotMover.initialOwner(slot);
    await mover.start(slot, from, 3);
    await mover.finish(slot, from, 3);
  }
  const moved = Number(await freshAdmin.dbsize());
  assert.ok(moved >= KEYS / 3, `the new shard holds the moved keys (${moved})`);

  assert.equal(await client.dbsize(), KEYS);
  assert.equal((await client.keys("scaled:*")).length, KEYS);
  const sha = String(await client.call("SCRIPT", "LOAD", "return 1"));
  assert.deepEqual(await freshAdmin.call("SCRIPT", "EXISTS", sha), [1]);
  assert.equal(await client.call("CONFIG", "SET", "slowlog-max-len", "321"), "OK");
  assert.deepEqual(await freshAdmin.call("CONFIG", "GET", "slowlog-max-len"), ["slowlog-max-len", "321"]);
});
