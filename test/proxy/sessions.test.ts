import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { startCluster, startStandalone, type TestCluster, fileCleanup, until } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";
import { RawClient, connectSocket, receiveBytes } from "../support/raw-client.ts";
import { encodeCommand } from "../../src/resp/request-parser.ts";
import type { ProxyWorker } from "../../src/proxy/worker.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: ProxyWorker;
let reference: { port: number };

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 0 });
  proxy = await startTestProxy(hooks, cluster);
  reference = await startStandalone(hooks);
});

/** Runs the same command list on the proxy and on a standalone redis; asserts identical replies. */
async function sameAsRedis(t: { after(fn: () => void): void }, commands: string[][]): Promise<string[]> {
  const viaProxy = await RawClient.connect(proxy.port);
  const direct = await RawClient.connect(reference.port);
  t.after(() => {
    viaProxy.close();
    direct.close();
  });
  const actual: string[] = [];
  for (const command of commands) {
    const [p, d] = await Promise.all([viaProxy.command(...command), direct.command(...command)]);
    assert.equal(p.toString("latin1"), d.toString("latin1"), command.join(" "));
    actual.push(p.toString("latin1"));
  }
  return actual;
}

test("MULTI/EXEC with keys in one slot runs atomically and answers as redis does", async (t) => {
  await sameAsRedis(t, [
    ["MULTI"],
    ["SET", "{tx}a", "1"],
    ["INCR", "{tx}a"],
    ["LPUSH", "{tx}list", "x", "y"],
    ["PING"],
    ["EXEC"],
    ["GET", "{tx}a"],
    ["MULTI"],
    ["EXEC"],
    ["EXEC"],
    ["DISCARD"],
    ["MULTI"],
    ["MULTI"],
    ["SET", "{tx}b", "2"],
    ["DISCARD"],
    ["GET", "{tx}b"],
    ["MULTI"],
    ["INCR", "{tx}a"],
    ["NOSUCHCOMMAND"],
    ["EXEC"],
    ["MULTI"],
    ["GET"],
    ["EXEC"],
    ["MULTI"],
    ["SET", "{tx}s", "notanumber"],
    ["INCR", "{tx}s"],
    ["EXEC"],
  ]);
});

test("a command for another slot inside MULTI gets CROSSSLOT and EXEC aborts with EXECABORT", async (t) => {
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  const replies = await client.pipeline([
    ["MULTI"],
    ["SET", "{a}1", "x"],
    ["SET", "{b}1", "y"],
    ["EXEC"],
    ["GET", "{a}1"],
  ]);
  assert.deepEqual(
    replies.map((r) => r.toString()),
    [
      "+OK\r\n",
      "+QUEUED\r\n",
      "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
      "-EXECABORT Transaction discarded because of previous errors.\r\n",
      "$-1\r\n",
    ],
  );
});

test("WATCH: a transaction runs when the watched key is untouched and fails (nil) when another client changed it", async (t) => {
  const client = proxyClient(t, proxy.port);
  const other = proxyClient(t, proxy.port);
  await client.set("{w}balance", "10");

  await client.watch("{w}balance");
  const untouched = await client.multi().incrby("{w}balance", 5).exec();
  assert.deepEqual(untouched, [[null, 15]]);

  await client.watch("{w}balance");
  await other.set("{w}balance", "100");
  const conflicted = await client.multi().incrby("{w}balance", 5).exec();
  assert.equal(conflicted, null, "EXEC returns nil when a watched key changed");
  assert.equal(await client.get("{w}balance"), "100");

  await client.watch("{w}balance");
  assert.equal(await client.unwatch(), "OK");
  await other.set("{w}balance", "7");
  assert.deepEqual(await client.multi().incr("{w}balance").exec(), [[null, 8]], "UNWATCH ends the watch");

  await assert.rejects(client.watch("{w}a", "{x}b"), /CROSSSLOT/);
});

test("a transaction whose slot moved before EXEC is retried on the new owner: no error, it runs once", async (t) => {
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  const key = "{moving-tx}counter";
  const slot = slotOf(key);
  await client.command("SET", key, "0");
  await client.pipeline([["MULTI"], ["INCR", key]]);
  // Move the slot (empty apart from the key) to another master between MULTI and EXEC.
  const owners = await Promise.all(
    cluster.masters.map(
      async (m) => (await cluster.connect(m).call("CLUSTER", "COUNTKEYSINSLOT", slot)) as number,
    ),
  );
  const source = cluster.masters[owners.findIndex((n) => n > 0)]!;
  const target = cluster.masters.find((m) => m !== source)!;
  const src = cluster.connect(source);
  const dst = cluster.connect(target);
  const srcId = String(await src.call("CLUSTER", "MYID"));
  const dstId = String(await dst.call("CLUSTER", "MYID"));
  await dst.call("CLUSTER", "SETSLOT", slot, "IMPORTING", srcId);
  await src.call("CLUSTER", "SETSLOT", slot, "MIGRATING", dstId);
  await src.call("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", key);
  for (const m of cluster.masters) await cluster.connect(m).call("CLUSTER", "SETSLOT", slot, "NODE", dstId);
  assert.equal((await client.command("EXEC")).toString(), "*1\r\n:1\r\n");
  assert.equal((await client.command("GET", key)).toString(), "$1\r\n1\r\n");
});

test("blocking commands wait on their own connection: other clients are not held up, and the pop arrives", async (t) => {
  const waiter = proxyClient(t, proxy.port);
  const pusher = proxyClient(t, proxy.port);
  const popped = waiter.blpop("queue:jobs", 0);
  const blockedStream = waiter.duplicate();
  t.after(() => blockedStream.disconnect());
  const streamRead = blockedStream.xread("BLOCK", 0, "STREAMS", "stream:events", "$");
  // Many requests on the shared connections while two clients block.
  for (let i = 0; i < 200; i++) assert.equal(await pusher.set(`unblocked:${i}`, "x"), "OK");
  await pusher.rpush("queue:jobs", "job-1");
  assert.deepEqual(await popped, ["queue:jobs", "job-1"]);
  await pusher.xadd("stream:events", "*", "kind", "created");
  const read = (await streamRead) as [string, [string, string[]][]][];
  assert.equal(read[0]![0], "stream:events");
  assert.deepEqual(read[0]![1][0]![1], ["kind", "created"]);
  // A timeout of the command's own is honoured, with Redis's nil.
  assert.equal(await waiter.brpop("queue:empty", 0.2), null);
});

test("replies pipelined ahead of a blocking command reach the client while it blocks", async (t) => {
  // The worker may hold a client's replies one event-loop turn for the rest of its pipeline; a
  // reply must never wait for a blocking command behind it. The push below happens only once the
  // earlier replies arrived, so a worker that held them would leave this test hanging.
  const raw = await RawClient.connect(proxy.port);
  t.after(() => raw.close());
  // One key per shard, so their replies come over three connections, in different turns.
  const shard = (key: string) => Math.floor((slotOf(key) * 3) / 16384);
  const keys = [0, 1, 2].map((n) => {
    for (let i = 0; ; i++) if (shard(`ahead:${i}`) === n) return `ahead:${i}`;
  });
  await raw.pipeline(keys.map((k) => ["SET", k, k]));
  raw.send(
    Buffer.concat(
      [...keys.map((k) => ["GET", k]), ["BLPOP", "ahead:queue", "0"]].map((c) =>
        Buffer.from(`*${c.length}\r\n${c.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`),
      ),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const ahead = await Promise.race([
    raw.next(keys.length),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("replies ahead of BLPOP held while it blocks")), 10_000);
    }),
  ]);
  clearTimeout(timer);
  assert.deepEqual(
    ahead.map((r) => r.toString()),
    keys.map((k) => `$${k.length}\r\n${k}\r\n`),
  );
  const pusher = proxyClient(t, proxy.port);
  await pusher.rpush("ahead:queue", "job");
  const [popped] = await raw.next(1);
  assert.equal(popped!.toString(), "*2\r\n$11\r\nahead:queue\r\n$3\r\njob\r\n");
});

test("a client that disconnects while blocked releases its shard connection", async (t) => {
  const raw = await RawClient.connect(proxy.port);
  raw.send("*3\r\n$5\r\nBLPOP\r\n$12\r\nqueue:orphan\r\n$1\r\n0\r\n");
  await new Promise((r) => setTimeout(r, 200));
  raw.close();
  const pusher = proxyClient(t, proxy.port);
  await new Promise((r) => setTimeout(r, 200));
  await pusher.rpush("queue:orphan", "kept");
  assert.deepEqual(
    await pusher.lrange("queue:orphan", 0, -1),
    ["kept"],
    "no ghost consumer popped the element",
  );
});

test("SUBSCRIBE and PSUBSCRIBE receive messages published through the proxy or straight to any shard", async (t) => {
  const subscriber = proxyClient(t, proxy.port);
  const publisher = proxyClient(t, proxy.port);
  const received: string[] = [];
  subscriber.on("message", (channel, message) => received.push(`${channel}:${message}`));
  subscriber.on("pmessage", (pattern, channel, message) => received.push(`${pattern}|${channel}:${message}`));
  assert.equal(await subscriber.subscribe("news", "alerts"), 2);
  assert.equal(await subscriber.psubscribe("metrics.*"), 3);
  await publisher.publish("news", "hello");
  const direct = new Redis({ host: "127.0.0.1", port: cluster.masters[2]!.port });
  t.after(() => direct.disconnect());
  await direct.publish("alerts", "from-a-shard");
  await publisher.publish("metrics.cpu", "42");
  const deadline = Date.now() + 5000;
  while (received.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(received.sort(), ["alerts:from-a-shard", "metrics.*|metrics.cpu:42", "news:hello"]);
});

test("a subscribed RESP2 client may only (un)subscribe, PING, QUIT or RESET, as redis says; PING answers in the subscriber format", async (t) => {
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  client.send("*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n");
  assert.equal((await client.next(1))[0]!.toString(), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
  assert.equal(
    (await client.command("GET", "x")).toString(),
    "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
  );
  assert.equal((await client.command("PING")).toString(), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  client.send("*1\r\n$11\r\nUNSUBSCRIBE\r\n");
  assert.equal((await client.next(1))[0]!.toString(), "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n");
  assert.equal((await client.command("GET", "x")).toString(), "$-1\r\n");
});

test("SSUBSCRIBE follows the shard of the channel, and RESP3 clients get messages as push frames", async (t) => {
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  await client.command("HELLO", "3");
  client.send("*2\r\n$10\r\nSSUBSCRIBE\r\n$6\r\norders\r\n");
  const [confirmation] = await client.next(1);
  assert.equal(confirmation!.toString(), ">3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n");
  // RESP3 clients may run ordinary commands while subscribed.
  assert.equal((await client.command("SET", "resp3:sub", "ok")).toString(), "+OK\r\n");
  const publisher = proxyClient(t, proxy.port);
  assert.equal(await publisher.call("SPUBLISH", "orders", "o-1"), 1);
  const [message] = await client.next(1);
  assert.equal(message!.toString(), ">3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$3\r\no-1\r\n");
});

test("a subscriber that does not read is disconnected at the pubsub output limit, as Redis does; others go on", async (t) => {
  const slow = createConnection({ host: "127.0.0.1", port: proxy.port });
  slow.on("error", () => {});
  t.after(() => slow.destroy());
  const closed = new Promise<void>((resolve) => slow.once("close", () => resolve()));
  slow.write("*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nfloods\r\n".replace("$5\r\nfloods", "$6\r\nfloods"));
  await new Promise((r) => setTimeout(r, 200));
  slow.pause();
  const publisher = proxyClient(t, proxy.port);
  // Published on every master directly: the subscriber's node gets each message at once, not
  // later over the cluster bus, which would pace the flood by its own buffering.
  const masters = cluster.masters.map((m) => cluster.connect(m));
  const message = Buffer.alloc(1024 * 1024, "m");
  assert.equal(await publisher.ping(), "PONG"); // connected, so it is counted before the flood
  const clientsBefore = proxy.context.clients.size;
  let published = 0;
  // 32 MB is the limit: well past it (and past what the kernel buffers), the proxy must drop it.
  // (Watched on the proxy's side: a paused socket sees its close only after reading its backlog.)
  while (proxy.context.clients.size === clientsBefore && published < 200) {
    await masters[published % masters.length]!.publish("floods", message);
    published++;
  }
  t.diagnostic(`slow subscriber dropped after ${published} MB published`);
  assert.equal(proxy.context.clients.size, clientsBefore - 1, "the slow subscriber was disconnected");
  slow.resume();
  await Promise.race([
    closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error("its socket stayed open")), 5000)),
  ]);
  assert.equal(await publisher.ping(), "PONG");
});

test("QUIT: the reply, then the proxy closes the connection and its session (not half-closed, kept for good)", async () => {
  const socket = await connectSocket(proxy.port);
  // Found by its address while connected (a closed socket has none), then followed as an object.
  const find = () => [...proxy.context.clients].find((c) => c.remoteAddress.endsWith(`:${socket.localPort}`));
  await until(() => find() !== undefined, 5_000, "the session");
  const session = find()!;
  let closed = false;
  socket.on("close", () => (closed = true));
  const reply = receiveBytes(socket, 5);
  socket.write(encodeCommand(["QUIT"]));
  assert.equal((await reply).toString(), "+OK\r\n");
  // The client does not close its side: the proxy must, as Redis does after the reply.
  await until(() => closed, 5_000, "the proxy to close the connection after QUIT");
  await until(() => !proxy.context.clients.has(session), 5_000, "the session to go");
});
