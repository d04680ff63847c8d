import { test, before } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { BROADCAST, SPLITTABLE } from "../../src/proxy/commands.ts";
import { BUSY_COMMANDS, INTERNAL_COMMANDS } from "../../src/proxy/busy/commands.ts";
import { decodeReply, RespSet } from "../../src/resp/decode.ts";
import { testEngine, until, fileCleanup } from "../support/redis.ts";
import type { TestBusyProxy, TestProxy } from "../support/proxy.ts";
import { startProxyAndReference } from "../support/fixture.ts";
import { RawClient } from "../support/raw-client.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";

const hooks = fileCleanup();
let proxy: TestProxy, reference: RedisServer, masters: Redis[];
let busy: TestBusyProxy;

before(async () => {
  ({ proxy, reference, masters } = await startProxyAndReference(hooks));
  busy = proxy.busy!;
});

/** Which of the three test masters owns a key's slot (slots are spread evenly in order). */
const shardOf = (key: string) => Math.floor((slotOf(key) * 3) / 16384);

/** Empties the cluster (FLUSHALL is not for the proxy: it goes to each master) and the reference. */
async function flushBoth(): Promise<void> {
  await Promise.all(masters.map((m) => m.flushall()));
  const direct = await RawClient.connect(reference.port);
  await direct.command("FLUSHALL");
  direct.close();
}

/** Runs the same commands on the proxy and on a standalone redis-server, in one pipeline each. */
async function bothReplies(
  commands: (string | Buffer)[][],
  protocol: 2 | 3 = 2,
): Promise<[Buffer[], Buffer[]]> {
  const viaProxy = await RawClient.connect(proxy.port);
  const direct = await RawClient.connect(reference.port);
  let timer: NodeJS.Timeout | undefined;
  try {
    if (protocol === 3) await Promise.all([viaProxy.command("HELLO", "3"), direct.command("HELLO", "3")]);
    // Bounded: a malformed reply would leave the client waiting for bytes that never come.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("replies incomplete after 10 s: a malformed reply?")),
        10_000,
      );
    });
    return await Promise.race([
      Promise.all([viaProxy.pipeline(commands), direct.pipeline(commands)]),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
    viaProxy.close();
    direct.close();
  }
}

function assertSameReplies(
  commands: (string | Buffer)[][],
  actual: Buffer[],
  expected: Buffer[],
  label: string,
) {
  commands.forEach((command, i) => {
    assert.equal(
      actual[i]!.toString("latin1"),
      expected[i]!.toString("latin1"),
      `${label} #${i}: ${command.map(String).join(" ")}`,
    );
  });
}

test("every command a worker may send to the busy proxy has a handler there", () => {
  assert.deepEqual(
    [...BUSY_COMMANDS.keys()].sort(),
    [...SPLITTABLE, ...BROADCAST, ...INTERNAL_COMMANDS].sort(),
  );
});

test("MGET, MSET, DEL, UNLINK, EXISTS and TOUCH across shards reply byte for byte as a standalone redis, RESP2 and RESP3", async () => {
  assert.equal(new Set(["a", "b", "c"].map(shardOf)).size, 3, "a, b and c must live on three shards");
  const binary = Buffer.from([0, 13, 10, 255, 32]);
  const commands: (string | Buffer)[][] = [
    ["MSET", "a", "1", "b", "2", "c", "3", binary, binary],
    ["MGET", "a", "b", "missing", "a", "c", binary],
    ["RPUSH", "list", "x"],
    ["MGET", "a", "list", "b"], // a key of another type reads as nil, as Redis does
    ["EXISTS", "a", "a", "missing", "list", "b"], // duplicates count twice
    ["TOUCH", "a", "b", "missing", "list"],
    ["MSET", "a", "10", "b"], // odd arguments
    ["MSET", "a", "10", "b", "20", "a", "30"], // the last value of a repeated key wins
    ["MGET", "a", "b", "c"],
    ["DEL", "a", "missing", "b", "a"],
    ["UNLINK", "c", "list", "missing", binary],
    ["MGET", "a", "b", "c", "list"],
    ["EXISTS", "a", "b", "c"],
  ];
  for (const protocol of [2, 3] as const) {
    await flushBoth();
    const [actual, expected] = await bothReplies(commands, protocol);
    assertSameReplies(commands, actual, expected, `RESP${protocol}`);
  }
});

test("random pipelines of MGET, MSET, DEL, UNLINK, EXISTS and TOUCH equal a standalone redis's replies byte for byte", async () => {
  // Keys: plain, hash-tagged (several keys of one slot in one part), binary, long (past the split
  // path's byte-by-byte copy limits), and sometimes a list (MGET reads it as nil, MSET overwrites).
  const key = fc.oneof(
    fc.constantFrom("a", "b", "c", "{t}1", "{t}2", "k:1", "k:2", "k:3"),
    fc.integer({ min: 0, max: 40 }).map((i) => `key:${i}`),
    fc.uint8Array({ minLength: 0, maxLength: 70 }).map((bytes) => Buffer.from(bytes)),
  );
  const value = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.uint8Array({ minLength: 30, maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  );
  const keys = (max: number) => fc.array(key, { minLength: 1, maxLength: max });
  const command = fc.oneof(
    keys(150).map((ks) => ["MGET", ...ks]),
    fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 90 }).map((pairs) => ["MSET", ...pairs.flat()]),
    fc
      .tuple(fc.constantFrom("del", "UNLINK", "Exists", "TOUCH"), keys(20))
      .map(([name, ks]) => [name, ...ks]),
    key.map((k) => ["RPUSH", k, "x"]),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(command, { minLength: 1, maxLength: 30 }),
      fc.constantFrom(2, 3),
      async (commands, protocol) => {
        await flushBoth();
        const [actual, expected] = await bothReplies(commands as (string | Buffer)[][], protocol as 2 | 3);
        assertSameReplies(commands as (string | Buffer)[][], actual, expected, `RESP${protocol}`);
      },
    ),
    { numRuns: 40 },
  );
});

test("inline MSET, MGET and DEL across shards work as on a standalone redis", async (t) => {
  await flushBoth();
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  client.send("MSET a 1 b 22 c 333 $x $y\r\nmget c b a missing $x\r\nDEL a b c missing\r\nMGET a b c\r\n");
  const replies = (await client.next(4)).map((r) => r.toString("latin1"));
  assert.deepEqual(replies, [
    "+OK\r\n",
    "*5\r\n$3\r\n333\r\n$2\r\n22\r\n$1\r\n1\r\n$-1\r\n$2\r\n$y\r\n",
    ":3\r\n",
    "*3\r\n$-1\r\n$-1\r\n$-1\r\n",
  ]);
});

/** A reply with its members sorted, for replies whose order Redis leaves unspecified. */
function asSet(reply: Buffer): string {
  const value = decodeReply(reply);
  const items = value instanceof RespSet ? value.items : Array.isArray(value) ? value : null;
  if (items === null) return reply.toString("latin1");
  return `${value instanceof RespSet ? "set" : "array"} of ${items
    .map((m) => String(m))
    .sort()
    .join(",")}`;
}

test("SINTER, SUNION, SDIFF and SINTERCARD across shards equal a standalone redis's, compared as sets", async () => {
  assert.equal(new Set(["s1", "s2", "s3"].map(shardOf)).size, 3, "s1, s2 and s3 must live on three shards");
  const setup = [
    ["SADD", "s1", "a", "b", "c", "d", "x"],
    ["SADD", "s2", "b", "c", "e", "x"],
    ["SADD", "s3", "c", "d", "f", "x"],
    ["SADD", "{s1}other", "x", "c"],
    ["RPUSH", "list", "a"],
  ];
  const commands = [
    ["SINTER", "s1", "s2"],
    ["SINTER", "s1", "s2", "s3", "{s1}other"],
    ["SINTER", "s1", "missing"],
    ["SINTER", "s1", "list"],
    ["SINTER", "missing", "list"], // a wrong type is reported even after an empty input
    ["SUNION", "s1", "s2", "s3", "missing"],
    ["SUNION", "s2", "list"],
    ["SDIFF", "s1", "s2", "s3"],
    ["SDIFF", "s1", "{s1}other", "s2"],
    ["SDIFF", "s1", "missing"],
    ["SDIFF", "missing", "s1"],
    ["SDIFF", "s1", "s2", "s1"],
    ["SDIFF", "s2", "list"],
    ["SINTERCARD", "2", "s1", "s2"],
    ["SINTERCARD", "3", "s1", "s2", "s3", "LIMIT", "1"],
    ["SINTERCARD", "2", "s1", "s2", "limit", "0"],
    ["SINTERCARD", "2", "s1", "s2", "LIMIT", "-1"],
    ["SINTERCARD", "2", "s1", "s2", "LIMIT", "x"],
    ["SINTERCARD", "2", "s1", "s2", "FOO"],
    ["SINTERCARD", "2", "s1", "s2", "LIMIT"],
    ["SINTERCARD", "2", "s1", "list"],
  ];
  for (const protocol of [2, 3] as const) {
    await flushBoth();
    const [actual, expected] = await bothReplies([...setup, ...commands], protocol);
    commands.forEach((command, i) => {
      const at = setup.length + i;
      assert.equal(asSet(actual[at]!), asSet(expected[at]!), `RESP${protocol}: ${command.join(" ")}`);
    });
  }
});

test("ZUNION, ZINTER and ZDIFF across shards equal a standalone redis's byte for byte: scores, order, options, errors", async () => {
  assert.equal(new Set(["z1", "z2", "z3"].map(shardOf)).size, 3, "z1, z2 and z3 must live on three shards");
  const setup = [
    ["ZADD", "z1", "1", "a", "2.5", "b", "0.1", "c", "-3", "neg", "5", "same"],
    ["ZADD", "z2", "1", "b", "2", "c", "-inf", "d", "0.2", "a", "5", "same"],
    ["ZADD", "z3", "3", "a", "inf", "c", "0.30000000000000004", "e", "5", "same"],
    ["SADD", "plain", "a", "c", "z"],
    ["RPUSH", "list", "a"],
  ];
  const commands = [
    ["ZUNION", "2", "z1", "z2"],
    ["ZUNION", "3", "z1", "z2", "z3", "WITHSCORES"],
    [
      "ZUNION",
      "4",
      "z1",
      "z2",
      "z3",
      "plain",
      "WEIGHTS",
      "2",
      "0.5",
      "3",
      "-1",
      "AGGREGATE",
      "MAX",
      "WITHSCORES",
    ],
    ["ZUNION", "3", "z1", "z2", "z3", "weights", "0", "1e3", "0x10", "aggregate", "min", "withscores"],
    ["ZUNION", "3", "z2", "z3", "z3", "WITHSCORES"], // -inf + inf is 0, depending on Redis's input order
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "0", "0", "WITHSCORES"],
    ["ZINTER", "2", "z1", "z2", "WITHSCORES"],
    ["ZINTER", "3", "z1", "z3", "plain", "AGGREGATE", "MIN", "WITHSCORES"],
    ["ZINTER", "2", "z1", "z3", "WEIGHTS", "1", "-1", "WITHSCORES"],
    ["ZINTER", "2", "z1", "missing"],
    ["ZDIFF", "2", "z1", "z2", "WITHSCORES"],
    ["ZDIFF", "3", "z1", "missing", "z3"],
    ["ZDIFF", "2", "plain", "z1", "WITHSCORES"],
    ["ZUNION", "2", "z1", "list"],
    ["ZUNION", "2", "z1", "list", "WEIGHTS", "1", "x"], // WRONGTYPE comes before option errors
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "x"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "nan"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "1e400"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1"],
    ["ZUNION", "2", "z1", "z2", "AGGREGATE", "avg"],
    ["ZUNION", "2", "z1", "z2", "AGGREGATE"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", " 1", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "1 ", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "1e-400", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "+inf", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "-Infinity", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", ".5", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "5.", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "0x1p-2", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "0x", "WITHSCORES"],
    ["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "1e", "WITHSCORES"],
    ["ZDIFF", "2", "z1", "z2", "WEIGHTS", "1", "1"],
    ["ZINTER", "2", "z1", "z2", "LIMIT", "1"],
  ];
  for (const protocol of [2, 3] as const) {
    await flushBoth();
    const [actual, expected] = await bothReplies([...setup, ...commands], protocol);
    const all = [...setup, ...commands];
    assertSameReplies(all, actual, expected, `RESP${protocol}`);
  }
});

test("PFCOUNT of keys across shards counts their union as a standalone redis does, and leaves no temp key", async () => {
  assert.equal(
    new Set(["pf:a", "pf:b", "pf:c"].map(shardOf)).size,
    3,
    "pf:a, pf:b and pf:c must live on three shards",
  );
  const many = Array.from({ length: 5000 }, (_, i) => `e${i}`); // enough to make h3 a dense HLL
  const setup = [
    ["PFADD", "pf:a", "a", "b", "c"],
    ["PFADD", "pf:b", "c", "d", "e", ...many.slice(0, 100)],
    ["PFADD", "pf:c", ...many],
    ["SET", "str", "hello"],
    ["RPUSH", "list", "a"],
  ];
  const commands = [
    ["PFCOUNT", "pf:a", "pf:b"],
    ["PFCOUNT", "pf:a", "pf:b", "pf:c", "missing"],
    ["PFCOUNT", "pf:c", "pf:a"],
    ["PFCOUNT", "missing", "pf:a"],
    ["PFCOUNT", "missing", "list"],
    ["PFCOUNT", "pf:a", "list"],
    ["PFCOUNT", "pf:a", "str"],
    ["PFCOUNT", "pf:a", "pf:b", "pf:a"],
  ];
  for (const protocol of [2, 3] as const) {
    await flushBoth();
    const [actual, expected] = await bothReplies([...setup, ...commands], protocol);
    assertSameReplies([...setup, ...commands], actual, expected, `RESP${protocol}`);
  }
  const direct = await RawClient.connect(reference.port);
  const encoding = (await direct.command("OBJECT", "ENCODING", "pf:c")).toString();
  direct.close();
  assert.equal(encoding, "$3\r\nraw\r\n");
  for (const master of masters) {
    assert.deepEqual(await master.keys("*dredis-tmp*"), [], "temp keys are deleted");
  }
});

test("a pipeline reads its own writes across routed and busy-proxy commands, as on a standalone redis", async () => {
  const commands: string[][] = [];
  for (let i = 0; i < 50; i++) {
    const [x, y] = [`ryw:${i}:x`, `ryw:${i}:y`];
    commands.push(
      ["SET", x, "1"],
      ["MGET", x, y],
      ["RPUSH", y, "v"],
      ["EXISTS", x, y, x],
      ["DEL", x, y],
      ["GET", x],
      ["MSET", x, "a", y, "b"],
      ["APPEND", y, "c"],
      ["MGET", y, x],
    );
  }
  assert.ok(commands.some((c) => c[0] === "MGET" && shardOf(c[1]!) !== shardOf(c[2]!)));
  // Fresh RESP3 connections: the worker's RESP3 shard connections are new, the widest race window.
  const [actual, expected] = await bothReplies(commands, 3);
  assertSameReplies(commands, actual, expected, "RESP3");
});

test("a part that fails makes the whole command fail with an error naming the command and the slot", async (t) => {
  const owner = masters[shardOf("b")]!;
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  await client.pipeline([["MSET", "a", "1", "b", "2", "c", "3"]]);

  // Writes on b's master now fail (it has one replica, not five).
  await owner.call("CONFIG", "SET", "min-replicas-to-write", "5");
  t.after(() => owner.call("CONFIG", "SET", "min-replicas-to-write", "0"));
  assert.equal(
    (await client.command("MSET", "a", "10", "b", "20", "c", "30")).toString(),
    `-ERR MSET failed on slot ${slotOf("b")} (parts on other slots may have been applied): NOREPLICAS Not enough good replicas to write.\r\n`,
  );
  await owner.call("CONFIG", "SET", "min-replicas-to-write", "0");

  // MGET is refused on b's master only (the shard's words: Valkey, like Redis 7.2, names the user).
  const nopermWho = testEngine() === "valkey" ? "User default" : "this user";
  await owner.call("ACL", "SETUSER", "default", "-mget");
  t.after(() => owner.call("ACL", "SETUSER", "default", "+@all"));
  assert.equal(
    (await client.command("MGET", "a", "b", "c")).toString(),
    `-ERR MGET failed on slot ${slotOf("b")}: NOPERM ${nopermWho} has no permissions to run the 'mget' command\r\n`,
  );
  await owner.call("ACL", "SETUSER", "default", "+@all");
  assert.equal(
    (await client.command("MGET", "a", "b", "c")).toString(),
    "*3\r\n$2\r\n10\r\n$1\r\n2\r\n$2\r\n30\r\n",
  );
});

test("atomic multi-key commands across slots are refused with Redis's exact CROSSSLOT error", async () => {
  const client = await RawClient.connect(proxy.port);
  try {
    const replies = await client.pipeline([
      ["MSETNX", "a", "1", "b", "2"],
      ["RENAME", "a", "b"],
      ["SMOVE", "a", "b", "m"],
      ["LMOVE", "a", "b", "LEFT", "LEFT"],
      ["SINTERSTORE", "a", "b", "c"],
      ["ZUNIONSTORE", "a", "2", "b", "c"],
      ["PFMERGE", "a", "b", "c"],
    ]);
    for (const reply of replies) {
      assert.equal(reply.toString(), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    }
  } finally {
    client.close();
  }
});

test("multi-key commands within one slot skip the busy proxy: they work while it is stopped", async (t) => {
  await busy.stop();
  t.after(() => busy.start());
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  const replies = await client.pipeline([
    ["MSET", "{t}a", "1", "{t}b", "2"],
    ["MGET", "{t}a", "{t}b", "{t}c"],
    ["SADD", "{t}s1", "x", "y"],
    ["SADD", "{t}s2", "y", "z"],
    ["SINTER", "{t}s1", "{t}s2"],
    ["MSETNX", "{t}c", "3", "{t}d", "4"],
    ["RENAME", "{t}c", "{t}e"],
    ["DEL", "{t}a", "{t}b", "{t}e", "{t}d"],
  ]);
  assert.deepEqual(
    replies.map((r) => r.toString()),
    [
      "+OK\r\n",
      "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n",
      ":2\r\n",
      ":2\r\n",
      "*1\r\n$1\r\ny\r\n",
      ":1\r\n",
      "+OK\r\n",
      ":4\r\n",
    ],
  );
});

test("MGET, MSET, DEL, UNLINK, EXISTS and TOUCH of at most workerSplitMaxKeys keys split in the worker: they work while the busy proxy is stopped", async (t) => {
  await busy.stop();
  t.after(() => busy.start());
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  assert.equal(new Set(["a", "b", "c"].map(shardOf)).size, 3);
  const replies = await client.pipeline([
    ["MSET", "a", "1", "b", "2", "c", "3"],
    ["MGET", "a", "b", "c", "none"],
    ["GET", "b"],
    ["EXISTS", "a", "b", "none", "a"],
    ["TOUCH", "a", "c"],
    ["UNLINK", "c"],
    ["DEL", "a", "b", "c"],
    ["MGET", "a", "b"],
  ]);
  assert.deepEqual(
    replies.map((r) => r.toString()),
    [
      "+OK\r\n",
      "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n",
      "$1\r\n2\r\n",
      ":3\r\n",
      ":2\r\n",
      ":1\r\n",
      ":2\r\n",
      "*2\r\n$-1\r\n$-1\r\n",
    ],
  );
});

test("a pipeline of 1,000 commands mixing busy-proxy and routed commands comes back in order", async () => {
  const client = await RawClient.connect(proxy.port);
  try {
    const keys = Array.from({ length: 300 }, (_, i) => `mix:${i}`);
    assert.equal(new Set(keys.map(shardOf)).size, 3);
    await client.pipeline(keys.map((k, i) => ["SET", k, `v${i}`]));
    const commands: string[][] = [];
    const expected: string[] = [];
    const bulk = (s: string | null) => (s === null ? "$-1\r\n" : `$${s.length}\r\n${s}\r\n`);
    for (let i = 0; commands.length < 1000; i++) {
      const a = i % 300;
      const b = (i * 7 + 1) % 300;
      switch (i % 4) {
        case 0:
          commands.push(["GET", keys[a]!]);
          expected.push(bulk(`v${a}`));
          break;
        case 1:
          commands.push(["MGET", keys[a]!, "mix:none", keys[b]!]);
          expected.push(`*3\r\n${bulk(`v${a}`)}${bulk(null)}${bulk(`v${b}`)}`);
          break;
        case 2:
          commands.push(["EXISTS", keys[a]!, keys[b]!, "mix:none", keys[a]!]);
          expected.push(":3\r\n");
          break;
        case 3:
          commands.push(["STRLEN", keys[b]!]);
          expected.push(`:${`v${b}`.length}\r\n`);
          break;
      }
    }
    const replies = await client.pipeline(commands);
    assert.equal(replies.length, 1000);
    replies.forEach((reply, i) =>
      assert.equal(reply.toString(), expected[i], `reply #${i}: ${commands[i]!.join(" ")}`),
    );
  } finally {
    client.close();
  }
});

test("closing the busy proxy fails its in-flight commands clearly; once it restarts, later ones work", async (t) => {
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  await client.pipeline([["MSET", "a", "1", "b", "2", "c", "3"]]);
  // More keys than a worker splits itself (workerSplitMaxKeys, 16 by default): these go to the busy proxy.
  const more = Array.from({ length: 14 }, (_, i) => `more:${i}`);
  // Hold writes on every master, so the busy proxy's DEL parts stay in flight on the shards.
  await Promise.all(masters.map((m) => m.call("CLIENT", "PAUSE", "20000", "WRITE")));
  t.after(() => Promise.all(masters.map((m) => m.call("CLIENT", "UNPAUSE"))));
  // One multi-key write in flight; the routed GET behind it waits for it (it is a barrier).
  const inFlight = client.pipeline([
    ["DEL", "a", "b", "c", ...more],
    ["GET", "a"],
  ]);
  await until(
    async () => {
      const blocked = await Promise.all(
        masters.map(async (m) => /blocked_clients:(\d+)/.exec(await m.info("clients"))![1]!),
      );
      return blocked.every((n) => n !== "0");
    },
    10_000,
    "the DEL parts to be held by the three paused masters",
  );
  await busy.stop();
  const [del, get] = (await inFlight).map((r) => r.toString());
  assert.match(
    del!,
    /^-ERR .*may or may not have run/,
    "an in-flight write learns it may or may not have run",
  );
  assert.equal(get, "$1\r\n1\r\n", "the routed command behind it is answered");

  await Promise.all(masters.map((m) => m.call("CLIENT", "UNPAUSE")));
  // Sent while the busy proxy is down: it waits (within the retry budget) for the restart.
  const later = client.pipeline([
    ["MSET", "a", "x", "b", "y", "c", "z", ...more.flatMap((k) => [k, "m"])],
    ["MGET", "a", "b", "c"],
  ]);
  await busy.start();
  assert.deepEqual(
    (await later).map((r) => r.toString()),
    ["+OK\r\n", "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n"],
  );
});
