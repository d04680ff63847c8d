import { test, before } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { fileCleanup, testEngine, until } from "../support/redis.ts";
import { proxyClient, type TestProxy } from "../support/proxy.ts";
import { startProxyAndReference } from "../support/fixture.ts";
import { RawClient } from "../support/raw-client.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";

const hooks = fileCleanup();
let proxy: TestProxy, reference: RedisServer, masters: Redis[];

before(async () => {
  ({ proxy, reference, masters } = await startProxyAndReference(hooks));
  // Some keys on every shard, some errors, so every section has figures.
  for (const port of [proxy.port, reference.port]) {
    const client = proxyClient(hooks, port);
    for (let i = 0; i < 60; i++) await client.set(`info:${i}`, i);
    await client.expire("info:1", 1000);
    await client.call("INCR", "info:missing:x");
    await assert.rejects(client.call("LPUSH", "info:2", "x"), /WRONGTYPE/);
  }
});

/** Section names (lower case) to their field names, in order. */
function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of text.split("\r\n")) {
    if (line.startsWith("# ")) out.set(line.slice(2).toLowerCase(), (current = []));
    else if (line !== "") current.push(line.slice(0, line.indexOf(":")));
  }
  return out;
}

function field(text: string, name: string): string {
  const match = new RegExp(`^${name}:(.*)$`, "m").exec(text);
  assert.ok(match, `INFO lacks ${name}`);
  return match[1]!.trim();
}

test("INFO with no argument, default, all, everything or several sections lists the sections a standalone redis lists, in its order, RESP2 and RESP3", async () => {
  const requests = [
    [],
    ["default"],
    ["all"],
    ["everything"],
    ["ALL"],
    ["server", "clients"],
    ["keyspace", "cpu", "memory"],
    ["cpu"],
    ["commandstats"],
    ["errorstats", "latencystats"],
    ["default", "commandstats"],
    ["nosuch"],
  ];
  for (const protocol of [2, 3] as const) {
    const viaProxy = await RawClient.connect(proxy.port);
    const direct = await RawClient.connect(reference.port);
    hooks.after(() => [viaProxy, direct].forEach((c) => c.close()));
    if (protocol === 3) for (const c of [viaProxy, direct]) await c.command("HELLO", "3");
    for (const args of requests) {
      const ours = (await viaProxy.command("INFO", ...args)).toString();
      const theirs = (await direct.command("INFO", ...args)).toString();
      const what = `RESP${protocol} INFO ${args.join(" ")}`;
      assert.equal(ours[0], theirs[0], `${what}: reply type`);
      assert.deepEqual([...sections(ours).keys()], [...sections(theirs).keys()], what);
    }
  }
});

test("the shards' sections have every field a standalone redis prints there", async () => {
  const ours = sections(String(await proxyClient(hooks, proxy.port).info("everything")));
  const theirs = sections(String(await proxyClient(hooks, reference.port).info("everything")));
  for (const name of ["memory", "persistence", "stats", "cpu", "errorstats"]) {
    assert.deepEqual(ours.get(name), theirs.get(name), `# ${name}`);
  }
  for (const name of ["used_cpu_user", "used_cpu_sys", "used_cpu_user_children"])
    assert.ok(ours.get("cpu")!.includes(name), name);
});

test("figures are summed over the masters where a sum is meaningful, the worst shard's otherwise, per shard for replication", async () => {
  const client = proxyClient(hooks, proxy.port);
  const shardTexts = await Promise.all(masters.map(async (m) => String(await m.info("everything"))));
  // Fetched after the shards' so that counters only grew in between.
  const text = String(await client.info("everything"));
  const shardSum = (name: string) => shardTexts.reduce((n, t) => n + Number(field(t, name)), 0);
  const shardMax = (name: string) => Math.max(...shardTexts.map((t) => Number(field(t, name))));

  assert.ok(Number(field(text, "used_memory")) >= shardSum("used_memory") * 0.9);
  assert.ok(Number(field(text, "used_memory")) > shardMax("used_memory"));
  assert.ok(Number(field(text, "total_commands_processed")) >= shardSum("total_commands_processed"));
  assert.ok(Number(field(text, "used_cpu_user")) >= shardSum("used_cpu_user") - 0.01);
  assert.match(field(text, "used_cpu_user"), /^\d+\.\d{6}$/);
  assert.equal(field(text, "maxmemory_policy"), "noeviction");
  assert.match(field(text, "mem_fragmentation_ratio"), /^\d+\.\d{2}$/);
  assert.equal(Number(field(text, "loading")), 0);
  assert.equal(field(text, "rdb_last_bgsave_status"), "ok");
  assert.equal(
    Number(field(text, "rdb_last_save_time")),
    Math.min(...shardTexts.map((t) => Number(field(t, "rdb_last_save_time")))),
  );
  // Commandstats: SET calls summed over the shards (the proxy sent each SET to one of them).
  const setCalls = (t: string) => Number(/^cmdstat_set:calls=(\d+),/m.exec(t)?.[1] ?? 0);
  assert.equal(
    setCalls(text),
    shardTexts.reduce((n, t) => n + setCalls(t), 0),
  );
  assert.ok(setCalls(text) >= 60);
  assert.match(
    text,
    /^cmdstat_set:calls=\d+,usec=\d+,usec_per_call=\d+\.\d{2},rejected_calls=\d+,failed_calls=\d+$/m,
  );
  const wrongtype = (t: string) => Number(/^errorstat_WRONGTYPE:count=(\d+)$/m.exec(t)?.[1] ?? 0);
  assert.equal(
    wrongtype(text),
    shardTexts.reduce((n, t) => n + wrongtype(t), 0),
  );
  assert.ok(wrongtype(text) >= 1);
  assert.match(text, /^latency_percentiles_usec_set:p50=[\d.]+,p99=[\d.]+,p99\.9=[\d.]+$/m);
  assert.match(text, /^db0:keys=61,expires=1,avg_ttl=\d+$/m);

  assert.equal(field(text, "role"), "master");
  assert.equal(field(text, "shards"), "3");
  for (let i = 0; i < 3; i++) {
    assert.match(
      text,
      new RegExp(`^shard${i}:master=127\\.0\\.0\\.1:\\d+,connected_slaves=1,master_repl_offset=\\d+,`, "m"),
    );
    assert.match(
      text,
      new RegExp(`^shard${i}_slave0:ip=127\\.0\\.0\\.1,port=\\d+,state=online,offset=\\d+,lag=\\d+$`, "m"),
    );
  }
  const server = String(await client.info("server"));
  assert.equal(field(server, "tcp_port"), String(proxy.port));
  assert.match(field(server, "run_id"), /^[0-9a-f]{40}$/);
  // Valkey says server_mode where Redis says redis_mode.
  assert.equal(field(server, testEngine() === "valkey" ? "server_mode" : "redis_mode"), "standalone");
});

test("INFO clients counts the proxy's clients, and those waiting on a blocking command", async () => {
  const client = proxyClient(hooks, proxy.port);
  const blocked = await RawClient.connect(proxy.port);
  hooks.after(() => blocked.close());
  const before = String(await client.info("clients"));
  assert.equal(field(before, "blocked_clients"), "0");
  assert.equal(field(before, "cluster_connections"), "0");
  const waiting = blocked.command("BLPOP", "info:queue", "0");
  await until(
    async () => field(String(await client.info("clients")), "blocked_clients") === "1",
    20_000,
    "the client to be counted as blocked",
  );
  assert.ok(Number(field(String(await client.info("clients")), "connected_clients")) >= 2);
  await client.lpush("info:queue", "job");
  assert.equal((await waiting).toString(), "*2\r\n$10\r\ninfo:queue\r\n$3\r\njob\r\n");
  assert.equal(field(String(await client.info("clients")), "blocked_clients"), "0");
});

test("HELLO and INFO server present the shards' engine and version as a standalone server of that engine does", async () => {
  // HELLO 2: a flat array of field, value, ... (modules aside: Valkey 9 lists its Lua engine there).
  const hello = async (port: number) => {
    const reply = (await proxyClient(hooks, port).call("HELLO", "2")) as unknown[];
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]));
    return ["server", "version", "proto", "mode", "role"].map((k) => `${k}=${fields.get(k)}`);
  };
  assert.deepEqual(await hello(proxy.port), await hello(reference.port));

  const identity = async (port: number) => {
    const text = String(await proxyClient(hooks, port).info("server"));
    return ["redis_version", "server_name", "valkey_version", "redis_mode", "server_mode"].map(
      (k) => `${k}=${new RegExp(`^${k}:(.*)$`, "m").exec(text)?.[1]?.trim() ?? "(absent)"}`,
    );
  };
  assert.deepEqual(await identity(proxy.port), await identity(reference.port));
});
