/**
 * Reads from replicas through the proxy, against a real cluster of 2 masters x 1 replica: where
 * reads and writes ran is read from each node's own `INFO commandstats`.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import type { RedisServer } from "../../src/local/redis-server.ts";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { liveFields } from "../../src/proxy/config.ts";
import { fileCleanup, startCluster, until, type TestCluster } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";
import { replicasCaughtUp } from "../support/replication.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
before(async () => {
  cluster = await startCluster(hooks, { masters: 2, replicas: 1 });
});

/** Calls of one command on a node since its last CONFIG RESETSTAT. */
async function calls(node: RedisServer, command: string): Promise<number> {
  const info = String(await admin(node).call("INFO", "commandstats"));
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
}

const admins = new Map<RedisServer, Redis>();
function admin(node: RedisServer): Redis {
  let client = admins.get(node);
  if (client === undefined) admins.set(node, (client = cluster.connect(node)));
  return client;
}

async function resetStats(): Promise<void> {
  for (const node of cluster.nodes) if (node.running) await admin(node).call("CONFIG", "RESETSTAT");
}

async function sum(nodes: RedisServer[], command: string): Promise<number> {
  let total = 0;
  for (const node of nodes) total += await calls(node, command);
  return total;
}

/** Waits until every running replica has applied everything its master acknowledged. */
async function replicated(): Promise<void> {
  for (const master of cluster.masters) {
    if (master.running) await replicasCaughtUp(admin(master), { replicas: 1 });
  }
}

const keysFor = (prefix: string, n = 200) => Array.from({ length: n }, (_, i) => `${prefix}:${i}`);

test("replica-preferred: GETs are served by the replicas, writes by the masters", async (t) => {
  const proxy = await startTestProxy(t, cluster, { readFrom: "replica-preferred" });
  const client = proxyClient(t, proxy.port);
  const keys = keysFor("preferred");
  await resetStats();
  for (const key of keys) await client.set(key, `v-${key}`);
  await replicated();
  for (const key of keys) assert.equal(await client.get(key), `v-${key}`);

  assert.equal(await sum(cluster.masters, "set"), keys.length);
  assert.equal(await sum(cluster.masters, "get"), 0, "no GET reached a master");
  assert.equal(await sum(cluster.replicas, "get"), keys.length);
  // Both shards' replicas served reads (the keys hash to both).
  for (const replica of cluster.replicas) assert.ok((await calls(replica, "get")) > 0);
  // Commands the proxy does not route by slot alone stay on the masters: a transaction's reads.
  await client.multi().get(keys[0]!).get(keys[0]!).exec();
  assert.equal(await sum(cluster.replicas, "get"), keys.length);
  assert.equal(await sum(cluster.masters, "get"), 2);
  // ...and reads under a WATCH: a stale value there would let EXEC commit on it.
  await client.watch(keys[1]!);
  assert.equal(await client.get(keys[1]!), `v-${keys[1]}`);
  await client.unwatch();
  assert.equal(await sum(cluster.masters, "get"), 3);
  assert.equal(await client.get(keys[1]!), `v-${keys[1]}`);
  assert.equal(await sum(cluster.replicas, "get"), keys.length + 1);
});

test("master: a read after an acknowledged write returns it, and the replicas see no GET", async (t) => {
  const proxy = await startTestProxy(t, cluster, { readFrom: "master" });
  const client = proxyClient(t, proxy.port);
  await resetStats();
  const keys = keysFor("master");
  for (let round = 0; round < 3; round++) {
    for (const key of keys) {
      await client.set(key, `${round}-${key}`);
      assert.equal(await client.get(key), `${round}-${key}`);
    }
  }
  assert.equal(await sum(cluster.masters, "get"), keys.length * 3);
  assert.equal(await sum(cluster.replicas, "get"), 0);
});

test("READONLY sends one client's reads to replicas under `master`; READWRITE and RESET bring them back", async (t) => {
  const proxy = await startTestProxy(t, cluster, { readFrom: "master" });
  const reader = proxyClient(t, proxy.port);
  const other = proxyClient(t, proxy.port);
  const keys = keysFor("session", 100);
  for (const key of keys) await other.set(key, key);
  await replicated();
  await resetStats();

  assert.equal(await reader.call("READONLY"), "OK");
  for (const key of keys) assert.equal(await reader.get(key), key);
  assert.equal(await sum(cluster.replicas, "get"), keys.length);
  // Another client of the same worker keeps reading from the masters.
  for (const key of keys) assert.equal(await other.get(key), key);
  assert.equal(await sum(cluster.masters, "get"), keys.length);

  assert.equal(await reader.call("READWRITE"), "OK");
  for (const key of keys) await reader.get(key);
  assert.equal(await sum(cluster.masters, "get"), keys.length * 2);
  assert.equal(await reader.call("READONLY"), "OK");
  assert.equal(await reader.call("RESET"), "RESET");
  for (const key of keys) await reader.get(key);
  assert.equal(await sum(cluster.masters, "get"), keys.length * 3);
  assert.equal(await sum(cluster.replicas, "get"), keys.length);

  // The setting is live: a reload to replica-preferred moves every client's reads.
  proxy.reload({ ...liveFields(proxy.context.config), readFrom: "replica-preferred" });
  for (const key of keys) await other.get(key);
  assert.equal(await sum(cluster.replicas, "get"), keys.length * 2);
});

test("a replica killed under reads: its shard's reads fall back to the master with no client error", async (t) => {
  // A cluster of its own: this test kills a node.
  const own = await startCluster(t, { masters: 2, replicas: 1 });
  const proxy = await startTestProxy(t, own, { readFrom: "replica-preferred" });
  const clients = Array.from({ length: 4 }, () => proxyClient(t, proxy.port));
  const keys = keysFor("killed");
  for (const key of keys) await clients[0]!.set(key, key);
  const direct = (node: RedisServer) => own.connect(node);
  for (const master of own.masters) await replicasCaughtUp(direct(master), { replicas: 1 });
  const victim = own.replicas[0]!;
  const victimMaster = direct(own.masters[0]!);
  const gets = async (node: Redis) =>
    Number(/^cmdstat_get:calls=(\d+)/m.exec(String(await node.call("INFO", "commandstats")))?.[1] ?? 0);
  const victimClient = direct(victim);
  const before = await gets(victimMaster);

  const errors: string[] = [];
  let killed = false;
  let readsAfterKill = 0;
  const load = Promise.all(
    clients.map(async (client, c) => {
      for (let i = 0; i < 20_000 && readsAfterKill < 2_000; i++) {
        const key = keys[(c * 31 + i) % keys.length]!;
        try {
          assert.equal(await client.get(key), key);
        } catch (err) {
          errors.push((err as Error).message);
        }
        if (killed) readsAfterKill++;
      }
    }),
  );
  await until(async () => (await gets(victimClient)) > 0, 10_000, "the replica to serve reads");
  await victim.kill();
  killed = true;
  await load;

  assert.deepEqual(errors, [], "no client saw an error");
  assert.ok(readsAfterKill >= 2_000);
  assert.ok((await gets(victimMaster)) > before, "the dead replica's master served its shard's reads");

  // `replica` never falls back: the dead replica's shard answers an error naming why, the other reads.
  proxy.reload({ ...liveFields(proxy.context.config), readFrom: "replica" });
  const shard0 = keys.find((key) => slotOf(key) < 8192)!;
  const shard1 = keys.find((key) => slotOf(key) >= 8192)!;
  await assert.rejects(clients[0]!.get(shard0), /no replica of the shard of master .* may serve reads now/);
  assert.equal(await clients[0]!.get(shard1), shard1);
});
