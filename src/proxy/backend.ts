/**
 * Pipelined, multiplexed connections to one shard node (or to the busy proxy, over its socket).
 *
 * Many clients' requests share each connection: requests are appended to one outgoing batch that
 * is written once per event-loop turn, and replies are matched to requests in order (Redis answers
 * a connection's commands in the order it received them). Reply bytes are handed on without
 * decoding; the router only looks at error replies, for redirects.
 */
import type { Socket } from "node:net";
import { connect as connectTls, type ConnectionOptions } from "node:tls";
import { describeTlsError } from "../tls/backend.ts";
import type { Endpoint } from "../cluster/address.ts";
import { encodeCommand } from "../resp/request-parser.ts";
import { ReplyScanner, replyBuffer, type ReplyBytes } from "../resp/reply-scanner.ts";
import { Deque } from "./deque.ts";
import { connectPlain } from "./io.ts";
import { writeBatch, type FlushScheduler, type Request, type RequestConnection } from "./request.ts";
import { CONNECT_TIMEOUT_MS, KEEPALIVE_MS } from "./upstream/limits.ts";

const ASKING = encodeCommand(["ASKING"]);
const MINUS = 45;

export interface BackendAuth {
  username?: string | undefined;
  password: string;
}

export interface BackendEvents {
  /** A reply for a client request arrived. */
  onReply(connection: BackendConnection, request: Request, reply: ReplyBytes, firstByte: number): void;
  /**
   * The connection closed. `sent` were written and not answered (they may or may not have run);
   * `unsent` never left the proxy and can go elsewhere.
   */
  onClose(connection: BackendConnection, sent: Request[], unsent: Request[], error: Error | undefined): void;
  onReady(connection: BackendConnection): void;
}

export const enum ConnectionState {
  Connecting,
  Ready,
  Closed,
}

/** What the connection is waiting for at the head of its reply stream. */
const enum Expect {
  /** A handshake reply (HELLO or AUTH) that must not be an error. */
  Handshake,
  /** The +OK of an ASKING sent ahead of a request. */
  Asking,
  Request,
}

/** Receives every frame of a connection in pipe mode (Pub/Sub): confirmations, messages, pushes. */
export type PipeHandler = (reply: ReplyBytes, firstByte: number) => void;

/**
 * A backend connection as the router, its pools and client sessions use it. The socket one is
 * below; routing tests give the router a fake (see upstream/pools.ts, `Connect`).
 */
export interface BackendConnection extends RequestConnection {
  /** The node's "host:port" (or a name for the busy proxy's socket), as the slot map spells it. */
  readonly address: string;
  readonly protocol: 2 | 3;
  readonly state: ConnectionState;
  /** Requests written and not yet answered. */
  readonly pending: number;
  pipe: PipeHandler | null;
  onClosed: (() => void) | null;
  sendRaw(frame: Buffer): void;
}

/**
 * A batch for one node this long goes out at the end of this turn, not with the next turn's
 * requests (see FlushScheduler): waiting saves at most one write per this many requests, and
 * costs a turn of latency that deep pipelines pay in throughput (GET -P16, 50 clients, bench A/B:
 * always waiting 796k rps against 869k never; 16 here 865k; -P1 gains alike either way).
 */
const BATCH_NOW = 16;

export class SocketConnection implements BackendConnection {
  state = ConnectionState.Connecting;
  /**
   * Pipe mode: frames are not matched to requests but all handed to this handler (a subscribed
   * client's connection, where one SUBSCRIBE brings many replies and messages come unasked).
   */
  pipe: PipeHandler | null = null;
  /** Called once when the connection has closed (after the router's own handling). */
  onClosed: (() => void) | null = null;
  private readonly socket: Socket;
  private readonly inflight = new Deque<Request | Expect>();
  private waiting: Request[] = [];
  private waitingRaw: Buffer[] = [];
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  private readonly scanner: ReplyScanner;
  private closeError: Error | undefined;

  /** This end of the connection as the node lists it in CLIENT LIST (`addr=`). */
  get localAddress(): string {
    return `${this.socket.localAddress}:${this.socket.localPort}`;
  }

  constructor(
    endpoint: Endpoint,
    readonly address: string,
    readonly protocol: 2 | 3,
    auth: BackendAuth | undefined,
    private readonly flusher: FlushScheduler,
    private readonly events: BackendEvents,
    /** TLS options (a shard's `tls-port`); unset: plain TCP or a unix socket. */
    tls?: ConnectionOptions,
  ) {
    this.scanner = new ReplyScanner(this.onReply);
    // Plain connections read through ./io.ts (native/io.c, or a reused buffer), each read copied
    // out, so the reply slices the scanner hands out stay valid until the clients' flushes. TLS
    // keeps stream reads (`onread` does not apply to a TLS socket).
    this.socket = tls
      ? connectTls({ ...endpoint, ...tls })
      : connectPlain({ ...endpoint, noDelay: true }, this.onData);
    if (tls) {
      this.socket.setNoDelay(true);
      this.socket.on("data", this.onData);
    }
    this.socket.setTimeout(CONNECT_TIMEOUT_MS, () =>
      this.socket.destroy(new Error(`connect timeout after ${CONNECT_TIMEOUT_MS} ms`)),
    );
    // Over TLS the connection is usable once the handshake is done, not at the TCP connect.
    this.socket.on(tls ? "secureConnect" : "connect", () => {
      this.socket.setTimeout(0);
      // A no-op on a unix socket (Node sets keepalive on TCP handles only).
      this.socket.setKeepAlive(true, KEEPALIVE_MS);
      this.state = ConnectionState.Ready;
      if (protocol === 3 || auth) {
        const hello = ["HELLO", String(protocol)];
        if (auth) hello.push("AUTH", auth.username ?? "default", auth.password);
        this.push(encodeCommand(hello), Expect.Handshake);
      }
      const waiting = this.waiting;
      this.waiting = [];
      for (const request of waiting) this.send(request);
      for (const frame of this.waitingRaw) this.sendRaw(frame);
      this.waitingRaw = [];
      this.events.onReady(this);
    });
    this.socket.on(
      "error",
      (err) =>
        (this.closeError =
          tls && this.state === ConnectionState.Connecting
            ? describeTlsError(err, address, undefined, tls.cert !== undefined)
            : err),
    );
    this.socket.on("close", () => this.onClose());
  }

  private onData = (chunk: Buffer): void => {
    try {
      this.scanner.feed(chunk);
    } catch (err) {
      this.socket.destroy(err as Error);
    }
  };

  get closed(): boolean {
    return this.state === ConnectionState.Closed;
  }

  get pending(): number {
    return this.inflight.length + this.waiting.length;
  }

  send(request: Request): void {
    if (this.state === ConnectionState.Connecting) {
      this.waiting.push(request);
      return;
    }
    if (request.collect !== null) request.collect.length = 0; // sent again after a lost connection
    if (request.askTarget !== null) this.push(ASKING, Expect.Asking);
    this.push(request.frame, request);
    // A transaction block (MULTI ... EXEC) brings one reply per command: the request waits for all.
    for (let i = 1; i < request.parts; i++) this.inflight.push(request);
  }

  /** Writes a frame whose replies go to the pipe handler (pipe mode only). */
  sendRaw(frame: Buffer): void {
    if (this.state === ConnectionState.Connecting) {
      this.waitingRaw.push(frame); // behind the handshake, which is written on connect
      return;
    }
    this.out.push(frame);
    this.outBytes += frame.length;
    this.scheduleFlush();
  }

  private push(frame: Buffer, expect: Request | Expect): void {
    this.out.push(frame);
    this.outBytes += frame.length;
    this.inflight.push(expect);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      // The next turn's requests for this node go out in the same write (see FlushScheduler).
      this.flusher.addNextTurn(this);
    } else if (this.out.length === BATCH_NOW) {
      // Queued for the next turn and now long enough: this turn's flush takes it (the next finds
      // nothing left).
      this.flusher.add(this);
    }
  }

  flush(): void {
    this.flushQueued = false;
    if (this.out.length === 0 || this.state !== ConnectionState.Ready) return;
    writeBatch(this.socket, this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
  }

  close(): void {
    this.socket.destroy();
  }

  private onReply = (reply: ReplyBytes, firstByte: number): void => {
    if (this.pipe !== null && this.inflight.peek() !== Expect.Handshake) {
      this.pipe(reply, firstByte);
      return;
    }
    // RESP3 push frames arrive unasked, between replies, and are never one (a tracked connection's
    // "tracking-redir-broken", for one): dropped, whatever is waiting.
    if (firstByte === 62) return;
    const head = this.inflight.shift();
    if (head === undefined) {
      this.socket.destroy(new Error("reply with no request waiting for it"));
      return;
    }
    if (head === Expect.Handshake || head === Expect.Asking) {
      if (firstByte === MINUS) {
        const text = replyBuffer(reply).toString("utf8").trim();
        this.socket.destroy(
          new Error(`${head === Expect.Handshake ? "handshake" : "ASKING"} failed: ${text}`),
        );
      }
      return;
    }
    const request = head as Request;
    if (request.collect !== null) {
      request.collect.push(reply);
      if (this.inflight.peek() === request) return;
    } else if (this.inflight.peek() === request) {
      // A queued part of a transaction: +QUEUED, or the error that will make EXEC abort.
      if (firstByte === MINUS && request.partError === null) request.partError = replyBuffer(reply);
      return;
    }
    this.events.onReply(this, request, reply, firstByte);
  };

  private onClose(): void {
    if (this.state === ConnectionState.Closed) return;
    this.state = ConnectionState.Closed;
    const sent: Request[] = [];
    for (const item of this.inflight.drain())
      if (typeof item !== "number" && sent.at(-1) !== item) sent.push(item);
    // Requests batched for this turn but not written never reached the server.
    const unsentCount = this.out.length > 0 ? countUnsent(sent, this.out) : 0;
    const unsent = [...sent.splice(sent.length - unsentCount, unsentCount), ...this.waiting];
    this.waiting = [];
    this.out = [];
    this.events.onClose(this, sent, unsent, this.closeError);
    this.onClosed?.();
  }
}

/** How many of the last requests in `sent` are still in the unwritten batch `out`. */
function countUnsent(sent: Request[], out: Buffer[]): number {
  const frames = new Set(out);
  let n = 0;
  for (let i = sent.length - 1; i >= 0 && frames.has(sent[i]!.frame); i--) n++;
  return n;
}
