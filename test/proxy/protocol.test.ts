import { test, before } from "node:test";
import assert from "node:assert/strict";
import {
  startCluster,
  startStandalone,
  testEngine,
  type TestCluster,
  fileCleanup,
} from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import type { ProxyWorker } from "../../src/proxy/worker.ts";
import { INLINE_MAX_SIZE } from "../../src/resp/request-parser.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: ProxyWorker;
let reference: { port: number };

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 1 });
  proxy = await startTestProxy(hooks, cluster);
  reference = await startStandalone(hooks);
});

/** Sends the same bytes to the proxy and to a standalone redis; returns what each sent back before closing. */
async function bothUntilClose(bytes: string | Buffer): Promise<[string, string]> {
  const results = await Promise.all(
    [proxy.port, reference.port].map(async (port) => {
      const client = await RawClient.connect(port);
      client.send(bytes);
      return (await client.allUntilClose()).toString("latin1");
    }),
  );
  return results as [string, string];
}

test("each malformed request gets redis's own error text and a closed connection, after earlier replies", async () => {
  const cases = [
    "*abc\r\n",
    "*3000000000\r\n",
    "*1\r\n:1\r\n",
    "*1\r\n$-5\r\n",
    "*1\r\n$600000000\r\n",
    "PING\r\n*2\r\n$4\r\nECHO\r\n$x\r\n",
    "*1\r\n$4\r\nPING\r\n*1\r\nfoo\r\n",
    "*" + "1".repeat(INLINE_MAX_SIZE + 10),
    "*1\r\n$" + "1".repeat(INLINE_MAX_SIZE + 10),
    "GET " + "a".repeat(INLINE_MAX_SIZE + 10),
    'SET "unbalanced\r\n',
    "*3\r\n$3\r\nSET\r\n$2\r\nkk\r\n$1\r\nv\r\n*x\r\n",
  ];
  for (const input of cases) {
    const [viaProxy, direct] = await bothUntilClose(input);
    assert.equal(viaProxy, direct, `for ${JSON.stringify(input.slice(0, 50))}`);
    assert.match(viaProxy, /-ERR Protocol error: /);
  }
});

test("a bulk not followed by CRLF is refused (redis skips two bytes blindly; a forwarding proxy must not)", async () => {
  const client = await RawClient.connect(proxy.port);
  client.send("*1\r\n$4\r\nPINGxx");
  assert.equal(
    (await client.allUntilClose()).toString(),
    "-ERR Protocol error: expected CRLF after bulk data\r\n",
  );
});

test("a client sending garbage is closed while other clients go on", async (t) => {
  const good = await RawClient.connect(proxy.port);
  t.after(() => good.close());
  const pending = good.pipeline(Array.from({ length: 200 }, (_, i) => ["SET", `bystander:${i}`, "x"]));
  const bad = await RawClient.connect(proxy.port);
  bad.send("*1\r\n$-9\r\n");
  await bad.allUntilClose();
  assert.ok((await pending).every((r) => r.toString() === "+OK\r\n"));
  assert.equal((await good.command("PING")).toString(), "+PONG\r\n");
});

test("keyless and connection commands answer as redis does", async (t) => {
  const viaProxy = await RawClient.connect(proxy.port);
  const direct = await RawClient.connect(reference.port);
  t.after(() => {
    viaProxy.close();
    direct.close();
  });
  const same: string[][] = [
    ["PING"],
    ["PING", "hello"],
    ["ECHO", "bytes \x00\xff"],
    ["SELECT", "0"],
    ["SELECT", "abc"],
    ["CLIENT", "SETNAME", "app-1"],
    ["CLIENT", "GETNAME"],
    ["CLIENT", "SETNAME", "has space"],
    ["CLIENT", "NOSUCH"],
    ["GET"],
    ["GET", "a", "b"],
    ["OBJECT", "ENCODING"],
    ["NOSUCHCOMMAND", "arg1", "arg 2"],
    ["nosuchcommand"],
    ["AUTH", "secret"],
    ["HELLO", "4"],
    ["HELLO", "x"],
    ["HELLO", "3", "SETNAME", "a", "bogus"],
  ];
  const [expected, actual] = await Promise.all([direct.pipeline(same), viaProxy.pipeline(same)]);
  same.forEach((command, i) =>
    assert.equal(actual[i]!.toString("latin1"), expected[i]!.toString("latin1"), command.join(" ")),
  );
  // Redis Cluster's own answer for other databases.
  assert.equal(
    (await viaProxy.command("SELECT", "1")).toString(),
    "-ERR SELECT is not allowed in cluster mode\r\n",
  );
  assert.equal((await viaProxy.command("CLIENT", "ID")).toString()[0], ":");
  assert.equal((await viaProxy.command("TIME")).toString().slice(0, 2), "*2");
  assert.match((await viaProxy.command("COMMAND", "COUNT")).toString(), /^:\d+\r\n$/);
  // CLIENT SETINFO came in Redis 7.2 (the reference here is 7.0); clients send it on connect.
  assert.equal((await viaProxy.command("CLIENT", "SETINFO", "lib-name", "mylib")).toString(), "+OK\r\n");
  assert.equal(
    (await viaProxy.command("CLIENT", "SETINFO", "bogus", "x")).toString(),
    "-ERR Unrecognized option 'bogus'\r\n",
  );
  assert.match((await viaProxy.command("CLIENT", "INFO")).toString(), /name=app-1 .*lib-name=mylib/);
});

test("HELLO 3 switches the client to RESP3 replies, from the shards too", async (t) => {
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  const hello = (await client.command("HELLO", "3")).toString();
  // The shards' engine's name, as its own HELLO says.
  const engine = testEngine();
  assert.ok(hello.startsWith(`%7\r\n$6\r\nserver\r\n$${engine.length}\r\n${engine}\r\n`), hello);
  assert.match(hello, /\$5\r\nproto\r\n:3\r\n/);
  await client.command("HSET", "resp3:h", "f", "v");
  assert.equal((await client.command("HGETALL", "resp3:h")).toString(), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
  assert.equal((await client.command("GET", "resp3:missing")).toString(), "_\r\n");
  assert.equal((await client.command("HELLO", "2")).toString().slice(0, 3), "*14");
  assert.equal((await client.command("HGETALL", "resp3:h")).toString(), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
});

test("commands that would damage the cluster are refused with a reason", async (t) => {
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  for (const command of [
    ["SHUTDOWN"],
    ["CLUSTER", "RESET"],
    ["DEBUG", "SLEEP", "0"],
    ["CONFIG", "SET", "maxmemory", "1"],
    ["REPLICAOF", "NO", "ONE"],
  ]) {
    const reply = (await client.command(...command)).toString();
    assert.match(reply, /^-ERR command '[a-z|]+' is disabled on this proxy: /, command.join(" "));
  }
  assert.match(
    (await client.command("CONFIG", "GET", "maxmemory")).toString(),
    /^\*2\r\n\$9\r\nmaxmemory\r\n/,
  );
});

test("a password set for clients is required, and AUTH / HELLO AUTH check it", async (t) => {
  const secured = await startTestProxy(t, cluster, { clientPassword: "s3cret" });
  const client = await RawClient.connect(secured.port);
  t.after(() => client.close());
  assert.equal((await client.command("GET", "x")).toString(), "-NOAUTH Authentication required.\r\n");
  assert.equal(
    (await client.command("AUTH", "wrong")).toString(),
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
  );
  assert.equal((await client.command("AUTH", "s3cret")).toString(), "+OK\r\n");
  assert.equal((await client.command("PING")).toString(), "+PONG\r\n");
  const other = await RawClient.connect(secured.port);
  t.after(() => other.close());
  assert.match((await other.command("HELLO", "3", "AUTH", "default", "s3cret")).toString(), /^%7/);
});

test("CLIENT LIST and CLIENT KILL act on the proxy's own clients", async (t) => {
  const admin = await RawClient.connect(proxy.port);
  const victim = await RawClient.connect(proxy.port);
  t.after(() => admin.close());
  await victim.command("CLIENT", "SETNAME", "victim");
  const victimId = Number((await victim.command("CLIENT", "ID")).toString().slice(1));
  const list = (await admin.command("CLIENT", "LIST")).toString();
  assert.match(list, new RegExp(`id=${victimId} addr=127\\.0\\.0\\.1:\\d+ .*name=victim`));
  assert.match(
    (await admin.command("CLIENT", "LIST", "ID", String(victimId))).toString(),
    /^\$\d+\r\nid=\d+ [^\n]*name=victim [^\n]*\n\r\n$/,
  );
  assert.equal((await admin.command("CLIENT", "KILL", "ID", String(victimId))).toString(), ":1\r\n");
  await victim.allUntilClose();
  assert.equal((await admin.command("CLIENT", "KILL", "127.0.0.1:1")).toString(), "-ERR No such client\r\n");
  assert.equal((await admin.command("CLIENT", "KILL", "ID", "999999999")).toString(), ":0\r\n");
});
