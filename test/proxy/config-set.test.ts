import { test, before } from "node:test";
import assert from "node:assert/strict";
import { applyTopology } from "../../src/cluster/admin/apply.ts";
import type { Topology } from "../../src/cluster/topology.ts";
import { fileCleanup, startCluster, startStandalone, until, type TestCluster } from "../support/redis.ts";
import { startTestProxy, type TestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { startEmptyNodes } from "../cluster/admin/cluster-fixture.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: TestProxy;
let reference: RedisServer;

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 1 });
  proxy = await startTestProxy(hooks, cluster, {}, { busyProxy: true });
  reference = await startStandalone(hooks);
});

/** Every node's value of a parameter, masters and replicas. */
async function everyNode(parameter: string, nodes = cluster.nodes): Promise<string[]> {
  return Promise.all(
    nodes.map(async (n) => {
      const client = cluster.connect(n);
      const [, value] = (await client.call("CONFIG", "GET", parameter)) as string[];
      return String(value);
    }),
  );
}

const same = (value: string, count = cluster.nodes.length) => Array.from({ length: count }, () => value);

async function rawPair(protocol: 2 | 3): Promise<[RawClient, RawClient]> {
  const clients = await Promise.all([RawClient.connect(proxy.port), RawClient.connect(reference.port)]);
  if (protocol === 3) for (const c of clients) await c.command("HELLO", "3");
  hooks.after(() => clients.forEach((c) => c.close()));
  return clients;
}

test("CONFIG SET, GET and RESETSTAT answer byte for byte as a standalone redis does, RESP2 and RESP3", async () => {
  const commands = [
    ["CONFIG", "SET", "list-max-listpack-size", "4"],
    ["CONFIG", "GET", "list-max-listpack-size"],
    ["CONFIG", "SET", "hz", "abc"],
    ["CONFIG", "SET", "nosuch", "1"],
    ["CONFIG", "SET", "NoSuch", "1"],
    ["CONFIG", "SET", "hz*", "1"],
    ["CONFIG", "SET", "hz", "10", "maxmemory-policy"],
    ["CONFIG", "SET", "hz"],
    ["CONFIG", "SET", "hz", "11", "HZ", "12"],
    ["CONFIG", "SET", "hz", "10", "nosuch", "1"],
    ["CONFIG", "SET", "Notify-Keyspace-Events", "KEA", "slowlog-max-len", "200"],
    ["CONFIG", "GET", "notify-keyspace-events"],
    ["CONFIG", "RESETSTAT"],
    ["CONFIG", "RESETSTAT", "x"],
  ];
  for (const protocol of [2, 3] as const) {
    const [viaProxy, direct] = await rawPair(protocol);
    for (const command of commands) {
      assert.equal(
        (await viaProxy.command(...command)).toString(),
        (await direct.command(...command)).toString(),
        `RESP${protocol}: ${command.join(" ")}`,
      );
    }
  }
  assert.deepEqual(await everyNode("list-max-listpack-size"), same("4"));
  assert.deepEqual(await everyNode("notify-keyspace-events"), same("AKE"));
  assert.deepEqual(await everyNode("slowlog-max-len"), same("200"));
  // The refused values changed nothing.
  assert.deepEqual(await everyNode("hz"), same("10"));
});

test("a parameter that is not cluster-wide is refused with its reason, and nothing changes", async () => {
  const raw = await RawClient.connect(proxy.port);
  hooks.after(() => raw.close());
  const cases: [string[], RegExp][] = [
    [
      ["hz", "20", "port", "1"],
      /^-ERR command 'config\|set' is disabled on this proxy: parameter 'port' cannot be set through it because it differs per node/,
    ],
    [
      ["hz", "20", "dir", "/tmp"],
      /^-ERR command 'config\|set' is disabled on this proxy: parameter 'dir' .*dredis cluster roll/,
    ],
    [["requirepass", "x"], /'requirepass' .*--previous-password-file.*dredis local set/],
    [["masterauth", "x"], /--drop-previous-password/],
    [["maxmemory", "1mb"], /dredis cluster apply --maxmemory/],
    [["appendonly", "yes"], /dredis cluster apply --persistence/],
    [["cluster-node-timeout", "10"], /configures the cluster itself/],
    [["timeout", "5"], /the proxy's own connections/],
    [
      ["loglevel", "debug"],
      /not one of the parameters that are safe to set on every node \(docs\/config\.md/,
    ],
  ];
  for (const [args, expected] of cases) {
    const reply = (await raw.command("CONFIG", "SET", ...args)).toString();
    assert.match(reply, expected, args.join(" "));
  }
  assert.deepEqual(await everyNode("hz"), same("10"));
  assert.deepEqual(
    await everyNode("port"),
    cluster.nodes.map((n) => String(n.port)),
  );
  assert.deepEqual(await everyNode("loglevel"), same("notice"));
});

test("a node that refuses makes every node take its previous value back, and the client gets its error", async () => {
  const replica = cluster.connect(cluster.replicas[1]!);
  await replica.call("ACL", "SETUSER", "default", "-config|set");
  hooks.after(async () => void (await replica.call("ACL", "SETUSER", "default", "+config|set")));
  const own = await replica.call("CONFIG", "SET", "hz", "33").then(
    () => "no error",
    (err: Error) => err.message,
  );
  const raw = await RawClient.connect(proxy.port);
  hooks.after(() => raw.close());
  const reply = (await raw.command("CONFIG", "SET", "hz", "33", "slowlog-max-len", "99")).toString();
  assert.equal(reply, `-${own}\r\n`);
  assert.deepEqual(await everyNode("hz"), same("10"));
  assert.deepEqual(await everyNode("slowlog-max-len"), same("200"));
  await replica.call("ACL", "SETUSER", "default", "+config|set");
});

test("values survive a node's restart and reach the nodes of a shard added afterwards", async () => {
  const raw = await RawClient.connect(proxy.port);
  hooks.after(() => raw.close());
  assert.equal((await raw.command("CONFIG", "SET", "list-max-listpack-size", "4")).toString(), "+OK\r\n");
  assert.equal((await raw.command("CONFIG", "SET", "zset-max-listpack-entries", "17")).toString(), "+OK\r\n");

  const restarted = cluster.replicas[0]!;
  await restarted.stop();
  await restarted.restart();
  await cluster.waitStable();
  assert.deepEqual(await everyNode("list-max-listpack-size", [restarted]), ["4"]);
  assert.deepEqual(await everyNode("zset-max-listpack-entries", [restarted]), ["17"]);

  const added = await startEmptyNodes(hooks, 2);
  const shardOf = (i: number) => ({
    name: `shard-${i}`,
    master: cluster.masters[i]!.address,
    replicas: [cluster.replicas[i]!.address],
  });
  const topology: Topology = {
    shards: [
      shardOf(0),
      shardOf(1),
      shardOf(2),
      { name: "shard-3", master: added[0]!.address, replicas: [added[1]!.address] },
    ],
  };
  const { plan } = await applyTopology(topology);
  assert.deepEqual(plan.join.sort(), added.map((n) => n.address).sort());
  assert.deepEqual(await everyNode("list-max-listpack-size", added), same("4", 2));
  assert.deepEqual(await everyNode("zset-max-listpack-entries", added), same("17", 2));
  assert.deepEqual(await everyNode("notify-keyspace-events", added), same("AKE", 2));

  // A CONFIG SET through the proxy now reaches the new shard too (once the proxy has seen it).
  const everyAddress = [...cluster.nodes, ...added].map((n) => n.address).sort();
  await until(
    async () => {
      const nodes = String(await cluster.connect(cluster.masters[0]!).call("CLUSTER", "NODES"));
      return everyAddress.every((a) => nodes.includes(a));
    },
    20_000,
    "every node to be known",
  );
  await until(
    async () => {
      await raw.command("CONFIG", "SET", "slowlog-max-len", "77");
      return (await everyNode("slowlog-max-len", added)).every((v) => v === "77");
    },
    20_000,
    "the proxy to reach the added shard",
  );
  assert.deepEqual(await everyNode("slowlog-max-len"), same("77"));

  await added[0]!.stop();
  await added[0]!.restart();
  assert.deepEqual(await everyNode("list-max-listpack-size", [added[0]!]), ["4"]);
  assert.deepEqual(await everyNode("slowlog-max-len", [added[0]!]), ["77"]);
});
