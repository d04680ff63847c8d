/**
 * Databases other than 0 across slot migrations, seen through the proxy on a Valkey 9 cluster with
 * 16 databases: Valkey's atomic migration, and our legacy path (`dredis cluster rebalance`).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import calculateSlot from "cluster-key-slot";
import type { Redis } from "ioredis";
import { freePorts } from "../../src/local/ports.ts";
import { RedisServer } from "../../src/local/redis-server.ts";
import { addShard } from "../../src/cluster/admin/shards.ts";
import { rebalanceCluster } from "../../src/cluster/admin/rebalance.ts";
import type { Topology } from "../../src/cluster/topology.ts";
import { serverBinary, startCluster, until, type Cleanup, type TestCluster } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";

const KEYS = 400;
const keyOf = (i: number): string => `mig:${i}`;

async function valkeyCluster(t: Cleanup): Promise<TestCluster> {
  return startCluster(t, { engine: "valkey", masters: 3, replicas: 0, config: { "cluster-databases": 16 } });
}

/** Writes every key in databases 0 and 1 (different values) and some in database 1 only. */
async function writeBoth(zero: Redis, one: Redis): Promise<void> {
  const names = Array.from({ length: KEYS }, (_, i) => keyOf(i));
  await zero.mset(...names.flatMap((k) => [k, `zero-${k}`]));
  await one.mset(...names.flatMap((k) => [k, `one-${k}`]));
  await one.mset(...names.flatMap((k) => [`only1:${k}`, "1"]));
}

/** Keys whose value is not the expected one, per database (empty lists when all are right). */
async function wrong(zero: Redis, one: Redis): Promise<{ zero: string[]; one: string[]; leaked: number }> {
  const names = Array.from({ length: KEYS }, (_, i) => keyOf(i));
  const [inZero, inOne] = await Promise.all([zero.mget(...names), one.mget(...names)]);
  return {
    zero: names.filter((k, i) => inZero[i] !== `zero-${k}`),
    one: names.filter((k, i) => inOne[i] !== `one-${k}`),
    leaked: await zero.exists(...names.map((k) => `only1:${k}`)),
  };
}

test("atomic slot migration (CLUSTER MIGRATESLOTS) carries every database: database 1's keys stay in database 1, invisible from 0", async (t) => {
  const cluster = await valkeyCluster(t);
  const proxy = await startTestProxy(t, cluster, {}, { busyProxy: true });
  const zero = proxyClient(t, proxy.port);
  const one = proxyClient(t, proxy.port, { db: 1 });
  await writeBoth(zero, one);
  const moving = Array.from({ length: KEYS }, (_, i) => keyOf(i)).filter((k) => calculateSlot(k) < 2000);
  assert.ok(moving.length > 20, "some keys live in the slots that move");

  const [source, target] = cluster.masters.map((m) => cluster.connect(m));
  const targetId = String(await target!.call("CLUSTER", "MYID"));
  await source!.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "1999", "NODE", targetId);
  // Clients in both databases keep reading while the slots move (bounded: 200 rounds).
  for (let round = 0; round < 200; round++) {
    const state = (await source!.call("CLUSTER", "GETSLOTMIGRATIONS")) as unknown[][];
    const done = state.length > 0 && state.every((m) => m.includes("success"));
    const failed = state.find((m) => m.includes("failed") || m.includes("cancelled"));
    assert.equal(failed, undefined, `migration failed: ${JSON.stringify(failed)}`);
    assert.deepEqual(await wrong(zero, one), { zero: [], one: [], leaked: 0 });
    if (done) break;
  }
  await until(
    async () =>
      String(await source!.call("CLUSTER", "COUNTKEYSINSLOT", 0)) === "0" &&
      (await target!.call("CLUSTER", "SHARDS")) !== null,
    20_000,
    "the slots to leave the source",
  );
  await cluster.waitStable();
  assert.deepEqual(await wrong(zero, one), { zero: [], one: [], leaked: 0 });
  // The moved keys of database 1 are on the target now, in database 1.
  await target!.select(1);
  assert.equal(await target!.get(moving[0]!), `one-${moving[0]}`);
  assert.equal(await one.dbsize(), KEYS * 2);
  assert.equal(await zero.dbsize(), KEYS);
});

test("the legacy migration (dredis cluster rebalance onto a new shard) keeps database 1's keys", async (t) => {
  const cluster = await valkeyCluster(t);
  const proxy = await startTestProxy(t, cluster, {}, { busyProxy: true });
  const zero = proxyClient(t, proxy.port);
  const one = proxyClient(t, proxy.port, { db: 1 });
  await writeBoth(zero, one);

  const [port, busPort] = await freePorts(2);
  const extra = await RedisServer.start({
    port: port!,
    dir: join(cluster.dir, "extra"),
    binary: serverBinary("valkey"),
    config: {
      "cluster-enabled": true,
      "cluster-config-file": "nodes.conf",
      "cluster-port": busPort!,
      "cluster-node-timeout": 2000,
      "cluster-databases": 16,
    },
  });
  t.after(() => extra.stop());
  const four: Topology = {
    shards: [...cluster.masters, extra].map((node, i) => ({
      name: `shard-${i}`,
      master: node.address,
      replicas: [],
    })),
  };
  await addShard(four, "shard-3");
  // The key-by-key path, forced: Valkey's atomic one (the default here) is tested above.
  const result = await rebalanceCluster(four, { slotMigration: "legacy" });
  assert.ok(result.moved.length > 0, "slots moved to the new shard");
  assert.deepEqual(await wrong(zero, one), { zero: [], one: [], leaked: 0 });
});
