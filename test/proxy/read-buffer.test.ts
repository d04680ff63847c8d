/**
 * The worker reads every plain socket into one reused buffer (src/proxy/io.ts): whatever outlives
 * a read (request frames waiting for the backend flush, reply slices waiting for the client's)
 * must not point into it. These tests make many reads land between a frame's arrival and its use.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { encodeCommand } from "../../src/resp/request-parser.ts";
import { startCluster, type TestCluster, fileCleanup } from "../support/redis.ts";
import { connectSocket, receiveBytes } from "../support/raw-client.ts";
import { startTestProxy } from "../support/proxy.ts";
import { SlotMover } from "../support/slot-mover.ts";
import type { ProxyWorker } from "../../src/proxy/worker.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: ProxyWorker;

before(async () => {
  cluster = await startCluster(hooks, { masters: 3 });
  proxy = await startTestProxy(hooks, cluster);
});

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * One client's pipeline: SET then GET of keys over every shard, values from a few bytes to 100 KB
 * (so replies span many backend reads), written in pieces of 1-60 bytes (so requests span many
 * client reads, with frames cut anywhere) with a turn between pieces.
 */
async function pipelineInPieces(client: number, seed: number): Promise<void> {
  const next = random(seed);
  const commands: Buffer[] = [];
  const expected: Buffer[] = [];
  const shards = new Set<number>();
  for (let i = 0; i < 60; i++) {
    const key = `readbuf:${client}:${i}`;
    shards.add(Math.floor(slotOf(key) / (16384 / 3)));
    const size = next() < 0.1 ? 20_000 + Math.floor(next() * 80_000) : 1 + Math.floor(next() * 40);
    const value = Buffer.alloc(size, `${client}-${i}-`);
    commands.push(encodeCommand(["SET", key, value]), encodeCommand(["GET", key]));
    expected.push(Buffer.from("+OK\r\n"), Buffer.from(`$${size}\r\n`), value, Buffer.from("\r\n"));
  }
  assert.equal(shards.size, 3, "the keys must span all three shards");
  const bytes = Buffer.concat(commands);
  const want = Buffer.concat(expected);
  const socket = await connectSocket(proxy.port);
  try {
    const replies = receiveBytes(socket, want.length);
    for (let at = 0; at < bytes.length;) {
      // Small pieces through the small frames; large values go in large pieces, to keep it quick.
      const piece = bytes[at] === 42 || next() < 0.7 ? 1 + Math.floor(next() * 60) : 8192;
      socket.write(bytes.subarray(at, at + piece));
      at += piece;
      await new Promise((r) => setImmediate(r));
    }
    const got = await replies;
    assert.equal(got.length, want.length, `client ${client}: reply length`);
    assert.ok(got.equals(want), `client ${client}: replies differ from what was set`);
  } finally {
    socket.destroy();
  }
}

test("pipelines cut into many small reads, from many clients at once, get their own replies byte for byte across shards", async () => {
  await Promise.all(Array.from({ length: 12 }, (_, c) => pipelineInPieces(c, 20261202 + c)));
});

test("pipelines written whole by many clients at once, replies interleaved across shards, come back exact", async () => {
  const clients = await Promise.all(Array.from({ length: 20 }, () => connectSocket(proxy.port)));
  try {
    await Promise.all(
      clients.map(async (socket, c) => {
        const commands: Buffer[] = [];
        const expected: Buffer[] = [];
        for (let round = 0; round < 5; round++) {
          for (let i = 0; i < 50; i++) {
            const key = `readbuf-whole:${c}:${i}`;
            const value = `${c}:${round}:${i}:${"x".repeat((c * 7 + i) % 50)}`;
            commands.push(encodeCommand(["SET", key, value]), encodeCommand(["GET", key]));
            expected.push(Buffer.from(`+OK\r\n$${value.length}\r\n${value}\r\n`));
          }
        }
        const want = Buffer.concat(expected);
        const replies = receiveBytes(socket, want.length);
        socket.write(Buffer.concat(commands));
        const got = await replies;
        assert.ok(got.equals(want), `client ${c}: replies differ from what was set`);
      }),
    );
  } finally {
    for (const socket of clients) socket.destroy();
  }
});

test("a request refused with MOVED is resent intact, though the redirect's own read came after it", async () => {
  // The proxy's slot map goes stale: each key's slot moves to another master behind its back, so
  // the request goes to the old owner, and the frame is sent again once -MOVED was read.
  const mover = await SlotMover.create(cluster);
  const keys = ["readbuf-moved:a", "readbuf-moved:b", "readbuf-moved:c", "readbuf-moved:d"];
  for (const key of keys) {
    const slot = slotOf(key);
    const from = SlotMover.initialOwner(slot);
    await mover.start(slot, from, (from + 1) % 3);
    await mover.finish(slot, from, (from + 1) % 3);
  }
  const socket = await connectSocket(proxy.port);
  try {
    for (const key of keys) {
      const value = `moved-value-of-${key}`;
      const want = `+OK\r\n$${value.length}\r\n${value}\r\n`;
      const replies = receiveBytes(socket, want.length);
      // One command per write: the frame sits where the next read (the -MOVED) lands.
      socket.write(encodeCommand(["SET", key, value]));
      await new Promise((r) => setTimeout(r, 50));
      socket.write(encodeCommand(["GET", key]));
      assert.equal((await replies).toString(), want, key);
      socket.removeAllListeners("data");
      socket.removeAllListeners("close");
    }
  } finally {
    socket.destroy();
  }
});
