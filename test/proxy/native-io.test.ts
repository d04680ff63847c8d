/**
 * native/io.c reads and writes the worker's plain sockets (src/proxy/io.ts): Node's stream still
 * owns each socket, but its reading is off, so what Node did by itself on a read has to be done
 * here: a client's EOF or reset closes it, backpressure pauses and resumes the native reads, the
 * idle timer counts native reads and writes, and a write the kernel takes only in part leaves the
 * rest to the stream without reordering. The rest of the suite runs on this path too; these are
 * the cases it has of its own. Real sockets, a real worker, a real three-master cluster.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { encodeCommand } from "../../src/resp/request-parser.ts";
import { socketIo } from "../../src/proxy/io.ts";
import { startCluster, type TestCluster, fileCleanup, until } from "../support/redis.ts";
import { connectSocket, receiveBytes } from "../support/raw-client.ts";
import { startTestProxy, type TestProxy } from "../support/proxy.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: TestProxy;

before(async () => {
  cluster = await startCluster(hooks, { masters: 3 });
  proxy = await startTestProxy(hooks, cluster);
});

test("the worker's plain sockets are read and written by native/io.c", () => {
  assert.ok(
    socketIo.native,
    `native/io.c is not in use (${socketIo.reason}); build it with node scripts/build-native.mjs`,
  );
});

test("a client's EOF and a client's reset each close its session, and the worker serves the next", async () => {
  const before = proxy.context.clients.size;
  const quiet = await connectSocket(proxy.port);
  const reset = await connectSocket(proxy.port);
  await until(() => proxy.context.clients.size === before + 2, 5_000, "both sessions");
  quiet.end();
  await until(
    () => proxy.context.clients.size === before + 1,
    5_000,
    "the half-closed client's session to close",
  );
  reset.resetAndDestroy();
  await until(() => proxy.context.clients.size === before, 5_000, "the reset client's session to close");
  const next = await connectSocket(proxy.port);
  const reply = receiveBytes(next, 7);
  next.write(encodeCommand(["PING"]));
  assert.equal((await reply).toString(), "+PONG\r\n");
  next.destroy();
});

test("replies larger than the kernel takes at once keep their order behind and ahead of them", async () => {
  // 8 MB values: each reply's write leaves most of it to the stream, and the small replies
  // pipelined after it must wait their turn there.
  const big = Buffer.alloc(8 * 1024 * 1024, "v");
  const writer = await connectSocket(proxy.port);
  const ok = receiveBytes(writer, 10);
  writer.write(
    Buffer.concat([encodeCommand(["SET", "nio:big:a", big]), encodeCommand(["SET", "nio:big:b", big])]),
  );
  assert.equal((await ok).toString(), "+OK\r\n+OK\r\n");
  writer.destroy();

  const client = await connectSocket(proxy.port);
  const pipeline = [];
  const expected = [];
  for (let i = 0; i < 3; i++) {
    pipeline.push(encodeCommand(["GET", "nio:big:a"]), encodeCommand(["ECHO", `after-a-${i}`]));
    pipeline.push(encodeCommand(["GET", "nio:big:b"]), encodeCommand(["ECHO", `after-b-${i}`]));
    const head = Buffer.from(`$${big.length}\r\n`);
    for (const name of ["a", "b"]) {
      const echo = `after-${name}-${i}`;
      expected.push(head, big, Buffer.from("\r\n"), Buffer.from(`$${echo.length}\r\n${echo}\r\n`));
    }
  }
  const want = Buffer.concat(expected);
  // The client reads nothing for a while, so the worker's writes meet a full socket buffer.
  client.pause();
  client.write(Buffer.concat(pipeline));
  await new Promise((r) => setTimeout(r, 300));
  const replies = receiveBytes(client, want.length);
  client.resume();
  const got = await replies;
  assert.equal(got.length, want.length);
  assert.ok(got.equals(want), "the replies came back in order, byte for byte");
  client.destroy();
});

test("a client that stops reading is paused, then read again once it drains, losing nothing", async () => {
  const value = Buffer.alloc(1024 * 1024, "p");
  const writer = await connectSocket(proxy.port);
  const ok = receiveBytes(writer, 5);
  writer.write(encodeCommand(["SET", "nio:pause", value]));
  assert.equal((await ok).toString(), "+OK\r\n");
  writer.destroy();

  const count = 200; // 200 MB of replies: far past the 64 MB a client may have pending
  const one = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from("\r\n")]);
  const client = await connectSocket(proxy.port);
  await until(
    () => [...proxy.context.clients].some((c) => c.remoteAddress.endsWith(`:${client.localPort}`)),
    5_000,
    "the session",
  );
  // Its reply queue is private; its read state is what this case is about.
  const session = [...proxy.context.clients].find((c) =>
    c.remoteAddress.endsWith(`:${client.localPort}`),
  ) as unknown as {
    replies: { readPaused: boolean };
  };
  client.pause();
  client.write(Buffer.concat(Array.from({ length: count }, () => encodeCommand(["GET", "nio:pause"]))));
  await until(() => session.replies.readPaused, 10_000, "the worker to stop reading the client");
  // Paused means not read: 32 MB more (a SET, answered after the GETs) stays on the client's side
  // (its socket buffer), not in the worker's memory.
  client.write(encodeCommand(["SET", "nio:pause:more", Buffer.alloc(32 * 1024 * 1024, "m")]));
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(
    client.writableLength > 16 * 1024 * 1024,
    `${client.writableLength} bytes left unsent: the worker read a paused client`,
  );
  let got = 0;
  let mismatched = 0;
  let carry: Buffer = Buffer.alloc(0);
  const done = new Promise<void>((resolve) => {
    client.on("data", (chunk: Buffer) => {
      carry = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
      while (carry.length >= one.length) {
        if (!carry.subarray(0, one.length).equals(one)) mismatched++;
        carry = carry.subarray(one.length);
        got++;
      }
      if (got === count) resolve();
    });
  });
  client.resume();
  await done;
  assert.equal(mismatched, 0);
  await until(() => carry.toString() === "+OK\r\n", 10_000, "the SET's reply");
  await until(() => !session.replies.readPaused, 5_000, "the worker to read the client again");
  client.removeAllListeners("data");
  const pong = receiveBytes(client, 7);
  client.write(encodeCommand(["PING"]));
  assert.equal((await pong).toString(), "+PONG\r\n");
  client.destroy();
});

test("the idle timeout counts native reads: a client sending with replies off stays, an idle one is closed", async () => {
  const idleProxy = await startTestProxy(hooks, cluster, {
    limits: { idleTimeoutSeconds: 1 },
  });
  const busy = await connectSocket(idleProxy.port);
  const idle = await connectSocket(idleProxy.port);
  let idleClosedAt = 0;
  const started = Date.now();
  idle.on("close", () => (idleClosedAt = Date.now()));
  let busyClosed = false;
  busy.on("close", () => (busyClosed = true));
  // Replies off: the worker only reads this client, so only its reads can keep it from idling.
  let unexpected = "";
  busy.on("data", (chunk: Buffer) => (unexpected += chunk.toString()));
  busy.write(encodeCommand(["CLIENT", "REPLY", "OFF"]));
  // 2.5 s of a SET every 200 ms: past the 1 s timeout, never 1 s apart.
  let sets = 0;
  while (Date.now() - started < 2_500) {
    busy.write(encodeCommand(["SET", "nio:idle", String(sets++)]));
    await new Promise((r) => setTimeout(r, 200));
  }
  await until(() => idleClosedAt > 0, 5_000, "the idle client's close");
  assert.ok(idleClosedAt - started >= 900, `closed after ${idleClosedAt - started} ms, before its timeout`);
  assert.equal(busyClosed, false, "the client sending was kept");
  assert.equal(unexpected, "", "nothing was written to it");
  busy.removeAllListeners("data");
  const pong = receiveBytes(busy, 12);
  busy.write(Buffer.concat([encodeCommand(["CLIENT", "REPLY", "ON"]), encodeCommand(["PING"])]));
  assert.equal((await pong).toString(), "+OK\r\n+PONG\r\n");
  busy.destroy();
});
