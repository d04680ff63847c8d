/**
 * A client that sends raw bytes and returns raw reply bytes, so tests can compare the proxy's
 * answers with Redis's byte for byte.
 */
import { createConnection, type Socket } from "node:net";
import { encodeCommand } from "../../src/resp/request-parser.ts";
import { ReplyScanner, replyBuffer } from "../../src/resp/reply-scanner.ts";

export class RawClient {
  private readonly socket: Socket;
  private replies: Buffer[] = [];
  private waiters: { count: number; resolve: (r: Buffer[]) => void }[] = [];
  private readonly scanner = new ReplyScanner((reply) => {
    this.replies.push(Buffer.from(replyBuffer(reply)));
    this.wake();
  });
  readonly closed: Promise<void>;
  private received: Buffer[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.received.push(chunk);
      this.scanner.feed(chunk);
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) => socket.on("close", () => resolve()));
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ port, host }, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  /** Sends many commands in one write and resolves with their replies, in order. */
  pipeline(commands: (string | Buffer)[][]): Promise<Buffer[]> {
    this.socket.write(Buffer.concat(commands.map((c) => encodeCommand(c))));
    return this.next(commands.length);
  }

  async command(...args: (string | Buffer)[]): Promise<Buffer> {
    return (await this.pipeline([args]))[0]!;
  }

  /** Writes bytes as they are. */
  send(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** Resolves with the next `count` replies. */
  next(count: number): Promise<Buffer[]> {
    return new Promise((resolve) => {
      this.waiters.push({ count, resolve });
      this.wake();
    });
  }

  /** Everything the server sent until it closed the connection (rejects after `timeoutMs`). */
  async allUntilClose(timeoutMs = 5000): Promise<Buffer> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closed,
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error("connection stayed open")), timeoutMs)),
      ),
    ]);
    clearTimeout(timer);
    return Buffer.concat(this.received);
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.replies.length >= this.waiters[0]!.count) {
      const waiter = this.waiters.shift()!;
      waiter.resolve(this.replies.splice(0, waiter.count));
    }
  }
}

/** A plain socket to the port, once connected (for tests that write and read bytes themselves). */
export function connectSocket(port: number, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Collects `length` bytes from the socket (or whatever came when it closed). */
export function receiveBytes(socket: Socket, length: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = () => resolve(Buffer.concat(chunks));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) done();
    });
    socket.on("close", done);
  });
}
