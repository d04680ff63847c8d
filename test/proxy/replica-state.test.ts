/**
 * The replicas' state (one `INFO replication` per node after a map load) is read only while reads
 * may go to replicas: a fleet on `readFrom: master` whose clients never send READONLY asks the
 * replicas nothing. Counted on a real cluster of 2 masters x 1 replica from each node's own
 * `INFO commandstats`.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import type { RedisServer } from "../../src/local/redis-server.ts";
import { fileCleanup, startCluster, until, type TestCluster } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";
import { replicasCaughtUp } from "../support/replication.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
before(async () => {
  cluster = await startCluster(hooks, { masters: 2, replicas: 1 });
});

const admins = new Map<RedisServer, Redis>();
function admin(node: RedisServer): Redis {
  let client = admins.get(node);
  if (client === undefined) admins.set(node, (client = cluster.connect(node)));
  return client;
}

/** This test's own INFO calls per node, which the node counts too. */
const ownInfo = new Map<RedisServer, number>();

/** Calls of one command (`info`, `cluster|shards`) summed over nodes, this test's own left out. */
async function calls(nodes: RedisServer[], command: string): Promise<number> {
  let total = 0;
  for (const node of nodes) {
    const own = ownInfo.get(node) ?? 0;
    ownInfo.set(node, own + 1);
    const info = String(await admin(node).call("INFO", "commandstats"));
    const pattern = new RegExp(`^cmdstat_${command.replace("|", "\\|")}:calls=(\\d+)`, "m");
    total += Number(pattern.exec(info)?.[1] ?? 0) - (command === "info" ? own : 0);
  }
  return total;
}

/** Ids of the replicas' client connections other than their master links. */
async function replicaClients(): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const replica of cluster.replicas) {
    for (const line of String(await admin(replica).call("CLIENT", "LIST")).split("\n")) {
      const id = /^id=(\d+)/.exec(line)?.[1];
      if (id !== undefined && !/ flags=\w*M/.test(line)) ids.add(`${replica.port}:${id}`);
    }
  }
  return ids;
}

const keys = Array.from({ length: 50 }, (_, i) => `state:${i}`);

test("readFrom master, no READONLY: map loads ask the replicas nothing; READONLY reads still go to replicas", async (t) => {
  const before = await replicaClients();
  const proxy = await startTestProxy(t, cluster, { readFrom: "master", refreshIntervalMs: 100 });
  const client = proxyClient(t, proxy.port);
  for (const key of keys) await client.set(key, key);
  for (const master of cluster.masters) await replicasCaughtUp(admin(master), { replicas: 1 });

  const info = await calls(cluster.replicas, "info");
  const loads = await calls(cluster.masters, "cluster|shards");
  for (const key of keys) assert.equal(await client.get(key), key);
  await until(
    async () => (await calls(cluster.masters, "cluster|shards")) >= loads + 5,
    30_000,
    "five more slot-map loads",
  );
  assert.equal(await calls(cluster.replicas, "info"), info, "no INFO reached a replica");
  assert.equal(await calls(cluster.replicas, "get"), 0);

  // A client's READONLY: its reads are served by the replicas from the first one on.
  const reader = proxyClient(t, proxy.port);
  assert.equal(await reader.call("READONLY"), "OK");
  const gets = await calls(cluster.replicas, "get");
  for (const key of keys) assert.equal(await reader.get(key), key);
  assert.equal(await calls(cluster.replicas, "get"), gets + keys.length);
  assert.ok((await calls(cluster.replicas, "info")) > info, "the replicas' state was read");

  // Once no read may go to a replica any more, the proxy lets go of the replicas altogether.
  assert.equal(await reader.call("READWRITE"), "OK");
  await until(
    async () => [...(await replicaClients())].every((id) => before.has(id)),
    60_000,
    "the proxy's connections to the replicas closed",
  );
  const idle = await calls(cluster.replicas, "info");
  const idleLoads = await calls(cluster.masters, "cluster|shards");
  await until(
    async () => (await calls(cluster.masters, "cluster|shards")) >= idleLoads + 5,
    30_000,
    "five more slot-map loads",
  );
  assert.equal(await calls(cluster.replicas, "info"), idle, "no INFO reached a replica once idle");
  // ...and takes them up again at the next READONLY read.
  assert.equal(await reader.call("READONLY"), "OK");
  for (const key of keys) assert.equal(await reader.get(key), key);
  assert.equal(await calls(cluster.replicas, "get"), gets + 2 * keys.length);
});
