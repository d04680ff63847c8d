import { test, before } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { decodeReply, RespMap, type RespValue } from "../../src/resp/decode.ts";
import { DoubleReply, ErrorReply, SimpleString } from "../../src/resp/encode.ts";
import { fileCleanup, until } from "../support/redis.ts";
import { type TestProxy } from "../support/proxy.ts";
import { startProxyAndReference } from "../support/fixture.ts";
import { RawClient } from "../support/raw-client.ts";
import { encodeCommand } from "../../src/resp/request-parser.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";

const hooks = fileCleanup();
let proxy: TestProxy, reference: RedisServer, masters: Redis[];

before(async () => {
  ({ proxy, reference, masters } = await startProxyAndReference(hooks));
});

/** A client of the proxy and one of the standalone reference, speaking `protocol`. */
async function pair(protocol: 2 | 3): Promise<[RawClient, RawClient]> {
  const clients = await Promise.all([RawClient.connect(proxy.port), RawClient.connect(reference.port)]);
  if (protocol === 3) for (const c of clients) await c.command("HELLO", "3");
  hooks.after(() => clients.forEach((c) => c.close()));
  return clients;
}

/**
 * A reply's shape: types and structure, map keys and field names as they are, figures as their
 * type (for replies whose numbers are per node by nature: latency, memory).
 */
function shape(value: RespValue): unknown {
  if (value === null) return null;
  if (typeof value === "number" || typeof value === "bigint") return "int";
  if (value instanceof DoubleReply) return "double";
  if (value instanceof SimpleString) return `+${value.value}`;
  if (value instanceof ErrorReply) return `-${value.message}`;
  if (Buffer.isBuffer(value)) {
    const text = value.toString("latin1");
    return /^-?\d+(\.\d+)?$/.test(text) ? "number-as-bulk" : text;
  }
  if (value instanceof RespMap) return { map: value.entries.map(([k, v]) => [shape(k), shape(v)]) };
  if (Array.isArray(value)) return value.map(shape);
  return typeof value;
}

test("admin commands answer byte for byte as a standalone redis does, RESP2 and RESP3", async () => {
  const library = "#!lua name=adminlib\nredis.register_function('adminf', function(keys, args) return 1 end)";
  const commands: string[][] = [
    ["SCRIPT", "KILL"],
    ["FUNCTION", "KILL"],
    ["FUNCTION", "LOAD", "REPLACE", library],
    ["FUNCTION", "STATS"],
    ["FUNCTION", "FLUSH"],
    ["FUNCTION", "STATS"],
    ["CLIENT", "PAUSE", "50", "WRITE"],
    ["CLIENT", "UNPAUSE"],
    ["CLIENT", "PAUSE", "abc"],
    ["CLIENT", "PAUSE", "10"],
    ["CLIENT", "NO-EVICT", "on"],
    ["CLIENT", "NO-EVICT", "maybe"],
    ["MEMORY", "PURGE"],
    ["SAVE"],
    ["LATENCY", "GRAPH", "command"],
    ["LATENCY", "HISTOGRAM", "nosuchcommand"],
    ["WAITAOF", "0", "0", "0"],
    ["MODULE", "LIST"],
    ["MODULE", "HELP"],
    ["HOTKEYS", "HELP"],
    ["BACKUP", "HELP"],
    ["CLUSTER", "INFO"],
    ["CLUSTER", "KEYSLOT", "x"],
    ["CLUSTER", "HELP"],
    ["CLUSTER", "NODES"],
  ];
  for (const protocol of [2, 3] as const) {
    const [viaProxy, direct] = await pair(protocol);
    for (const command of commands)
      assert.equal(
        (await viaProxy.command(...command)).toString(),
        (await direct.command(...command)).toString(),
        `RESP${protocol}: ${command.join(" ")}`,
      );
  }
});

test("per-node reports have the standalone reply's type and structure, RESP2 and RESP3", async () => {
  for (const protocol of [2, 3] as const) {
    const [viaProxy, direct] = await pair(protocol);
    for (const client of [viaProxy, direct]) {
      await client.command("SET", "admin:k", "v");
      await client.command("GET", "admin:k");
    }
    for (const command of [
      ["LASTSAVE"],
      ["MEMORY", "DOCTOR"],
      ["MEMORY", "MALLOC-STATS"],
      ["LATENCY", "DOCTOR"],
    ]) {
      const ours = await viaProxy.command(...command);
      const theirs = await direct.command(...command);
      assert.equal(String.fromCharCode(ours[0]!), String.fromCharCode(theirs[0]!), command.join(" "));
    }
    // MEMORY STATS: the same fields in the same order, each of the same type.
    const stats = (c: RawClient) => c.command("MEMORY", "STATS").then((r) => shape(decodeReply(r)));
    assert.deepEqual(await stats(viaProxy), await stats(direct), `RESP${protocol} MEMORY STATS`);
    // LATENCY HISTOGRAM: per command, calls and buckets, as maps under RESP3.
    const histogram = (c: RawClient) =>
      c.command("LATENCY", "HISTOGRAM", "set").then((r) => {
        const value = decodeReply(r);
        const outer = protocol === 3 ? (value as RespMap).entries.flat() : (value as RespValue[]);
        const inner = protocol === 3 ? (outer[1] as RespMap).entries.flat() : (outer[1] as RespValue[]);
        return [
          String(outer[0]),
          String(inner[0]),
          String(inner[2]),
          protocol === 3 ? inner[3] instanceof RespMap : Array.isArray(inner[3]),
        ];
      });
    assert.deepEqual(await histogram(viaProxy), await histogram(direct));
  }
});

test("LATENCY HISTOGRAM sums the masters' calls; LASTSAVE is the oldest master's save", async () => {
  const raw = await RawClient.connect(proxy.port);
  hooks.after(() => raw.close());
  for (let i = 0; i < 30; i++) await raw.command("SET", `hist:${i}`, "x");
  // [name, [calls, N, histogram_usec, [bucket, cumulative count, ...]]]
  const callsOf = (reply: unknown) => Number((reply as unknown[][])[1]![1]);
  const perMaster = await Promise.all(
    masters.map(async (m) => callsOf(await m.call("LATENCY", "HISTOGRAM", "set"))),
  );
  const merged = decodeReply(await raw.command("LATENCY", "HISTOGRAM", "set")) as RespValue[];
  assert.equal(
    callsOf(merged),
    perMaster.reduce((a, b) => a + b, 0),
  );
  assert.ok(callsOf(merged) >= 30);
  const buckets = (merged[1] as RespValue[])[3] as number[];
  assert.equal(buckets.at(-1), callsOf(merged), "the last cumulative bucket holds every call");

  const saves = await Promise.all(masters.map(async (m) => Number(await m.call("LASTSAVE"))));
  assert.equal((await raw.command("LASTSAVE")).toString(), `:${Math.min(...saves)}\r\n`);
});

test("SCRIPT KILL and FUNCTION KILL stop a script running on any shard, as on a standalone redis", async () => {
  const busyScript = "local i = 0 while true do i = i + 1 end";
  const library =
    "#!lua name=spin\nredis.register_function{function_name='spin', callback=function() local i = 0 while true do i = i + 1 end end, flags={'no-writes'}}";
  for (const port of [proxy.port, reference.port]) {
    const setup = await RawClient.connect(port);
    hooks.after(() => setup.close());
    assert.equal((await setup.command("CONFIG", "SET", "busy-reply-threshold", "100")).toString(), "+OK\r\n");
    await setup.command("FUNCTION", "LOAD", "REPLACE", library);
  }
  const outcome = async (port: number, run: string[], killer: string[]) => {
    const runner = await RawClient.connect(port);
    const killerClient = await RawClient.connect(port);
    hooks.after(() => [runner, killerClient].forEach((c) => c.close()));
    const running = runner.command(...run);
    // While a function runs, FUNCTION STATS names it (Redis answers it even while busy).
    let stats: unknown = null;
    if (run[0] === "FCALL_RO")
      await until(
        async () => {
          const reply = decodeReply(await killerClient.command("FUNCTION", "STATS")) as RespValue[];
          stats = shape(reply);
          return reply[1] !== null;
        },
        20_000,
        "FUNCTION STATS to show the running function",
      );
    // Redis answers the kill once the script has run past busy-reply-threshold; before that it
    // runs nothing else, so the first KILL that gets an answer other than NOTBUSY is the one.
    let killed = "";
    await until(
      async () => {
        killed = (await killerClient.command(...killer)).toString();
        return !killed.startsWith("-NOTBUSY");
      },
      20_000,
      `${killer.join(" ")} to find the script`,
    );
    return [stats, killed, (await running).toString()];
  };
  for (const [run, killer] of [
    [
      ["EVAL", busyScript, "1", "spin:key"],
      ["SCRIPT", "KILL"],
    ],
    [
      ["FCALL_RO", "spin", "1", "spin:key"],
      ["FUNCTION", "KILL"],
    ],
  ]) {
    assert.deepEqual(
      await outcome(proxy.port, run!, killer!),
      await outcome(reference.port, run!, killer!),
      killer!.join(" "),
    );
  }
  for (const m of masters) assert.equal(await m.call("PING"), "PONG");
});

test("refused commands say why, also inside MULTI, where they doom the transaction as Redis does", async () => {
  const raw = await RawClient.connect(proxy.port);
  hooks.after(() => raw.close());
  const cases: [string[], RegExp][] = [
    [["SHUTDOWN"], /stop the whole cluster with its platform/],
    [["SWAPDB", "0", "1"], /cannot swap databases/],
    [["MODULE", "LOAD", "/x.so"], /loadmodule/],
    [["CLUSTER", "FAILOVER"], /dredis cluster manages/],
    [["REPLICAOF", "NO", "ONE"], /failover is automatic/],
    [["MIGRATE", "h", "1", "k", "0", "10"], /dredis cluster rebalance/],
    [["SCRIPT", "DEBUG", "YES"], /redis-cli --ldb/],
  ];
  for (const [command, reason] of cases) {
    const reply = (await raw.command(...command)).toString();
    assert.match(
      reply,
      /^-ERR command '[a-z|-]+' is (disabled on this proxy|not supported through this proxy yet): /,
    );
    assert.match(reply, reason, command.join(" "));
  }
  // Redis refuses an unknown or denied command at queue time and then aborts EXEC.
  const [viaProxy, direct] = await pair(2);
  for (const client of [viaProxy, direct]) await client.command("SET", "multi:k", "1");
  const ours = await viaProxy.pipeline([
    ["MULTI"],
    ["SET", "multi:k", "2"],
    ["SHUTDOWN"],
    ["EXEC"],
    ["GET", "multi:k"],
  ]);
  const theirs = await direct.pipeline([
    ["MULTI"],
    ["SET", "multi:k", "2"],
    ["NOSUCHCOMMAND"],
    ["EXEC"],
    ["GET", "multi:k"],
  ]);
  assert.deepEqual(
    ours.map((r) => r.toString()[0]),
    theirs.map((r) => r.toString()[0]),
  );
  assert.deepEqual(
    [ours[0], ours[1], ours[3], ours[4]].map(String),
    [theirs[0], theirs[1], theirs[3], theirs[4]].map(String),
  );
});

test("CLIENT REPLY OFF, SKIP and ON drop and restore replies as a standalone redis does, RESP2 and RESP3", async () => {
  const commands = [
    ["CLIENT", "REPLY", "OFF"],
    ["SET", "reply:{a}1", "1"],
    ["MGET", "reply:{a}1", "reply:{b}2"],
    ["DBSIZE"],
    ["NOSUCHCOMMAND"],
    ["CLIENT", "REPLY", "SKIP"],
    ["CLIENT", "REPLY", "ON"],
    ["GET", "reply:{a}1"],
    ["CLIENT", "REPLY", "SKIP"],
    ["GET", "reply:{a}1"],
    ["ECHO", "after-skip"],
    ["CLIENT", "REPLY", "MAYBE"],
  ];
  for (const protocol of [2, 3] as const) {
    const [viaProxy, direct] = await pair(protocol);
    const expected = 4; // CLIENT REPLY ON, GET, ECHO, the syntax error
    for (const client of [viaProxy, direct])
      client.send(Buffer.concat(commands.map((c) => encodeCommand(c))));
    const [ours, theirs] = await Promise.all([viaProxy.next(expected), direct.next(expected)]);
    assert.deepEqual(ours.map(String), theirs.map(String), `RESP${protocol}`);
    assert.equal((await viaProxy.command("PING")).toString(), "+PONG\r\n", "nothing more was written");
  }
});

test("CLIENT UNBLOCK ends a blocked command through the proxy as on a standalone redis, RESP2 and RESP3", async () => {
  const outcome = async (port: number, protocol: 2 | 3, reason: string[]) => {
    const blocked = await RawClient.connect(port);
    const other = await RawClient.connect(port);
    hooks.after(() => [blocked, other].forEach((c) => c.close()));
    if (protocol === 3) await blocked.command("HELLO", "3");
    const id = (await blocked.command("CLIENT", "ID")).toString().slice(1, -2);
    const free = (await other.command("CLIENT", "UNBLOCK", id, ...reason)).toString();
    const waiting = blocked.command("BLPOP", "unblock:empty", "0");
    // The blocking command may not have reached its node yet: ask until it is found blocked.
    await until(
      async () => (await other.command("CLIENT", "UNBLOCK", id, ...reason)).toString() === ":1\r\n",
      20_000,
      "the client to be blocked",
    );
    const errors = await other.pipeline([
      ["CLIENT", "UNBLOCK", "abc"],
      ["CLIENT", "UNBLOCK", id, "SOMETIMES"],
      ["CLIENT", "UNBLOCK", "987654321"],
    ]);
    return [free, (await waiting).toString(), ...errors.map(String)];
  };
  for (const protocol of [2, 3] as const)
    for (const reason of [[], ["TIMEOUT"], ["error"]])
      assert.deepEqual(
        await outcome(proxy.port, protocol, reason),
        await outcome(reference.port, protocol, reason),
        `RESP${protocol} ${reason.join(" ")}`,
      );
});

test("BGREWRITEAOF and BGSAVE start on every master and answer as a standalone redis; INFO shows them done", async () => {
  const idle = async (client: RawClient) =>
    until(
      async () => {
        const info = (await client.command("INFO", "persistence")).toString();
        return /aof_rewrite_in_progress:0\r\n/.test(info) && /rdb_bgsave_in_progress:0\r\n/.test(info);
      },
      30_000,
      "background saves to finish",
    );
  const [viaProxy, direct] = await pair(2);
  const saves = await Promise.all(
    masters.map(async (m) => Number(/rdb_saves:(\d+)/.exec(String(await m.info("persistence")))![1])),
  );
  for (const command of [["BGREWRITEAOF"], ["BGSAVE"]]) {
    await Promise.all([idle(viaProxy), idle(direct)]);
    assert.equal(
      (await viaProxy.command(...command)).toString(),
      (await direct.command(...command)).toString(),
      command.join(" "),
    );
  }
  await idle(viaProxy);
  const after = await Promise.all(
    masters.map(async (m) => Number(/rdb_saves:(\d+)/.exec(String(await m.info("persistence")))![1])),
  );
  after.forEach((n, i) => assert.ok(n > saves[i]!, `master ${i} saved`));
});
