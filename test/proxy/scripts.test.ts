import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { type TestCluster, fileCleanup } from "../support/redis.ts";
import { proxyClient, type TestProxy } from "../support/proxy.ts";
import { startProxyAndReference } from "../support/fixture.ts";
import { RawClient } from "../support/raw-client.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";

const hooks = fileCleanup();
let cluster: TestCluster, proxy: TestProxy, reference: RedisServer, masters: Redis[];

before(async () => {
  ({ cluster, proxy, reference, masters } = await startProxyAndReference(hooks));
});

/** Which of the three masters owns a key (slots are spread evenly in order). */
const shardOf = (key: string) => Math.floor((slotOf(key) * 3) / 16384);
/** One key per shard. */
const KEYS = ["a", "b", "c"];

/** Sends the same commands, one at a time, through the proxy and to the reference; replies byte for byte. */
async function sameReplies(commands: string[][]): Promise<void> {
  const viaProxy = await RawClient.connect(proxy.port);
  const direct = await RawClient.connect(reference.port);
  try {
    for (const command of commands) {
      assert.equal(
        (await viaProxy.command(...command)).toString("latin1"),
        (await direct.command(...command)).toString("latin1"),
        command.join(" "),
      );
    }
  } finally {
    viaProxy.close();
    direct.close();
  }
}

const INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
const SHA = createHash("sha1").update(INCR_BY).digest("hex");

test("a script loaded once through the proxy runs by EVALSHA on keys of every shard", async () => {
  assert.deepEqual(new Set(KEYS.map(shardOf)).size, 3);
  await sameReplies([
    ["SCRIPT", "FLUSH"],
    ["SCRIPT", "LOAD", INCR_BY],
    ["SCRIPT", "EXISTS", SHA, "ffffffffffffffffffffffffffffffffffffffff"],
    ["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "1", "a"],
    ...KEYS.map((key) => ["EVALSHA", SHA, "1", key, "5"]),
    ...KEYS.map((key) => ["EVALSHA_RO", SHA, "1", key, "5"]),
    ...KEYS.map((key) => ["EVAL", "return redis.call('GET', KEYS[1])", "1", key]),
    ...KEYS.map((key) => ["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", key]),
    ["EVAL", "return ARGV[1]", "0", "keyless"],
    ["EVAL", "return redis.call('MGET', KEYS[1], KEYS[2])", "2", "{t}1", "{t}2"],
    ["SCRIPT", "LOAD", "return +"],
    ["SCRIPT", "FLUSH", "ASYNC"],
    ["EVALSHA", SHA, "1", "a", "1"],
    ["SCRIPT", "EXISTS", SHA],
  ]);
  for (const m of masters) assert.deepEqual(await m.call("SCRIPT", "EXISTS", SHA), [0]);
});

test("a script's keys on different slots get CROSSSLOT, as from a cluster", async () => {
  const client = proxyClient(hooks, proxy.port);
  await assert.rejects(client.eval("return 1", 2, "a", "b"), /^ReplyError: CROSSSLOT/);
});

test("SCRIPT EXISTS says 1 only where every master has the script", async () => {
  const client = proxyClient(hooks, proxy.port);
  await client.script("FLUSH");
  await masters[1]!.script("LOAD", INCR_BY);
  assert.deepEqual(await client.script("EXISTS", SHA), [0]);
  await client.script("LOAD", INCR_BY);
  assert.deepEqual(await client.script("EXISTS", SHA), [1]);
});

const LIBRARY = [
  "#!lua name=counters",
  "redis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)",
  "redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}",
].join("\n");

test("FUNCTION LOAD reaches every master, so FCALL runs on keys of every shard", async () => {
  await Promise.all(masters.map((m) => m.call("FUNCTION", "FLUSH")));
  await sameReplies([
    ["FUNCTION", "FLUSH"],
    ["FUNCTION", "LOAD", LIBRARY],
    ["FUNCTION", "LOAD", LIBRARY],
    ["FUNCTION", "LOAD", "REPLACE", LIBRARY],
    ...KEYS.map((key) => ["FCALL", "bump", "1", `f${key}`, "7"]),
    ...KEYS.map((key) => ["FCALL_RO", "peek", "1", `f${key}`]),
    // (FUNCTION LIST is not compared byte for byte: functions come in hash-table order.)
    ["FUNCTION", "LOAD", "#!lua name=broken\nnot lua"],
    ["FUNCTION", "DELETE", "counters"],
    ["FUNCTION", "DELETE", "counters"],
    ["FCALL", "bump", "1", "fa", "1"],
  ]);
  for (const m of masters) assert.deepEqual(await m.call("FUNCTION", "LIST"), []);
  const client = proxyClient(hooks, proxy.port);
  await client.call("FUNCTION", "LOAD", LIBRARY);
  const [library] = (await client.call("FUNCTION", "LIST", "WITHCODE")) as unknown[][];
  assert.equal(library![1], "counters");
  assert.equal(library![7], LIBRARY);
  await client.call("FUNCTION", "FLUSH");
});

test("FUNCTION DUMP from one master restores on every master", async () => {
  const client = proxyClient(hooks, proxy.port);
  await client.call("FUNCTION", "FLUSH");
  await client.call("FUNCTION", "LOAD", LIBRARY);
  const dump = (await client.callBuffer("FUNCTION", "DUMP")) as Buffer;
  await client.call("FUNCTION", "FLUSH");
  assert.equal(await client.call("FUNCTION", "RESTORE", dump), "OK");
  for (const key of KEYS) assert.equal(await client.call("FCALL", "bump", "1", `r${key}`, "2"), 2);
  for (const m of masters) assert.equal(((await m.call("FUNCTION", "LIST")) as unknown[]).length, 1);
});

test("a shard that disagrees is named in the error", async () => {
  const client = proxyClient(hooks, proxy.port);
  await client.call("FUNCTION", "FLUSH");
  await masters[2]!.call("FUNCTION", "LOAD", LIBRARY);
  const address = cluster.masters[2]!.address;
  await assert.rejects(
    client.call("FUNCTION", "LOAD", LIBRARY),
    new RegExp(
      `FUNCTION LOAD failed on shard ${address.replace(/\./g, "\\.")}: ERR Library 'counters' already exists`,
    ),
  );
  await client.call("FUNCTION", "FLUSH");
});
