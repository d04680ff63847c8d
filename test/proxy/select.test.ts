/**
 * SELECT n through the proxy on a Valkey 9 cluster with 16 databases, compared with a standalone
 * valkey-server with 16 databases wherever the reply should be the same.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { fileCleanup, startCluster, startStandalone, until, type TestCluster } from "../support/redis.ts";
import { proxyClient, startTestProxy, type TestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";
import { DatabaseErrors } from "../../src/errors.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: TestProxy;
/** A proxy with `crossSlot: emulate`: atomic commands across slots run in steps on the busy proxy. */
let emulating: TestProxy;
let reference: RedisServer;

before(async () => {
  cluster = await startCluster(hooks, {
    engine: "valkey",
    masters: 3,
    replicas: 0,
    config: { "cluster-databases": 16 },
  });
  proxy = await startTestProxy(hooks, cluster, {}, { busyProxy: true });
  emulating = await startTestProxy(hooks, cluster, { crossSlot: "emulate" }, { busyProxy: true });
  reference = await startStandalone(hooks, { databases: 16 }, "valkey");
});

async function rawPair(): Promise<[RawClient, RawClient]> {
  const viaProxy = await RawClient.connect(proxy.port);
  const direct = await RawClient.connect(reference.port);
  hooks.after(() => {
    viaProxy.close();
    direct.close();
  });
  return [viaProxy, direct];
}

/** Runs the same pipeline on both and returns each side's replies as text. */
async function both(pair: [RawClient, RawClient], commands: string[][]): Promise<[string[], string[]]> {
  const [p, d] = await Promise.all(pair.map((c) => c.pipeline(commands)));
  return [p!.map(String), d!.map(String)];
}

/** 40 keys over every shard, with a prefix per test. */
function keys(prefix: string, n = 40): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}:${i}`);
}

test("SELECT's errors are the standalone server's: out of range, negative, not an integer", async () => {
  const pair = await rawPair();
  const [p, d] = await both(pair, [
    ["SELECT", "16"],
    ["SELECT", "-1"],
    ["SELECT", "x"],
    ["SELECT", "1", "2"],
    ["SELECT", "15"],
    ["SELECT", "0"],
  ]);
  assert.deepEqual(p, d);
  assert.equal(p[0], "-ERR DB index is out of range\r\n");
  assert.equal(p[4], "+OK\r\n");
});

test("keys written in database 1 are invisible from database 0 and from another client, routed and split commands alike", async () => {
  const pair = await rawPair();
  const names = keys("iso");
  const commands: string[][] = [
    ["SELECT", "1"],
    ["MSET", ...names.flatMap((k) => [k, `one:${k}`])],
    ["SET", "iso:single", "one"],
    ["GET", "iso:single"],
    ["MGET", ...names.slice(0, 10)],
    ["EXISTS", ...names],
    ["DBSIZE"],
    ["SELECT", "0"],
    ["GET", "iso:single"],
    ["MGET", ...names.slice(0, 10)],
    ["EXISTS", ...names],
    ["DBSIZE"],
    ["RANDOMKEY"],
    ["SET", "iso:single", "zero"],
    ["SELECT", "1"],
    ["GET", "iso:single"],
    ["SELECT", "0"],
    ["GET", "iso:single"],
  ];
  const [p, d] = await both(pair, commands);
  assert.deepEqual(p, d);
  assert.equal(p[3], "$3\r\none\r\n");
  assert.equal(p[6], ":41\r\n");
  assert.equal(p[8], "$-1\r\n");
  assert.equal(p[11], ":0\r\n");
  assert.equal(p[15], "$3\r\none\r\n");

  // A client that never selected sees database 0 only; one that did sees its own.
  const plain = proxyClient(hooks, proxy.port);
  assert.equal(await plain.get("iso:single"), "zero");
  assert.equal(await plain.exists(...names), 0);
  const inOne = proxyClient(hooks, proxy.port, { db: 1 });
  assert.equal(await inOne.exists(...names), names.length);
  assert.equal(await inOne.get("iso:single"), "one");

  // Cleanup in both, through the split DEL.
  const [pd, dd] = await both(pair, [
    ["SELECT", "1"],
    ["DEL", ...names, "iso:single"],
    ["SELECT", "0"],
    ["DEL", "iso:single"],
  ]);
  assert.deepEqual(pd, dd);
  assert.equal(pd[1], `:${names.length + 1}\r\n`);
});

test("SCAN, KEYS, DBSIZE and FLUSHDB act on the client's database only", async () => {
  const inTwo = proxyClient(hooks, proxy.port, { db: 2 });
  const inThree = proxyClient(hooks, proxy.port, { db: 3 });
  const names = keys("scan");
  await inTwo.mset(...names.flatMap((k) => [k, "2"]));
  await inThree.mset(...names.slice(0, 7).flatMap((k) => [k, "3"]));
  assert.equal(await inTwo.dbsize(), names.length);
  assert.equal(await inThree.dbsize(), 7);
  assert.deepEqual((await inTwo.keys("scan:*")).sort(), [...names].sort());
  const scanned = new Set<string>();
  let cursor = "0";
  do {
    const [next, batch] = await inThree.scan(cursor, "MATCH", "scan:*", "COUNT", 5);
    cursor = next;
    for (const k of batch) scanned.add(k);
  } while (cursor !== "0");
  assert.deepEqual([...scanned].sort(), names.slice(0, 7).sort());
  assert.equal(await inThree.call("FLUSHDB"), "OK");
  assert.equal(await inThree.dbsize(), 0);
  assert.equal(await inThree.randomkey(), null);
  assert.equal(await inTwo.dbsize(), names.length);
  assert.equal(await inTwo.call("FLUSHDB"), "OK");
});

test("MOVE and COPY ... DB go between databases, and a pipeline after a SELECT reads what was sent before it", async () => {
  const pair = await rawPair();
  const [p, d] = await both(pair, [
    ["SELECT", "4"],
    ["SET", "mv:a", "va"],
    ["SET", "{mv:a}b", "vb"],
    ["MOVE", "mv:a", "5"],
    ["COPY", "{mv:a}b", "{mv:a}c", "DB", "5"],
    ["MOVE", "mv:a", "16"],
    ["SELECT", "5"],
    ["GET", "mv:a"],
    ["GET", "{mv:a}c"],
    ["MGET", "mv:a", "{mv:a}b", "{mv:a}c"],
    ["SELECT", "4"],
    ["MGET", "mv:a", "{mv:a}b", "{mv:a}c"],
    ["DEL", "{mv:a}b"],
    ["SELECT", "5"],
    ["DEL", "mv:a", "{mv:a}c"],
  ]);
  assert.deepEqual(p, d);
  assert.equal(p[3], ":1\r\n");
  assert.equal(p[7], "$2\r\nva\r\n");
  assert.equal(p[8], "$2\r\nvb\r\n");
});

test("MULTI/EXEC and WATCH run in the selected database, also when SELECT comes while a WATCH is held", async () => {
  const pair = await rawPair();
  const [p, d] = await both(pair, [
    ["SELECT", "6"],
    ["MULTI"],
    ["SET", "{tx}k", "six"],
    ["INCR", "{tx}n"],
    ["GET", "{tx}k"],
    ["EXEC"],
    ["SELECT", "0"],
    ["GET", "{tx}k"],
    ["SELECT", "6"],
    ["WATCH", "{tx}k"],
    ["SELECT", "7"],
    ["MULTI"],
    ["SET", "{tx}k", "seven"],
    ["EXEC"],
    ["GET", "{tx}k"],
    ["SELECT", "6"],
    ["GET", "{tx}k"],
    ["DEL", "{tx}k", "{tx}n"],
    ["SELECT", "7"],
    ["DEL", "{tx}k"],
  ]);
  assert.deepEqual(p, d);
  assert.equal(p[5], "*3\r\n+OK\r\n:1\r\n$3\r\nsix\r\n");
  assert.equal(p[7], "$-1\r\n");
  assert.equal(p[14], "$5\r\nseven\r\n");

  // A write to the watched key in its database, by another client, fails the transaction.
  const watcher = proxyClient(hooks, proxy.port, { db: 8 });
  const other = proxyClient(hooks, proxy.port, { db: 8 });
  const elsewhere = proxyClient(hooks, proxy.port, { db: 9 });
  await watcher.watch("tx:w");
  await elsewhere.set("tx:w", "not the watched key");
  assert.deepEqual(await watcher.multi().set("tx:w", "mine").exec(), [[null, "OK"]]);
  await watcher.watch("tx:w");
  await other.set("tx:w", "theirs");
  assert.equal(await watcher.multi().set("tx:w", "mine").exec(), null);
  assert.equal(await other.get("tx:w"), "theirs");
  await other.del("tx:w");
  await elsewhere.del("tx:w");
});

test("SWAPDB is refused, as Valkey refuses it in cluster mode", async () => {
  const client = proxyClient(hooks, proxy.port);
  await assert.rejects(client.call("SWAPDB", "0", "1"), /swapdb/i);
});

test("a blocked BLPOP in database 1 is woken by a push in database 1, not by one in database 0", async () => {
  const blocked = proxyClient(hooks, proxy.port, { db: 1 });
  const pusherZero = proxyClient(hooks, proxy.port);
  const pusherOne = proxyClient(hooks, proxy.port, { db: 1 });
  const popped = blocked.blpop("bl:list", 0);
  // The BLPOP is waiting once its node lists a client blocked on it.
  await until(
    async () => {
      for (const node of cluster.masters) {
        const info = String(await cluster.connect(node).call("INFO", "clients"));
        if (/blocked_clients:1/.test(info)) return true;
      }
      return false;
    },
    10_000,
    "the BLPOP to block",
  );
  assert.equal(await pusherZero.rpush("bl:list", "zero"), 1);
  assert.equal(await pusherOne.rpush("bl:list", "one"), 1);
  assert.deepEqual(await popped, ["bl:list", "one"]);
  assert.deepEqual(await pusherZero.lrange("bl:list", 0, -1), ["zero"]);
  await pusherZero.del("bl:list");
});

test("keyspace notifications name the database the write ran in", async () => {
  const setter = proxyClient(hooks, proxy.port, { db: 1 });
  await setter.call("CONFIG", "SET", "notify-keyspace-events", "K$");
  hooks.after(() => setter.call("CONFIG", "SET", "notify-keyspace-events", "").then(() => undefined));
  const subscriber = proxyClient(hooks, proxy.port);
  const seen: string[] = [];
  subscriber.on("pmessage", (_pattern: string, channel: string, message: string) =>
    seen.push(`${channel} ${message}`),
  );
  await subscriber.psubscribe("__keyspace@*__:ks:*");
  await setter.set("ks:a", "1");
  const zero = proxyClient(hooks, proxy.port);
  await zero.set("ks:a", "0");
  await until(() => seen.length >= 2, 10_000, "two keyspace events");
  assert.deepEqual(seen.sort(), ["__keyspace@0__:ks:a set", "__keyspace@1__:ks:a set"]);
  await setter.del("ks:a");
  await zero.del("ks:a");
});

test("after the shards drop the proxy's connections, a client's commands still run in its database", async () => {
  const inTen = proxyClient(hooks, proxy.port, { db: 10 });
  const names = keys("rc", 12);
  await inTen.mset(...names.flatMap((k) => [k, "ten"]));
  for (const node of cluster.masters)
    await cluster.connect(node).call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
  // Reads are resent after a lost connection; the reconnected connections select database 10 again.
  await until(
    async () => {
      try {
        return (await inTen.mget(...names)).every((v) => v === "ten");
      } catch {
        return false;
      }
    },
    20_000,
    "reads in database 10 after the reconnect",
  );
  assert.equal(await inTen.get(names[0]!), "ten");
  const zero = proxyClient(hooks, proxy.port);
  assert.equal(await zero.exists(...names), 0);
  assert.equal(await inTen.del(...names), names.length);
});

test("RESET goes back to database 0", async () => {
  const client = await RawClient.connect(proxy.port);
  hooks.after(() => client.close());
  const replies: string[] = [];
  for (const command of [
    ["SELECT", "11"],
    ["SET", "rs:k", "eleven"],
    ["RESET"],
    ["GET", "rs:k"],
    ["SELECT", "11"],
    ["DEL", "rs:k"],
  ])
    replies.push(String(await client.command(...command)));
  assert.deepEqual(replies, ["+OK\r\n", "+OK\r\n", "+RESET\r\n", "$-1\r\n", "+OK\r\n", ":1\r\n"]);
});

test("clients in different databases pipelining at once each read their own writes", async () => {
  const clients: Redis[] = Array.from({ length: 4 }, (_, db) => proxyClient(hooks, proxy.port, { db }));
  const names = keys("pl", 30);
  await Promise.all(
    clients.map(async (client, db) => {
      for (let round = 0; round < 5; round++) {
        const pipeline = client.pipeline();
        for (const k of names) pipeline.set(k, `${db}:${round}`);
        pipeline.mget(...names);
        const results = await pipeline.exec();
        assert.deepEqual(
          results!.at(-1)![1],
          names.map(() => `${db}:${round}`),
        );
      }
    }),
  );
  await Promise.all(clients.map((c) => c.del(...names)));
});

test("a command after a SELECT does not overtake the ones sent before it in another database", async () => {
  const client = await RawClient.connect(proxy.port);
  hooks.after(() => client.close());
  // Database 13's connections are open before the test, so nothing but ordering delays its GET.
  assert.deepEqual(
    (
      await client.pipeline([
        ["SELECT", "13"],
        ["GET", "ov:k"],
      ])
    ).map(String),
    ["+OK\r\n", "$-1\r\n"],
  );
  // A big write ahead of the MOVE on database 12's connection: the node reads it for a while, and
  // a GET that went straight to database 13's connection would be read first.
  const big = "x".repeat(32 * 1024 * 1024);
  const replies = await client.pipeline([
    ["SELECT", "12"],
    ["SET", "{ov:k}big", big],
    ["SET", "ov:k", "moved"],
    ["MOVE", "ov:k", "13"],
    ["SELECT", "13"],
    ["GET", "ov:k"],
    ["DEL", "ov:k"],
    ["SELECT", "12"],
    ["DEL", "{ov:k}big"],
  ]);
  assert.deepEqual(replies.map(String), [
    "+OK\r\n",
    "+OK\r\n",
    "+OK\r\n",
    ":1\r\n",
    "+OK\r\n",
    "$5\r\nmoved\r\n",
    ":1\r\n",
    "+OK\r\n",
    ":1\r\n",
  ]);
});

test("INFO keyspace lists each database's keys summed over the shards", async () => {
  const inFourteen = proxyClient(hooks, proxy.port, { db: 14 });
  const names = keys("info", 25);
  await inFourteen.mset(...names.flatMap((k) => [k, "v"]));
  await inFourteen.expire(names[0]!, 1000);
  const info = String(await inFourteen.info("keyspace"));
  assert.match(info, /^db14:keys=25,expires=1,/m);
  await inFourteen.del(...names);
});

test("with crossSlot: emulate, RENAME and COPY ... DB across slots run in the client's database", async () => {
  const viaProxy = await RawClient.connect(emulating.port);
  const direct = await RawClient.connect(reference.port);
  hooks.after(() => {
    viaProxy.close();
    direct.close();
  });
  const [p, d] = await both(
    [viaProxy, direct],
    [
      ["SELECT", "0"],
      ["SET", "em:a", "zero"],
      ["SELECT", "1"],
      ["SET", "em:a", "one"],
      ["RENAME", "em:a", "em:b"],
      ["COPY", "em:b", "em:c", "DB", "2"],
      ["EXISTS", "em:a", "em:b", "em:c"],
      ["SELECT", "2"],
      ["GET", "em:c"],
      ["DEL", "em:c"],
      ["SELECT", "0"],
      ["MGET", "em:a", "em:b", "em:c"],
      ["DEL", "em:a"],
      ["SELECT", "1"],
      ["DEL", "em:b"],
    ],
  );
  assert.deepEqual(p, d);
  assert.equal(p[8], "$3\r\none\r\n");
  assert.equal(p[11], "*3\r\n$4\r\nzero\r\n$-1\r\n$-1\r\n");
});

test("a RESP3 client's database works as a RESP2 client's", async () => {
  const pair = await rawPair();
  await Promise.all(pair.map((c) => c.command("HELLO", "3")));
  const names = keys("r3", 12);
  const [p, d] = await both(pair, [
    ["SELECT", "3"],
    ["HSET", "r3:h", "f", "v"],
    ["HGETALL", "r3:h"],
    ["MSET", ...names.flatMap((k) => [k, "three"])],
    ["MGET", ...names],
    ["SELECT", "0"],
    ["HGETALL", "r3:h"],
    ["EXISTS", ...names],
    ["SELECT", "3"],
    ["DEL", "r3:h", ...names],
  ]);
  assert.deepEqual(p, d);
  assert.equal(p[2], "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
  assert.equal(p[6], "%0\r\n");
});

test("client-side caching covers database 0 only: TRACKING after SELECT n, and SELECT n while tracking, are refused", async () => {
  const client = await RawClient.connect(proxy.port);
  hooks.after(() => client.close());
  const replies = (
    await client.pipeline([
      ["SELECT", "3"],
      ["CLIENT", "TRACKING", "on"],
      ["SELECT", "0"],
      ["CLIENT", "TRACKING", "on"],
      ["SELECT", "3"],
      ["SELECT", "0"],
      ["CLIENT", "TRACKING", "off"],
      ["SELECT", "3"],
    ])
  ).map(String);
  const refused = `-${DatabaseErrors.trackingOutsideDb0}\r\n`;
  assert.deepEqual(replies, [
    "+OK\r\n",
    refused,
    "+OK\r\n",
    "+OK\r\n",
    refused,
    "+OK\r\n",
    "+OK\r\n",
    "+OK\r\n",
  ]);
});
