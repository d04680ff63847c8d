import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { startCluster, startStandalone, type TestCluster, fileCleanup } from "../support/redis.ts";
import { startTestProxy, proxyClient } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { randomCommands } from "../support/workload.ts";
import type { ProxyWorker } from "../../src/proxy/worker.ts";

const run = promisify(execFile);
const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: ProxyWorker;

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 1 });
  proxy = await startTestProxy(hooks, cluster);
});

test("10,000 random single-key commands give byte-identical replies through the proxy and from a standalone redis", async (t) => {
  const reference = await startStandalone(t);
  const direct = await RawClient.connect(reference.port);
  const viaProxy = await RawClient.connect(proxy.port);
  t.after(() => {
    direct.close();
    viaProxy.close();
  });
  const commands = randomCommands(10_000, 20261126);
  for (let i = 0; i < commands.length; i += 200) {
    const batch = commands.slice(i, i + 200);
    const [expected, actual] = await Promise.all([direct.pipeline(batch), viaProxy.pipeline(batch)]);
    for (let j = 0; j < batch.length; j++) {
      assert.equal(
        actual[j]!.toString("latin1"),
        expected[j]!.toString("latin1"),
        `command #${i + j}: ${batch[j]!.join(" ")}`,
      );
    }
  }
});

test("a pipeline of 1,000 commands spanning every shard comes back in order", async (t) => {
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  const keys = Array.from({ length: 500 }, (_, i) => `order:${i}`);
  const shardsHit = new Set(keys.map((k) => Math.floor(slotOf(k) / (16384 / 3))));
  assert.equal(shardsHit.size, 3, "the keys must span all three shards");
  const commands = keys.flatMap((k, i) => [
    ["SET", k, `value-${i}`],
    ["GET", k],
  ]);
  const replies = await client.pipeline(commands);
  replies.forEach((reply, i) => {
    const expected =
      i % 2 === 0 ? "+OK\r\n" : `$${`value-${(i - 1) / 2}`.length}\r\nvalue-${(i - 1) / 2}\r\n`;
    assert.equal(reply.toString(), expected, `reply #${i}`);
  });
});

test("50 concurrent clients pipelining at once each get only their own replies", async (t) => {
  const clients = Array.from({ length: 50 }, () => proxyClient(t, proxy.port));
  await Promise.all(
    clients.map(async (client, c) => {
      for (let round = 0; round < 5; round++) {
        const pipeline = client.pipeline();
        for (let i = 0; i < 40; i++)
          pipeline.set(`client:${c}:${i}`, `c${c}-r${round}-${i}`).get(`client:${c}:${i}`);
        const results = (await pipeline.exec())!;
        for (let i = 0; i < 40; i++) {
          assert.deepEqual(results[i * 2], [null, "OK"]);
          assert.deepEqual(results[i * 2 + 1], [null, `c${c}-r${round}-${i}`]);
        }
      }
    }),
  );
});

test("ioredis in standalone mode and redis-cli work through the proxy unchanged", async (t) => {
  const client = proxyClient(t, proxy.port);
  await client.hset("user:1", { name: "ada", born: "1815" });
  assert.deepEqual(await client.hgetall("user:1"), { name: "ada", born: "1815" });
  await client.rpush("queue", "a", "b", "c");
  assert.deepEqual(await client.lrange("queue", 0, -1), ["a", "b", "c"]);
  await client.zadd("board", 10, "x", 20, "y");
  assert.deepEqual(await client.zrange("board", "0", "-1", "WITHSCORES"), ["x", "10", "y", "20"]);
  assert.equal(await client.eval("return redis.call('GET', KEYS[1])", 1, "missing"), null);

  const cli = (...args: string[]) => run("redis-cli", ["-p", String(proxy.port), ...args]);
  assert.equal((await cli("SET", "cli:key", "hello")).stdout.trim(), "OK");
  assert.equal((await cli("GET", "cli:key")).stdout.trim(), "hello");
  assert.equal((await cli("PING")).stdout.trim(), "PONG");
  const piped = await new Promise<string>((resolve, reject) => {
    const child = execFile("redis-cli", ["-p", String(proxy.port)], (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
    child.stdin!.end("SET {p}a 1\nINCR {p}a\nGET {p}a\n");
  });
  assert.deepEqual(piped.trim().split("\n"), ["OK", "2", "2"]);
});

test("a slot moved by hand under load is followed with no client-visible error and no lost write", async (t) => {
  const slot = slotOf("moving");
  const keys = Array.from({ length: 300 }, (_, i) => `{moving}:${i}`);
  const admin = new Map(cluster.masters.map((m) => [m.port, cluster.connect(m)]));
  const ids = new Map<number, string>();
  for (const [port, conn] of admin) ids.set(port, String(await conn.call("CLUSTER", "MYID")));
  const owner = cluster.masters.find(
    (m) =>
      slot >= Math.floor((cluster.masters.indexOf(m) * 16384) / 3) &&
      slot < Math.floor(((cluster.masters.indexOf(m) + 1) * 16384) / 3),
  )!;
  const target = cluster.masters.find((m) => m !== owner)!;
  const source = admin.get(owner.port)!;
  const destination = admin.get(target.port)!;

  const client = proxyClient(t, proxy.port);
  for (const k of keys) await client.set(k, "0");

  const errors: string[] = [];
  const written = new Map<string, number>();
  let stop = false;
  const load = (async () => {
    const deadline = Date.now() + 30_000;
    let round = 0;
    while (!stop && Date.now() < deadline) {
      round++;
      const pipeline = client.pipeline();
      for (const k of keys) pipeline.set(k, String(round)).get(k);
      const results = (await pipeline.exec())!;
      results.forEach(([err], i) => err && errors.push(`${keys[i >> 1]}: ${err.message}`));
      for (const k of keys) written.set(k, round);
    }
  })();

  await destination.call("CLUSTER", "SETSLOT", slot, "IMPORTING", ids.get(owner.port)!);
  await source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", ids.get(target.port)!);
  for (;;) {
    const batch = (await source.call("CLUSTER", "GETKEYSINSLOT", slot, 20)) as string[];
    if (batch.length === 0) break;
    await source.call("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", ...batch);
    await new Promise((r) => setTimeout(r, 20)); // let traffic hit the half-moved slot
  }
  for (const conn of admin.values())
    await conn.call("CLUSTER", "SETSLOT", slot, "NODE", ids.get(target.port)!);
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await load;

  assert.deepEqual(errors, [], "clients must see no error");
  const values = await client.mget(...keys);
  keys.forEach((k, i) => assert.equal(values[i], String(written.get(k)), `value of ${k}`));
  const direct = new Redis({ host: target.host, port: target.port });
  t.after(() => direct.disconnect());
  assert.equal(
    await direct.call("CLUSTER", "COUNTKEYSINSLOT", slot),
    keys.length,
    "every key now lives on the target",
  );
});
