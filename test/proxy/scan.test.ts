import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Redis } from "ioredis";
import { decodeCursor, LARGE_SLOT } from "../../src/proxy/busy/scan.ts";
import { startCluster, startStandalone, type TestCluster, fileCleanup } from "../support/redis.ts";
import { proxyClient, startTestProxy, type TestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";

const run = promisify(execFile);
const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: TestProxy;
let reference: RedisServer;
let client: Redis;
let direct: Redis;

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 0 });
  proxy = await startTestProxy(hooks, cluster, {}, { busyProxy: true });
  reference = await startStandalone(hooks);
  client = proxyClient(hooks, proxy.port);
  direct = proxyClient(hooks, reference.port);
});

/** Loads `count` string keys named `${prefix}${i}` in pipelines of 1000. */
async function load(target: Redis, prefix: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    const pipeline = target.pipeline();
    for (let i = start; i < Math.min(count, start + 1000); i++) pipeline.set(`${prefix}${i}`, "v");
    await pipeline.exec();
  }
}

/** Every key a full scan returns, with how many times each came, and the number of calls. */
async function scanAll(target: Redis, ...options: string[]): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let cursor = "0";
  const deadline = Date.now() + 60_000;
  do {
    assert.ok(Date.now() < deadline, "the scan did not finish in 60 s");
    const [next, keys] = (await target.call("SCAN", cursor, ...options)) as [string, string[]];
    for (const key of keys) seen.set(key, (seen.get(key) ?? 0) + 1);
    cursor = next;
  } while (cursor !== "0");
  return seen;
}

test("SCAN returns every key once, with MATCH, COUNT and TYPE filtering as a standalone redis does", async () => {
  await client.flushall();
  await direct.flushall();
  for (const target of [client, direct]) {
    await load(target, "s:", 3000);
    await target.sadd("set:1", "m");
    await target.hset("hash:1", "f", "v");
    await target.rpush("list:1", "x");
  }
  for (const options of [
    [],
    ["COUNT", "7"],
    ["COUNT", "1000"],
    ["MATCH", "s:1*", "COUNT", "50"],
    ["TYPE", "set"],
    ["TYPE", "HASH", "MATCH", "*"],
  ]) {
    const viaProxy = await scanAll(client, ...options);
    const expected = await scanAll(direct, ...options);
    assert.deepEqual([...viaProxy.keys()].sort(), [...expected.keys()].sort(), options.join(" "));
    assert.ok(
      [...viaProxy.values()].every((n) => n === 1),
      `a key came twice with ${options.join(" ")}`,
    );
  }
});

test("SCAN returns a slot larger than the piece size in pieces, each key once", async () => {
  await client.flushall();
  const big = LARGE_SLOT * 3 + 17;
  await load(client, "{big}:", big);
  await load(client, "small:", 100);
  let calls = 0;
  const seen = new Map<string, number>();
  let cursor = "0";
  do {
    const [next, keys] = (await client.call("SCAN", cursor, "COUNT", "10")) as [string, string[]];
    calls++;
    assert.ok(keys.length <= LARGE_SLOT + 10 + 10, `a reply of ${keys.length} keys`);
    for (const key of keys) seen.set(key, (seen.get(key) ?? 0) + 1);
    if (next !== "0") assert.ok(decodeCursor(next) !== null);
    cursor = next;
  } while (cursor !== "0" && calls < 1000);
  assert.equal(seen.size, big + 100);
  assert.ok([...seen.values()].every((n) => n === 1));
  assert.ok(calls >= 4, `${calls} calls: the big slot came in one piece`);
});

test("bad SCAN arguments get Redis's error texts", async () => {
  const viaProxy = await RawClient.connect(proxy.port);
  const standalone = await RawClient.connect(reference.port);
  for (const command of [
    ["SCAN", "abc"],
    ["SCAN", "0", "COUNT", "0"],
    ["SCAN", "0", "COUNT", "x"],
    ["SCAN", "0", "MATCH"],
    ["SCAN", "0", "BOGUS", "1"],
  ]) {
    assert.equal(
      (await viaProxy.command(...command)).toString(),
      (await standalone.command(...command)).toString(),
      command.join(" "),
    );
  }
  viaProxy.close();
  standalone.close();
});

test("redis-cli --scan and --bigkeys, and redis-benchmark, run through the proxy without an error", async () => {
  await client.flushall();
  await load(client, "cli:", 500);
  await client.rpush("cli:list", "a", "b");
  const port = String(proxy.port);
  const scanned = await run("redis-cli", ["-p", port, "--scan"]);
  assert.equal(scanned.stdout.trim().split("\n").sort().length, 501);
  const bigkeys = await run("redis-cli", ["-p", port, "--bigkeys"]);
  assert.doesNotMatch(bigkeys.stdout + bigkeys.stderr, /error/i);
  assert.match(bigkeys.stdout, /501 keys/);
  const bench = await run("redis-benchmark", ["-p", port, "-q", "-n", "200", "-c", "4"], { timeout: 60_000 });
  assert.doesNotMatch(bench.stdout + bench.stderr, /error/i);
  assert.match(bench.stdout, /PING_INLINE/);
});
