import { test, before } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { EMULATED } from "../../src/proxy/busy/emulate-commands.ts";
import { liveFields } from "../../src/proxy/config.ts";
import { startCluster, startStandalone, fileCleanup, until, type TestCluster } from "../support/redis.ts";
import { startTestProxy, type TestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";

type Command = (string | Buffer)[];

const hooks = fileCleanup();
let cluster: TestCluster;
let emulating: TestProxy;
let refusing: TestProxy;
let reference: RedisServer;
let masters: Redis[];

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 0 });
  emulating = await startTestProxy(hooks, cluster, { crossSlot: "emulate" }, { busyProxy: true });
  refusing = await startTestProxy(hooks, cluster, {}, { busyProxy: true });
  reference = await startStandalone(hooks);
  masters = cluster.masters.map((m) => cluster.connect(m));
});

/** Which of the three test masters owns a key's slot (slots are spread evenly in order). */
const shardOf = (key: string) => Math.floor((slotOf(key) * 3) / 16384);

/** Keys on three shards, with two pairs sharing a slot ({a}..., {b}...). */
const KEYS = ["a", "b", "c", "{a}2", "{b}2"];
const MEMBERS = ["x", "y", "z", "1", "2", "\u0000\r\n"];

async function flushBoth(): Promise<void> {
  await Promise.all(masters.map((m) => m.flushall()));
  const direct = await RawClient.connect(reference.port);
  await direct.command("FLUSHALL");
  direct.close();
}

/** The same commands through a proxy and on the standalone reference, one pipeline each. */
async function bothReplies(
  port: number,
  commands: Command[],
  protocol: 2 | 3,
): Promise<[Buffer[], Buffer[]]> {
  const viaProxy = await RawClient.connect(port);
  const direct = await RawClient.connect(reference.port);
  try {
    if (protocol === 3) await Promise.all([viaProxy.command("HELLO", "3"), direct.command("HELLO", "3")]);
    return await Promise.all([viaProxy.pipeline(commands), direct.pipeline(commands)]);
  } finally {
    viaProxy.close();
    direct.close();
  }
}

function assertSame(commands: Command[], actual: Buffer[], expected: Buffer[], label: string): void {
  commands.forEach((command, i) =>
    assert.equal(
      actual[i]!.toString("latin1"),
      expected[i]!.toString("latin1"),
      `${label} #${i}: ${command.map((a) => JSON.stringify(String(a))).join(" ")}`,
    ),
  );
}

/** Every pool key's type, content (sets sorted: their order is unspecified) and when it expires. */
async function stateOf(port: number): Promise<string[]> {
  const client = await RawClient.connect(port);
  try {
    const types = (await client.pipeline(KEYS.map((k) => ["TYPE", k]))).map((t) => t.toString("latin1"));
    const reads = KEYS.map((key, i): Command => {
      const type = types[i]!.slice(1, -2);
      if (type === "list") return ["LRANGE", key, "0", "-1"];
      if (type === "set") return ["SORT", key, "ALPHA"];
      if (type === "zset") return ["ZRANGE", key, "0", "-1", "WITHSCORES"];
      if (type === "hash") return ["HGETALL", key];
      if (type === "stream") return ["XRANGE", key, "-", "+"];
      return ["GET", key];
    });
    const contents = await client.pipeline(reads);
    const ttls = await client.pipeline(KEYS.map((k) => ["PTTL", k]));
    return KEYS.map((key, i) => {
      // In whole minutes: the setup's 10-minute TTLs read alike on both, give or take the run's time.
      const ttl = Number(ttls[i]!.toString("latin1").slice(1, -2));
      const expiry = ttl > 0 ? `expires in ${Math.round(ttl / 60_000)} min` : String(ttl);
      return `${key}: ${types[i]} ${contents[i]!.toString("latin1")} ${expiry}`;
    });
  } finally {
    client.close();
  }
}

const key = fc.constantFrom(...KEYS);
const member = fc.constantFrom(...MEMBERS);
const members = fc.uniqueArray(member, { minLength: 1, maxLength: 4 });
const score = fc.integer({ min: -3, max: 3 }).map(String);

type Kind = "missing" | "string" | "list" | "set" | "zset" | "hll" | "hash" | "stream";

/** Commands that give a pool key a value of some kind, or leave it absent. */
const valueOf = (k: string, kind: Kind): fc.Arbitrary<Command[]> => {
  switch (kind) {
    case "missing":
      return fc.constant([]);
    case "string":
      return fc.string({ maxLength: 6 }).map((v) => [["SET", k, v]]);
    case "list":
      return members.map((m) => [["RPUSH", k, ...m]]);
    case "set":
      return members.map((m) => [["SADD", k, ...m]]);
    case "zset":
      return fc
        .uniqueArray(fc.tuple(member, score), { minLength: 1, maxLength: 4, selector: ([m]) => m })
        .map((pairs) => [["ZADD", k, ...pairs.flatMap(([m, s]) => [s, m])]]);
    case "hll":
      return members.map((m) => [["PFADD", k, ...m]]);
    case "hash":
      return members.map((m) => [["HSET", k, ...m.flatMap((f) => [f, `v${f}`])]]);
    case "stream":
      // Explicit IDs: generated ones would differ between the cluster and the reference.
      return members.map((m) => m.map((f, i) => ["XADD", k, `1-${i + 1}`, "f", f]));
  }
};

const KINDS: Kind[] = ["missing", "string", "list", "set", "zset", "hll", "hash", "stream"];

/**
 * Values for every pool key, mostly of the kind the command works on (so most calls do real work)
 * and sometimes of another kind or absent (WRONGTYPE, missing keys); some keys get a 10-minute TTL.
 */
const setupFor = (preferred: Kind): fc.Arbitrary<Command[]> =>
  fc
    .tuple(
      ...KEYS.map((k) =>
        fc
          .tuple(
            fc.oneof(
              { arbitrary: valueOf(k, preferred), weight: 6 },
              ...KINDS.map((kind) => ({ arbitrary: valueOf(k, kind), weight: 1 })),
            ),
            fc.boolean(),
          )
          .map(([commands, expire]) =>
            expire && commands.length > 0 ? [...commands, ["PEXPIRE", k, "600000"]] : commands,
          ),
      ),
    )
    .map((perKey) => perKey.flat());

const keys = (min: number, max: number) => fc.array(key, { minLength: min, maxLength: max });
/** The call with its numkeys (argument `index`) sometimes one too many or too few: Redis's own errors then. */
const offNumkeys = (call: fc.Arbitrary<Command>, index: number): fc.Arbitrary<Command> =>
  fc
    .tuple(call, fc.constantFrom(0, 0, 0, 0, 1, -1))
    .map(([command, off]) => command.map((arg, i) => (i === index ? String(Number(arg) + off) : arg)));
const end = fc.constantFrom("LEFT", "RIGHT", "left", "UP");

/** The kind of value each emulated command works on. */
const WORKS_ON: Record<string, Kind> = {
  rename: "hash",
  renamenx: "list",
  smove: "set",
  lmove: "list",
  rpoplpush: "list",
  copy: "stream",
  sunionstore: "set",
  sinterstore: "set",
  sdiffstore: "set",
  zunionstore: "zset",
  zinterstore: "zset",
  zdiffstore: "zset",
  zrangestore: "zset",
  geosearchstore: "zset",
  bitop: "string",
  pfmerge: "hll",
  lcs: "string",
  zintercard: "zset",
  sort: "list",
  georadius: "zset",
  georadiusbymember: "zset",
  msetnx: "missing",
  lmpop: "list",
  zmpop: "zset",
};

/** Random calls of each emulated command, option errors included. */
const CALLS: Record<string, fc.Arbitrary<Command>> = {
  rename: fc.tuple(key, key).map(([s, d]) => ["RENAME", s, d]),
  renamenx: fc.tuple(key, key).map(([s, d]) => ["RENAMENX", s, d]),
  smove: fc.tuple(key, key, member).map(([s, d, m]) => ["SMOVE", s, d, m]),
  lmove: fc.tuple(key, key, end, end).map(([s, d, a, b]) => ["LMOVE", s, d, a, b]),
  rpoplpush: fc.tuple(key, key).map(([s, d]) => ["RPOPLPUSH", s, d]),
  copy: fc
    .tuple(key, key, fc.constantFrom([], ["REPLACE"], ["BOGUS"]))
    .map(([s, d, o]) => ["COPY", s, d, ...o]),
  sunionstore: fc.tuple(key, keys(1, 3)).map(([d, ks]) => ["SUNIONSTORE", d, ...ks]),
  sinterstore: fc.tuple(key, keys(1, 3)).map(([d, ks]) => ["SINTERSTORE", d, ...ks]),
  sdiffstore: fc.tuple(key, keys(1, 3)).map(([d, ks]) => ["SDIFFSTORE", d, ...ks]),
  zunionstore: offNumkeys(
    fc
      .tuple(
        key,
        keys(1, 3),
        fc.constantFrom([], ["AGGREGATE", "MAX"], ["AGGREGATE", "BAD"], ["WEIGHTS", "2"]),
      )
      .map(([d, ks, o]) => {
        // WEIGHTS needs one weight per key: a wrong count is an option error to compare too.
        const options = o[0] === "WEIGHTS" ? ["WEIGHTS", ...ks.map(() => "2")] : o;
        return ["ZUNIONSTORE", d, String(ks.length), ...ks, ...options];
      }),
    2,
  ),
  zinterstore: offNumkeys(
    fc
      .tuple(
        key,
        keys(1, 3),
        fc.constantFrom([], ["AGGREGATE", "MIN"], ["WEIGHTS", "1", "x"], ["WITHSCORES"]),
      )
      .map(([d, ks, o]) => ["ZINTERSTORE", d, String(ks.length), ...ks, ...o]),
    2,
  ),
  zdiffstore: offNumkeys(
    fc.tuple(key, keys(1, 3)).map(([d, ks]) => ["ZDIFFSTORE", d, String(ks.length), ...ks]),
    2,
  ),
  zrangestore: fc
    .tuple(
      key,
      key,
      fc.constantFrom(["0", "-1"], ["-inf", "+inf", "BYSCORE"], ["0", "x"], ["[a", "+", "BYLEX"]),
    )
    .map(([d, s, o]) => ["ZRANGESTORE", d, s, ...o]),
  geosearchstore: fc
    .tuple(key, key, fc.constantFrom([], ["STOREDIST"], ["BOGUS"]))
    .map(([d, s, o]) => ["GEOSEARCHSTORE", d, s, "FROMLONLAT", "0", "0", "BYRADIUS", "20000", "km", ...o]),
  bitop: fc
    .tuple(fc.constantFrom("AND", "OR", "XOR", "NOT", "NAND"), key, keys(1, 3))
    .map(([op, d, ks]) => ["BITOP", op, d, ...ks]),
  pfmerge: fc.tuple(key, keys(0, 3)).map(([d, ks]) => ["PFMERGE", d, ...ks]),
  lcs: fc
    .tuple(
      key,
      key,
      fc.constantFrom([], ["LEN"], ["IDX", "WITHMATCHLEN"], ["IDX", "MINMATCHLEN", "1"], ["BAD"]),
    )
    .map(([a, b, o]) => ["LCS", a, b, ...o]),
  zintercard: offNumkeys(
    fc
      .tuple(keys(1, 3), fc.constantFrom([], ["LIMIT", "1"], ["LIMIT", "-1"]))
      .map(([ks, o]) => ["ZINTERCARD", String(ks.length), ...ks, ...o]),
    1,
  ),
  sort: fc
    .tuple(
      key,
      key,
      fc.constantFrom([], ["ALPHA"], ["DESC", "ALPHA"], ["LIMIT", "0", "2", "ALPHA"], ["BY", "nosort"]),
    )
    .map(([s, d, o]) => ["SORT", s, ...o, "STORE", d]),
  georadius: fc
    .tuple(
      key,
      key,
      fc.constantFrom("STORE", "STOREDIST"),
      fc.constantFrom([], ["COUNT", "1"], ["COUNT", "0"]),
    )
    .map(([s, d, store, o]) => ["GEORADIUS", s, "0", "0", "20000", "km", ...o, store, d]),
  georadiusbymember: fc
    .tuple(key, key, member, fc.constantFrom("STORE", "STOREDIST"))
    .map(([s, d, m, store]) => ["GEORADIUSBYMEMBER", s, m, "20000", "km", store, d]),
  msetnx: fc
    .array(fc.tuple(key, fc.string({ maxLength: 4 })), { minLength: 1, maxLength: 3 })
    .chain((pairs) =>
      fc.boolean().map((odd): Command => ["MSETNX", ...pairs.flat(), ...(odd ? ["dangling"] : [])]),
    ),
  lmpop: offNumkeys(
    fc
      .tuple(
        keys(1, 3),
        fc.constantFrom("LEFT", "RIGHT", "MIDDLE"),
        fc.constantFrom([], ["COUNT", "2"], ["COUNT", "0"]),
      )
      .map(([ks, dir, o]) => ["LMPOP", String(ks.length), ...ks, dir, ...o]),
    1,
  ),
  zmpop: offNumkeys(
    fc
      .tuple(
        keys(1, 3),
        fc.constantFrom("MIN", "MAX", "MID"),
        fc.constantFrom([], ["COUNT", "3"], ["COUNT", "x"]),
      )
      .map(([ks, dir, o]) => ["ZMPOP", String(ks.length), ...ks, dir, ...o]),
    1,
  ),
};

test("the pool's keys live on three shards", () => {
  assert.equal(new Set(["a", "b", "c"].map(shardOf)).size, 3);
  assert.equal(slotOf("{a}2"), slotOf("a"));
  assert.equal(slotOf("{b}2"), slotOf("b"));
});

test("every emulated command has random calls here", () => {
  assert.deepEqual(Object.keys(CALLS).sort(), [...EMULATED].sort());
  assert.deepEqual(Object.keys(WORKS_ON).sort(), [...EMULATED].sort());
});

for (const [name, call] of Object.entries(CALLS)) {
  test(`crossSlot: emulate: ${name.toUpperCase()} across slots replies and leaves the keys as a standalone redis does, RESP2 and RESP3`, async () => {
    await fc.assert(
      fc.asyncProperty(
        setupFor(WORKS_ON[name]!),
        // Up to three calls in one pipeline, then reads of every key (split by the busy proxy, and
        // routed): each must see the writes of the calls before it, as on one Redis.
        fc.array(call, { minLength: 1, maxLength: 3 }),
        fc.constantFrom<2 | 3>(2, 3),
        async (commands, calls, protocol) => {
          await flushBoth();
          const all = [...commands, ...calls, ["EXISTS", ...KEYS], ["TYPE", KEYS[0]!], ...calls.slice(0, 1)];
          const [actual, expected] = await bothReplies(emulating.port, all, protocol);
          assertSame(all, actual, expected, `RESP${protocol}`);
          assert.deepEqual(await stateOf(emulating.port), await stateOf(reference.port));
        },
      ),
      { numRuns: 30 },
    );
  });
}

test("crossSlot: emulate leaves no temporary key behind", async () => {
  const left = await Promise.all(masters.map((m) => m.keys("*dredis:emulate*")));
  assert.deepEqual(left.flat(), []);
});

/** One call of each emulated command whose keys span slots. */
const SPANNING: Command[] = [
  ["RENAME", "a", "b"],
  ["RENAMENX", "a", "b"],
  ["SMOVE", "a", "b", "x"],
  ["LMOVE", "a", "b", "LEFT", "RIGHT"],
  ["RPOPLPUSH", "a", "b"],
  ["COPY", "a", "b"],
  ["SUNIONSTORE", "a", "b", "c"],
  ["SINTERSTORE", "a", "b"],
  ["SDIFFSTORE", "a", "b"],
  ["ZUNIONSTORE", "a", "2", "b", "c"],
  ["ZINTERSTORE", "a", "1", "b"],
  ["ZDIFFSTORE", "a", "1", "b"],
  ["ZRANGESTORE", "a", "b", "0", "-1"],
  ["GEOSEARCHSTORE", "a", "b", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
  ["BITOP", "AND", "a", "b"],
  ["PFMERGE", "a", "b"],
  ["LCS", "a", "b"],
  ["ZINTERCARD", "2", "a", "b"],
  ["SORT", "a", "STORE", "b"],
  ["GEORADIUS", "a", "0", "0", "1", "km", "STORE", "b"],
  ["GEORADIUSBYMEMBER", "a", "x", "1", "km", "STOREDIST", "b"],
  ["MSETNX", "a", "1", "b", "2"],
  ["LMPOP", "2", "a", "b", "LEFT"],
  ["ZMPOP", "2", "a", "b", "MIN"],
];

const CROSSSLOT = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";

test("crossSlot: refuse (the default) answers CROSSSLOT to every one of them, and changes nothing", async () => {
  assert.deepEqual(SPANNING.map((c) => String(c[0]).toLowerCase()).sort(), [...EMULATED].sort());
  await flushBoth();
  const client = await RawClient.connect(refusing.port);
  try {
    await client.pipeline([
      ["SET", "a", "1"],
      ["SET", "b", "2"],
    ]);
    const replies = await client.pipeline(SPANNING);
    SPANNING.forEach((command, i) =>
      assert.equal(replies[i]!.toString("latin1"), CROSSSLOT, command.join(" ")),
    );
    assert.deepEqual(
      (
        await client.pipeline([
          ["GET", "a"],
          ["GET", "b"],
          ["EXISTS", "c"],
        ])
      ).map(String),
      ["$1\r\n1\r\n", "$1\r\n2\r\n", ":0\r\n"],
    );
    // SORT's STORE destination counts as a key only for the slot check: in one slot it runs.
    assert.equal(String(await client.command("SORT", "c", "BY", "nosort", "STORE", "{c}2")), ":0\r\n");
  } finally {
    client.close();
  }
});

test("crossSlot is reloadable: a worker that takes on emulate runs the command, and refuses again after", async () => {
  await flushBoth();
  const client = await RawClient.connect(refusing.port);
  const live = liveFields(refusing.context.config);
  try {
    await client.command("SET", "a", "v");
    assert.equal(String(await client.command("RENAME", "a", "b")), CROSSSLOT);
    refusing.reload({ ...live, crossSlot: "emulate" });
    assert.equal(String(await client.command("RENAME", "a", "b")), "+OK\r\n");
    assert.equal(String(await client.command("GET", "b")), "$1\r\nv\r\n");
    assert.equal(String(await client.command("EXISTS", "a")), ":0\r\n");
    refusing.reload({ ...live, crossSlot: "refuse" });
    assert.equal(String(await client.command("RENAME", "b", "a")), CROSSSLOT);
  } finally {
    refusing.reload(live);
    client.close();
  }
});

test("crossSlot: emulate still refuses blocking commands across slots, saying why; same-slot ones block as usual", async () => {
  await flushBoth();
  const client = await RawClient.connect(emulating.port);
  try {
    for (const command of [
      ["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"],
      ["BRPOPLPUSH", "a", "b", "0"],
      ["BLMPOP", "0", "2", "a", "b", "LEFT"],
      ["BZMPOP", "0", "2", "a", "b", "MIN"],
      ["BLPOP", "a", "b", "0"],
      ["BZPOPMIN", "a", "b", "0"],
    ]) {
      const reply = String(await client.command(...command));
      assert.equal(
        reply,
        `-CROSSSLOT Keys in request don't hash to the same slot ('${command[0]!.toLowerCase()}' blocks, and crossSlot: emulate runs only non-blocking commands across slots; put its keys in one slot with a hash tag)\r\n`,
      );
    }
    await client.command("RPUSH", "a", "1");
    assert.equal(String(await client.command("BLMOVE", "a", "{a}2", "LEFT", "RIGHT", "0")), "$1\r\n1\r\n");
  } finally {
    client.close();
  }
});

test("crossSlot: emulate keeps CROSSSLOT inside MULTI and for commands it does not emulate", async () => {
  await flushBoth();
  const client = await RawClient.connect(emulating.port);
  try {
    const replies = await client.pipeline([
      ["MULTI"],
      ["RENAME", "a", "b"],
      ["EXEC"],
      ["EVAL", "return 1", "2", "a", "b"],
    ]);
    assert.deepEqual(replies.map(String), [
      "+OK\r\n",
      CROSSSLOT,
      "-EXECABORT Transaction discarded because of previous errors.\r\n",
      CROSSSLOT,
    ]);
  } finally {
    client.close();
  }
});

/**
 * Runs `command` through the emulating proxy with the destination's master paused for writes, so
 * the emulation stops at its transaction there, after it read the source; runs `meanwhile` then (a
 * concurrent writer), resumes the master and returns the command's reply.
 */
async function withWriterBetween(command: Command, destination: string, meanwhile: () => Promise<unknown>) {
  const node = masters[shardOf(destination)]!;
  const client = await RawClient.connect(emulating.port);
  try {
    await node.call("CLIENT", "PAUSE", "60000", "WRITE");
    const reply = client.command(...command);
    // The emulation's transaction waits on the paused master (a client in MULTI, blocked: flags
    // x and b), at its RESTORE of what it read: by then the source was read.
    await until(
      async () => /flags=(?=\w*x)(?=\w*b)\w+ /.test(String(await node.call("CLIENT", "LIST"))),
      30_000,
      "the emulation's transaction to wait on the paused master",
    );
    await meanwhile();
    await node.call("CLIENT", "UNPAUSE");
    return String(await reply);
  } finally {
    await node.call("CLIENT", "UNPAUSE");
    client.close();
  }
}

test("crossSlot: emulate: RENAME leaves a source written after it was read, LMOVE keeps an element pushed meanwhile", async () => {
  assert.notEqual(shardOf("a"), shardOf("b"));
  await flushBoth();
  const source = masters[shardOf("a")]!;
  await source.set("a", "old");
  const renamed = await withWriterBetween(["RENAME", "a", "b"], "b", () => source.set("a", "new"));
  assert.equal(renamed, "+OK\r\n");
  assert.deepEqual([await source.get("a"), await masters[shardOf("b")]!.get("b")], ["new", "old"]);

  await flushBoth();
  await source.rpush("a", "1", "2");
  const moved = await withWriterBetween(["LMOVE", "a", "b", "LEFT", "RIGHT"], "b", () =>
    source.lpush("a", "0"),
  );
  assert.equal(moved, "$1\r\n1\r\n");
  assert.deepEqual(await source.lrange("a", 0, -1), ["0", "2"]);
  assert.deepEqual(await masters[shardOf("b")]!.lrange("b", 0, -1), ["1"]);
});
