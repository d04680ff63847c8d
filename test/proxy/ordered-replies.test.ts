import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Socket } from "node:net";
import { once } from "node:events";
import { FlushScheduler } from "../../src/proxy/io.ts";
import {
  ConnectionState,
  OrderedReplies,
  type ReplySlot,
  type ReplyWriterOwner,
} from "../../src/proxy/ordered-replies.ts";

class Slot implements ReplySlot {
  done = false;
  reply: Buffer | null = null;
  constructor(readonly name: string) {}
}

class Owner implements ReplyWriterOwner<Slot> {
  order: string[] = [];
  overLimit = 0;
  released(slot: Slot): void {
    this.order.push(slot.name);
  }
  checkBackpressure(): void {}
  overHardLimit(): void {
    this.overLimit++;
  }
}

/** A connected socket pair over loopback: [the side the writer writes on, the side that reads]. */
async function socketPair(): Promise<[Socket, Socket, () => void]> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, "connection");
  const reader = connect(port, "127.0.0.1");
  const [writer] = (await accepted) as [Socket];
  return [writer, reader, () => server.close()];
}

function finish(writer: OrderedReplies<Slot>, slot: Slot, text: string): void {
  slot.reply = Buffer.from(text);
  slot.done = true;
  writer.release(slot);
}

test("replies leave in the order their commands came, however they finish; the connection ends after the last", async (t) => {
  const [socket, reader, close] = await socketPair();
  t.after(close);
  const owner = new Owner();
  const writer = new OrderedReplies<Slot>(socket, new FlushScheduler(), owner, 16 * 1024);
  const [a, b, c] = [new Slot("a"), new Slot("b"), new Slot("c")];
  for (const slot of [a, b, c]) writer.queue.push(slot);
  const received: Buffer[] = [];
  reader.on("data", (chunk: Buffer) => received.push(chunk));
  const ended = once(reader, "end");

  finish(writer, c, "+c\r\n");
  finish(writer, b, "+b\r\n");
  assert.equal(writer.outputBytes, 0, "nothing goes out before the first reply due");
  writer.closeAfterReply();
  assert.equal(writer.state, ConnectionState.ClosingAfterReply);
  finish(writer, a, "+a\r\n");
  assert.deepEqual(owner.order, ["a", "b", "c"]);
  await ended;
  assert.equal(Buffer.concat(received).toString(), "+a\r\n+b\r\n+c\r\n");
});

test("a writer over its hard limit tells its owner at each reply", async (t) => {
  const [socket, , close] = await socketPair();
  t.after(() => {
    socket.destroy();
    close();
  });
  const owner = new Owner();
  const writer = new OrderedReplies<Slot>(socket, new FlushScheduler(), owner, 0);
  writer.hardLimit = 8;
  writer.emit(Buffer.from("+1234\r\n"));
  assert.equal(owner.overLimit, 0);
  writer.emit(Buffer.from("+5678\r\n"));
  assert.equal(owner.overLimit, 1);
});
