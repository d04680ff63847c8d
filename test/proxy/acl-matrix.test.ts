/**
 * ACL users at the proxy against a standalone redis-server given the same users with ACL SETUSER:
 * every user runs the same commands (keys and channels in and out of its patterns, read and write,
 * subcommands, first arguments, selectors, MULTI) on both, in RESP2 and RESP3, and every reply must
 * be the same bytes.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startCluster, startStandalone, fileCleanup } from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { splitRules } from "../../src/proxy/acl/rules.ts";
import { CAPTURED_FROM } from "../../src/proxy/acl/command-acl.ts";

const hooks = fileCleanup();
let proxyPort: number;
let redisPort: number;

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** name -> [rules, password to AUTH with] */
const USERS: Record<string, [string, string]> = {
  app: ["on >app-pass ~app:* &events:* +@read +@write -@dangerous", "app-pass"],
  reader: [
    `on #${sha("r-pass")} %R~app:* %W~tmp:* resetchannels &news.* +@read +@pubsub -publish +set`,
    "r-pass",
  ],
  writer: ["on >w-pass %W~app:* ~other:* +@all -@dangerous -flushall +acl|whoami", "w-pass"],
  subscriber: [
    "on >s-pass allkeys &chan:* &exact +subscribe +psubscribe +publish +ping +unsubscribe",
    "s-pass",
  ],
  nokeys: [
    "on nopass nocommands +ping +echo +get +select|0 +client|setname +client|getname resetkeys",
    "any",
  ],
  selectors: [
    "on >sel-pass ~a:* +get +multi +exec (~b:* +set +get) (%R~other:* +mget +object|encoding)",
    "sel-pass",
  ],
  admin: ["on >adm-pass ~* &* +@all -flushall -flushdb -keys", "adm-pass"],
  disabled: ["off >x-pass ~* &* +@all", "x-pass"],
};

/** Commands each user runs, in order (writes included: both sides run the same sequence). */
const MATRIX: string[][] = [
  ["PING"],
  ["ECHO", "hi"],
  ["GET"],
  ["GET", "app:1"],
  ["GET", "other:1"],
  ["GET", "a:1"],
  ["GET", "b:1"],
  ["SET", "app:2", "x"],
  ["SET", "other:2", "y"],
  ["SET", "tmp:2", "z"],
  ["SET", "b:2", "z"],
  ["SET", "app:3", "v", "GET"],
  ["SET", "tmp:3", "v", "GET"],
  ["INCR", "app:n"],
  ["MGET", "app:1", "other:1"],
  ["MGET", "app:1", "app:2"],
  ["DEL", "tmp:2"],
  ["EXISTS", "app:1", "other:1"],
  ["HSET", "app:h", "f", "v"],
  ["HGET", "app:h", "f"],
  ["LPUSH", "app:{s}list", "3", "1", "2"],
  ["SORT", "app:{s}list"],
  ["SORT", "app:{s}list", "STORE", "other:{s}sorted"],
  ["SORT_RO", "app:{s}list"],
  ["BITFIELD", "app:bf", "GET", "u8", "0"],
  ["BITFIELD", "app:bf", "SET", "u8", "0", "1"],
  ["BITFIELD", "tmp:bf", "GET", "u8", "0"],
  ["OBJECT", "ENCODING", "app:1"],
  ["OBJECT", "ENCODING", "other:1"],
  ["OBJECT", "FREQ", "other:1"],
  ["EVAL", "return 1", "1", "app:1"],
  ["EVAL", "return 1", "1", "zzz"],
  ["DBSIZE"],
  ["SELECT", "0"],
  ["SELECT", "1"],
  ["SELECT", "0"],
  ["CLIENT", "SETNAME", "matrix"],
  ["CLIENT", "GETNAME"],
  ["CLIENT", "NOSUCH"],
  ["ACL", "WHOAMI"],
  ["ACL", "DRYRUN", "app", "GET", "other:1"],
  ["ACL", "DRYRUN", "reader", "SET", "app:1", "x"],
  ["ACL", "DRYRUN", "subscriber", "PUBLISH", "news.1", "m"],
  ["ACL", "DRYRUN", "app", "GET", "app:1"],
  ["ACL", "DRYRUN", "nobody", "GET", "app:1"],
  ["ACL", "DRYRUN", "app", "NOSUCH"],
  ["ACL", "DRYRUN", "app", "GET"],
  ["PUBLISH", "events:1", "m"],
  ["PUBLISH", "news.1", "m"],
  ["PUBLISH", "chan:1", "m"],
  ["FLUSHALL"],
  ["KEYS", "app:1"],
  ["SET", "app:{r}src", "v"],
  ["RENAME", "app:{r}src", "app:{r}dst"],
  ["COPY", "app:{r}dst", "other:{r}copy"],
  ["GETDEL", "tmp:1"],
  ["TYPE", "app:1"],
  ["TTL", "other:1"],
  ["ZADD", "app:{z}a", "1", "m"],
  ["ZUNIONSTORE", "app:{z}dst", "1", "app:{z}a"],
  ["ZUNIONSTORE", "other:{z}dst", "1", "app:{z}a"],
  ["ZUNIONSTORE", "app:{z}dst", "x", "app:{z}a"],
  ["XADD", "app:s", "1-1", "f", "v"],
  ["XREAD", "COUNT", "1", "STREAMS", "app:s", "0"],
  ["XREAD", "STREAMS", "other:s", "0"],
  ["BLPOP", "app:{s}list", "1"],
  ["LMPOP", "2", "app:{s}list", "other:{s}x", "LEFT"],
  ["GEOADD", "app:{g}g", "13.36", "38.11", "p"],
  ["GEORADIUS", "app:{g}g", "15", "37", "200", "km", "STORE", "other:{g}g"],
  ["GEORADIUS", "app:{g}g", "15", "37", "200", "km", "STORE", "app:{g}stored"],
  ["SPUBLISH", "chan:1", "m"],
  ["EVAL", "return 1", "x"],
  ["WATCH", "other:{w}1"],
  ["WATCH", "app:{w}1"],
  ["UNWATCH"],
  ["MULTI"],
  ["SET", "app:{t}1", "x"],
  ["GET", "other:{t}1"],
  ["EXEC"],
  ["MULTI"],
  ["GET", "a:{t}1"],
  ["EXEC"],
  ["UNLINK", "app:{t}1"],
];

/** Subscriptions run last, each on its own connection (a subscribed RESP2 client takes no other command). */
const SUBSCRIPTIONS: string[][] = [
  ["SUBSCRIBE", "events:1"],
  ["SUBSCRIBE", "chan:1", "chan:2"],
  ["SUBSCRIBE", "chan:1", "other"],
  ["SUBSCRIBE", "news.x"],
  ["PSUBSCRIBE", "chan:*"],
  ["PSUBSCRIBE", "chan:1*"],
  ["PSUBSCRIBE", "exact"],
];

const SEED: string[][] = [
  ["SET", "app:1", "v1"],
  ["SET", "other:1", "o1"],
  ["SET", "a:1", "a1"],
  ["SET", "b:1", "b1"],
  ["SET", "tmp:1", "t1"],
];

before(async () => {
  const cluster = await startCluster(hooks, { masters: 3, replicas: 0 });
  const users = Object.fromEntries(Object.entries(USERS).map(([name, [rules]]) => [name, rules]));
  const proxy = await startTestProxy(hooks, cluster, { users }, { busyProxy: true });
  proxyPort = proxy.port;
  const redis = await startStandalone(hooks);
  redisPort = redis.port;
  const admin = await RawClient.connect(redisPort);
  const version = /redis_version:(\S+)/.exec((await admin.command("INFO", "server")).toString())![1];
  assert.equal(
    version,
    CAPTURED_FROM,
    "the ACL command table is of another Redis: run scripts/acl/capture-commands.ts",
  );
  for (const [name, [rules]] of Object.entries(USERS)) {
    assert.equal((await admin.command("ACL", "SETUSER", name, ...splitRules(rules))).toString(), "+OK\r\n");
  }
  admin.close();
});

async function seed(): Promise<void> {
  for (const port of [proxyPort, redisPort]) {
    const client = await RawClient.connect(port);
    await client.command("FLUSHALL");
    await client.pipeline(SEED);
    client.close();
  }
}

/** Runs the same commands on both after `hello` (AUTH or HELLO), one by one; returns the replies as text. */
async function both(hello: string[], commands: string[][]): Promise<[string[], string[]]> {
  const out: string[][] = [];
  for (const port of [proxyPort, redisPort]) {
    const client = await RawClient.connect(port);
    const replies: string[] = [];
    const first = (await client.command(...hello)).toString("latin1");
    // HELLO's map names the server (its id and mode differ by design); its errors must not.
    replies.push(hello[0] === "HELLO" && first.startsWith("%") ? "%hello" : first);
    for (const command of commands) replies.push((await client.command(...command)).toString("latin1"));
    client.close();
    out.push(replies);
  }
  return out as [string[], string[]];
}

/** The one allowed command whose answer differs by design: a cluster has only database 0. */
const SELECT_1_ON_CLUSTER = "-ERR SELECT is not allowed in cluster mode\r\n";

function assertSame([viaProxy, direct]: [string[], string[]], label: string, commands: string[][]): void {
  const rows = (replies: string[], proxy: boolean) =>
    replies.map((r, i) => {
      const command = i === 0 ? "(auth)" : commands[i - 1]!.join(" ");
      const reply = proxy && command === "SELECT 1" && r === SELECT_1_ON_CLUSTER ? "+OK\r\n" : r;
      return `${command} -> ${JSON.stringify(reply)}`;
    });
  assert.deepEqual(rows(viaProxy, true), rows(direct, false), label);
}

for (const protocol of [2, 3] as const) {
  test(`every user x command x key gives the same reply through the proxy as on redis (RESP${protocol})`, async () => {
    let denied = 0;
    for (const [name, [, password]] of Object.entries(USERS)) {
      await seed();
      const hello = protocol === 2 ? ["AUTH", name, password] : ["HELLO", "3", "AUTH", name, password];
      const replies = await both(hello, MATRIX);
      assertSame(replies, `user ${name}`, MATRIX);
      denied += replies[0].filter((r) => r.startsWith("-NOPERM")).length;
    }
    // The matrix does exercise refusals of every kind.
    assert.ok(denied > 50, `only ${denied} NOPERM replies`);
  });

  test(`subscriptions are checked against each user's channels as on redis (RESP${protocol})`, async () => {
    for (const [name, [, password]] of Object.entries(USERS)) {
      for (const subscribe of SUBSCRIPTIONS) {
        const hello = protocol === 2 ? ["AUTH", name, password] : ["HELLO", "3", "AUTH", name, password];
        assertSame(await both(hello, [subscribe]), `user ${name}`, [subscribe]);
      }
    }
  });
}

test("AUTH and HELLO AUTH answer as redis for wrong passwords, unknown and disabled users", async () => {
  const cases = [
    ["AUTH", "app", "wrong"],
    ["AUTH", "nobody", "x"],
    ["AUTH", "disabled", "x-pass"],
    ["AUTH", "nokeys", "anything"],
    ["AUTH", "only-a-password"],
    ["AUTH", "default", "whatever"],
    ["AUTH", "a", "b", "c"],
    ["HELLO", "3", "AUTH", "app", "wrong"],
    ["HELLO", "2", "AUTH", "disabled", "x-pass"],
  ];
  for (const command of cases) {
    const [viaProxy, direct] = await both(["PING"], [command, ["ACL", "WHOAMI"]]);
    assert.deepEqual(viaProxy, direct, command.join(" "));
  }
});
