/**
 * A control connection to one node, for the slot-map source's reads (CLUSTER SHARDS/SLOTS, CONFIG
 * GET, INFO): a command at a time is all it needs, with the same contract the ioredis client it
 * replaces had there (`lazyConnect`, `connectTimeout`, `commandTimeout`, no retries, no reconnect):
 *
 * - `connect()` opens the socket (TLS when given options), sends AUTH when credentials are set (else
 *   PING), and rejects when any of it fails; the `error` listener gets the cause (ECONNREFUSED, a
 *   TLS alert, WRONGPASS).
 * - `call()` resolves with the decoded reply (bulk strings as UTF-8 strings, integers as numbers,
 *   arrays as arrays) or rejects with the error reply's text; after `commandTimeout` it rejects
 *   with "Command timed out" and the connection stays.
 * - once closed, the status is "end" and every waiting call rejects with "Connection is closed.".
 *
 * Not ioredis: loading it cost each proxy process about 15 MB of RSS (its command table and
 * prototypes), for four commands on a connection that idles; this reuses the proxy's own RESP
 * scanner and decoder (bench/results/memory.md).
 */
import { createConnection, type Socket } from "node:net";
import { connect as connectTls, type ConnectionOptions } from "node:tls";
import { decodeReply, RespMap, RespSet, type RespValue } from "../../resp/decode.ts";
import { DoubleReply, ErrorReply, SimpleString } from "../../resp/encode.ts";
import { encodeCommand } from "../../resp/request-parser.ts";
import { ReplyScanner } from "../../resp/reply-scanner.ts";

export type ControlStatus = "wait" | "connecting" | "ready" | "end";

export interface ControlOptions {
  host: string;
  port: number;
  username?: string | undefined;
  password?: string | undefined;
  tls?: ConnectionOptions | undefined;
  connectTimeout: number;
  commandTimeout: number;
}

interface Waiting {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | undefined;
  /** Timed out: its reply, when it comes, is dropped. */
  done: boolean;
}

/** Replies with no command waiting would desynchronise the stream: the connection is dropped. */
const CLOSED = "Connection is closed.";

export class ControlConnection {
  status: ControlStatus = "wait";
  private socket: Socket | undefined;
  private readonly waiting: Waiting[] = [];
  private errorListener: ((err: Error) => void) | undefined;
  private connecting: Promise<void> | undefined;

  constructor(private readonly options: ControlOptions) {}

  /** The one listener of the connection's errors (the cause of a failed connect among them). */
  on(event: "error", listener: (err: Error) => void): this {
    if (event === "error") this.errorListener = listener;
    return this;
  }

  connect(): Promise<void> {
    if (this.connecting) return this.connecting;
    this.status = "connecting";
    const { host, port, tls, connectTimeout } = this.options;
    this.connecting = new Promise<void>((resolve, reject) => {
      const socket = tls ? connectTls({ host, port, ...tls }) : createConnection({ host, port });
      this.socket = socket;
      socket.setNoDelay(true);
      let connected = false;
      socket.setTimeout(connectTimeout, () => {
        if (connected) return;
        socket.destroy(
          Object.assign(new Error("connect ETIMEDOUT"), { code: "ETIMEDOUT", syscall: "connect" }),
        );
      });
      const scanner = new ReplyScanner((reply) => this.onReply(decodeReply(reply)));
      socket.on("data", (chunk: Buffer) => {
        try {
          scanner.feed(chunk);
        } catch (err) {
          socket.destroy(err as Error);
        }
      });
      socket.on("error", (err) => this.errorListener?.(err));
      socket.on("close", () => {
        this.status = "end";
        for (const w of this.waiting.splice(0)) this.settle(w, undefined, new Error(CLOSED));
        if (!connected) reject(new Error(CLOSED));
      });
      socket.once(tls ? "secureConnect" : "connect", () => {
        connected = true;
        socket.setTimeout(0);
        const { username, password } = this.options;
        // A round trip before the connection counts as up, as ioredis's ready check (INFO) made
        // one: a node that refuses the client's certificate says so after a TLS 1.3 handshake
        // completed on this side, and the cause must come from connect(), not from the next call.
        const first =
          password === undefined
            ? ["PING"]
            : username === undefined
              ? ["AUTH", password]
              : ["AUTH", username, password];
        this.send(first).then(
          () => this.ready(resolve),
          (err: Error) => {
            // As ioredis: a password the node does not need is no failure.
            if (/no password is set|without any password configured/.test(err.message)) {
              this.ready(resolve);
              return;
            }
            if (err.message !== CLOSED) this.errorListener?.(err);
            this.status = "end";
            socket.destroy();
            reject(err);
          },
        );
      });
    });
    return this.connecting;
  }

  private ready(resolve: () => void): void {
    if (this.status === "end") return;
    this.status = "ready";
    resolve();
  }

  /** Sends a command once connected (connecting first when the status is "wait"). */
  async call(...args: (string | number)[]): Promise<unknown> {
    if (this.status === "wait") await this.connect();
    else if (this.status === "connecting") await this.connecting;
    return this.send(args.map(String));
  }

  private send(args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.status === "end" || !this.socket) {
        reject(new Error(CLOSED));
        return;
      }
      const w: Waiting = { resolve, reject, timer: undefined, done: false };
      w.timer = setTimeout(
        () => this.settle(w, undefined, new Error("Command timed out")),
        this.options.commandTimeout,
      );
      this.waiting.push(w);
      this.socket.write(encodeCommand(args));
    });
  }

  private onReply(value: RespValue): void {
    const w = this.waiting.shift();
    if (w === undefined) {
      this.socket?.destroy(new Error("reply with no command waiting for it"));
      return;
    }
    if (value instanceof ErrorReply) this.settle(w, undefined, new Error(value.message));
    else this.settle(w, plain(value));
  }

  private settle(w: Waiting, value: unknown, err?: Error): void {
    if (w.done) return;
    w.done = true;
    clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve(value);
  }

  disconnect(): void {
    this.status = "end";
    this.socket?.destroy();
  }
}

/** A decoded reply as ioredis's `call` gave it: strings, numbers, arrays, null. */
function plain(value: RespValue): unknown {
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof SimpleString) return value.value;
  if (value instanceof ErrorReply) return new Error(value.message);
  if (value instanceof DoubleReply) return String(value.value);
  if (value instanceof RespMap) return value.entries.flatMap(([k, v]) => [plain(k), plain(v)]);
  if (value instanceof RespSet) return value.items.map(plain);
  return value;
}
