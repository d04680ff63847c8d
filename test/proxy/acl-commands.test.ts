/**
 * The ACL subcommands the proxy answers from its own users, against a standalone redis-server
 * with the same users: byte for byte wherever Redis's answer does not depend on its process (the
 * order of Redis 7.0's command rules and of ACL CAT <category> follows a per-process hash seed).
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startCluster, startStandalone, fileCleanup } from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { splitRules } from "../../src/proxy/acl/rules.ts";

const hooks = fileCleanup();
let proxyPort: number;
let redisPort: number;

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** Users whose command rules both describe alike (+@all or -@all alone). */
const ALIKE: Record<string, string> = {
  full: `on >full-pass #${sha("second")} ~app:* %R~other:* %W~log:* &chan:* +@all`,
  none: "on nopass resetchannels ~* nocommands",
  off: "off sanitize-payload >x",
};
/** Users with narrower command rules. */
const OTHERS: Record<string, string> = {
  app: "on >app-pass ~app:* &events:* +@read +@write -@dangerous +acl|whoami +acl|getuser -get +get",
  sel: "on >sel-pass ~a:* +get (~b:* +set) (%R~c:* +mget)",
};

before(async () => {
  const cluster = await startCluster(hooks, { masters: 1, replicas: 0 });
  const proxy = await startTestProxy(hooks, cluster, { users: { ...ALIKE, ...OTHERS } });
  proxyPort = proxy.port;
  redisPort = (await startStandalone(hooks)).port;
  const admin = await RawClient.connect(redisPort);
  for (const [name, rules] of Object.entries({ ...ALIKE, ...OTHERS })) {
    assert.equal((await admin.command("ACL", "SETUSER", name, ...splitRules(rules))).toString(), "+OK\r\n");
  }
  admin.close();
});

/** The replies of the same commands on the proxy and on redis, as the default user, in RESP `protocol`. */
async function both(protocol: 2 | 3, ...commands: string[][]): Promise<[string[], string[]]> {
  const out: string[][] = [];
  for (const port of [proxyPort, redisPort]) {
    const client = await RawClient.connect(port);
    if (protocol === 3) await client.command("HELLO", "3");
    out.push((await client.pipeline(commands)).map((r) => r.toString("latin1")));
    client.close();
  }
  return out as [string[], string[]];
}

for (const protocol of [2, 3] as const) {
  test(`ACL GETUSER, USERS, CAT, WHOAMI and the LIST lines answer as redis (RESP${protocol})`, async () => {
    const commands = [
      ...Object.keys(ALIKE).map((name) => ["ACL", "GETUSER", name]),
      ["ACL", "GETUSER", "nobody"],
      ["ACL", "USERS"],
      ["ACL", "CAT"],
      ["ACL", "CAT", "nosuch"],
      ["ACL", "CAT", "read", "extra"],
      ["ACL", "WHOAMI"],
      ["ACL", "GENPASS", "0"],
      ["ACL", "GENPASS", "x"],
    ];
    const [viaProxy, direct] = await both(protocol, ...commands);
    assert.deepEqual(viaProxy, direct);

    const [[proxyList], [redisList]] = await both(protocol, ["ACL", "LIST"]);
    const lines = (reply: string) => reply.split("\r\n").filter((l) => /^user (full|none|off) /.test(l));
    assert.equal(lines(proxyList!).length, 3);
    assert.deepEqual(lines(proxyList!), lines(redisList!));
  });
}

test("ACL CAT <category> lists the same commands as redis", async () => {
  for (const category of ["read", "dangerous", "connection", "pubsub"]) {
    const [[viaProxy], [direct]] = await both(2, ["ACL", "CAT", category]);
    const names = (reply: string) =>
      reply
        .split("\r\n")
        .filter((l) => /^[a-z]/.test(l))
        .sort();
    assert.ok(names(direct!).length > 5);
    assert.deepEqual(names(viaProxy!), names(direct!), category);
  }
});

test("ACL LIST and GETUSER show command rules as given (Redis 7.2's form), passwords hashed", async () => {
  const client = await RawClient.connect(proxyPort);
  const list = (await client.command("ACL", "LIST")).toString();
  assert.match(
    list,
    new RegExp(
      `user app on #${sha("app-pass")} ~app:\\* resetchannels &events:\\* -@all \\+@read \\+@write -@dangerous \\+acl\\|whoami \\+acl\\|getuser \\+get\r\n`,
    ),
  );
  assert.match(
    list,
    /user sel on #\w{64} ~a:\* resetchannels -@all \+get \(~b:\* resetchannels -@all \+set\) \(%R~c:\* resetchannels -@all \+mget\)\r\n/,
  );
  assert.doesNotMatch(list, /app-pass|sel-pass/);
  const getuser = (await client.command("ACL", "GETUSER", "sel")).toString();
  assert.equal(
    getuser,
    "*12\r\n$5\r\nflags\r\n*1\r\n$2\r\non\r\n$9\r\npasswords\r\n*1\r\n$64\r\n" +
      sha("sel-pass") +
      "\r\n$8\r\ncommands\r\n$10\r\n-@all +get\r\n$4\r\nkeys\r\n$4\r\n~a:*\r\n$8\r\nchannels\r\n$0\r\n\r\n" +
      "$9\r\nselectors\r\n*2\r\n" +
      "*6\r\n$8\r\ncommands\r\n$10\r\n-@all +set\r\n$4\r\nkeys\r\n$4\r\n~b:*\r\n$8\r\nchannels\r\n$0\r\n\r\n" +
      "*6\r\n$8\r\ncommands\r\n$11\r\n-@all +mget\r\n$4\r\nkeys\r\n$6\r\n%R~c:*\r\n$8\r\nchannels\r\n$0\r\n\r\n",
  );
  client.close();
});

test("ACL subcommands that change users are refused with the reason; GENPASS and HELP are answered", async () => {
  const client = await RawClient.connect(proxyPort);
  for (const sub of ["SETUSER", "DELUSER"]) {
    assert.equal(
      (await client.command("ACL", sub, "app")).toString(),
      `-ERR command 'acl|${sub.toLowerCase()}' is disabled on this proxy: the proxy's users come from its config (users), changed by editing it and reloading (SIGHUP)\r\n`,
    );
  }
  for (const sub of ["LOAD", "SAVE", "LOG"]) {
    assert.match(
      (await client.command("ACL", sub)).toString(),
      /^-ERR command 'acl\|\w+' is disabled on this proxy: the proxy's users come from its config/,
    );
  }
  assert.match((await client.command("ACL", "GENPASS")).toString(), /^\$64\r\n[0-9a-f]{64}\r\n$/);
  assert.match((await client.command("ACL", "GENPASS", "5")).toString(), /^\$2\r\n[0-9a-f]{2}\r\n$/);
  assert.match((await client.command("ACL", "HELP")).toString(), /^\*\d+\r\n\+ACL <subcommand>/);
  client.close();
});

test("a user's ACL WHOAMI and ACL GETUSER run only as its rules allow", async () => {
  const [viaProxy, direct] = await Promise.all(
    [proxyPort, redisPort].map(async (port) => {
      const client = await RawClient.connect(port);
      const replies = await client.pipeline([
        ["AUTH", "app", "app-pass"],
        ["ACL", "WHOAMI"],
        ["ACL", "USERS"],
        ["ACL", "GETUSER", "none"],
      ]);
      client.close();
      return replies.map((r) => r.toString());
    }),
  );
  assert.deepEqual(viaProxy, direct);
  assert.equal(viaProxy![1], "$3\r\napp\r\n");
  assert.match(viaProxy![2]!, /^-NOPERM/);
});
