/**
 * A RESP3 (or RESP2) client for the tracking tests: replies in order, pushes (invalidations) apart,
 * and a client-side cache kept as a caching client library keeps it.
 */
import { createConnection, type Socket } from "node:net";
import { decodeReply } from "../../src/resp/decode.ts";
import { ReplyScanner, replyBuffer } from "../../src/resp/reply-scanner.ts";
import { encodeCommand } from "../../src/resp/request-parser.ts";

export class TrackingClient {
  private readonly socket: Socket;
  private replies: Buffer[] = [];
  private waiters: { count: number; resolve: (r: Buffer[]) => void }[] = [];
  /** Every key named by an invalidation so far (the flush counts as `flushes`). */
  readonly invalidated = new Set<string>();
  flushes = 0;
  /** Raw push (or invalidation message) frames, in arrival order. */
  readonly pushes: Buffer[] = [];
  /** The client-side cache: values read, dropped when invalidated. */
  readonly cache = new Map<string, string | null>();
  private readonly scanner = new ReplyScanner((reply, firstByte) => {
    const bytes = Buffer.from(replyBuffer(reply));
    const value = decodeReply(bytes);
    const isMessage =
      Array.isArray(value) &&
      Buffer.isBuffer(value[0]) &&
      (value[0].toString() === "invalidate" ||
        (value[0].toString() === "message" && String(value[1]) === "__redis__:invalidate"));
    if (firstByte === 62 || (this.subscriber && isMessage)) {
      this.pushes.push(bytes);
      if (isMessage) this.onInvalidation((value as unknown[]).at(-1));
      return;
    }
    // A read's value is cached as its reply is taken, before any later push (as a client library does).
    const key = this.expected.shift();
    if (key !== undefined && key !== null) {
      const value = decodeReply(bytes);
      this.cache.set(key, value === null ? null : String(value));
    }
    this.replies.push(bytes);
    this.wake();
  });
  /** For each reply due: the key whose value it brings to the cache, or null. */
  private readonly expected: (string | null)[] = [];
  /** RESP2 subscriber: invalidation messages are taken apart from the replies. */
  subscriber = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => this.scanner.feed(chunk));
    socket.on("error", () => {});
  }

  static connect(port: number): Promise<TrackingClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ port, host: "127.0.0.1" }, () => resolve(new TrackingClient(socket)));
      socket.once("error", reject);
    });
  }

  private onInvalidation(keys: unknown): void {
    if (keys === null) {
      this.flushes++;
      this.cache.clear();
      return;
    }
    for (const key of keys as Buffer[]) {
      this.invalidated.add(key.toString());
      this.cache.delete(key.toString());
    }
  }

  pipeline(commands: string[][], cacheAs: (string | null)[] = []): Promise<Buffer[]> {
    for (let i = 0; i < commands.length; i++) this.expected.push(cacheAs[i] ?? null);
    this.socket.write(Buffer.concat(commands.map((c) => encodeCommand(c))));
    return this.next(commands.length);
  }

  async command(...args: string[]): Promise<Buffer> {
    return (await this.pipeline([args]))[0]!;
  }

  /** GETs the keys in one pipeline and caches their values (as a caching client does on a miss). */
  async read(keys: string[]): Promise<void> {
    await this.pipeline(
      keys.map((k) => ["GET", k]),
      keys,
    );
  }

  private next(count: number): Promise<Buffer[]> {
    return new Promise((resolve) => {
      this.waiters.push({ count, resolve });
      this.wake();
    });
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
