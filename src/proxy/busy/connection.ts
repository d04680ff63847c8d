/**
 * One connection from a worker to the busy proxy. A worker multiplexes many clients' commands on
 * it, pipelined: commands run concurrently (each fans out to the shards), and replies go back
 * strictly in the order the commands came, however the parts finish.
 */
import type { Socket } from "node:net";
import { RedisErrors } from "../../errors.ts";
import {
  encodeReply,
  ErrorReply,
  errorReply,
  SimpleString,
  type Protocol,
  type ReplyValue,
} from "../../resp/encode.ts";
import { parseInteger, RequestParser, type RequestParserLimits } from "../../resp/request-parser.ts";
import { arityOk, type CommandTable } from "../commands.ts";
import { Deque } from "../deque.ts";
import { writeBatch, type FlushScheduler } from "../request.ts";
import type { ClusterRouter } from "../router.ts";
import { BUSY_COMMANDS, INTERNAL_COMMANDS } from "./commands.ts";
import { helloReply } from "../hello.ts";
import { FanOut } from "./fan-out.ts";
import { SlotGrouper, splitCommand } from "./key-split.ts";

/** What every connection of one busy proxy shares. */
export interface BusyServerContext {
  router: ClusterRouter;
  commands: CommandTable;
  flusher: FlushScheduler;
  limits: RequestParserLimits;
  closed(connection: BusyConnection): void;
}

/**
 * Commands in flight on one connection before it stops reading (resumes at half). The worker
 * bounds each client's in-flight bytes; this bounds the sum over all clients of one worker.
 */
export const MAX_INFLIGHT_COMMANDS = 10_000;

/** A command's place in the reply order; `reply` is set once its reply is encoded. */
interface Pending {
  reply: Buffer | null;
}

const enum State {
  Open,
  /** After a protocol error: replies still due go out, then the connection closes. */
  Closing,
  Closed,
}

export class BusyConnection {
  private protocol: Protocol = 2;
  private state = State.Open;
  private readonly queue = new Deque<Pending>();
  private readonly parser: RequestParser;
  private readonly fanOut: FanOut;
  private readonly grouper = new SlotGrouper();
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  private paused = false;

  constructor(
    private readonly socket: Socket,
    private readonly context: BusyServerContext,
    readonly id: number,
  ) {
    this.fanOut = new FanOut(context.router, id);
    this.parser = new RequestParser(context.limits, this.onCommand, this.onProtocolError);
    socket.on("data", (chunk: Buffer) => this.parser.feed(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.state = State.Closed;
      this.out = [];
      context.closed(this);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onCommand = (buf: Buffer, _start: number, _end: number, argc: number, args: Int32Array): void => {
    if (this.state !== State.Open) return;
    const split = splitCommand(buf, args[0]!, args[1]!, argc);
    if (split !== null) {
      const pending: Pending = { reply: null };
      this.enqueue(pending);
      this.grouper.run(split, buf, argc, args, this.context.router, this.id, this.protocol, (reply) =>
        this.settle(pending, reply),
      );
      return;
    }
    // Subarrays are safe to keep: the parser never writes into a buffer it handed out.
    const argv: Buffer[] = [];
    for (let i = 0; i < argc; i++) argv.push(buf.subarray(args[i * 2], args[i * 2 + 1]));
    const pending: Pending = { reply: null };
    this.enqueue(pending);
    // The protocol a reply is encoded in is the one in force when its command came.
    const protocol = this.protocol;
    const result = this.execute(argv);
    if (!(result instanceof Promise)) return this.settle(pending, encodeReply(result, protocol));
    result.then(
      (value) => this.settle(pending, encodeReply(value, protocol)),
      (err: unknown) =>
        this.settle(
          pending,
          errorReply(`ERR busy proxy failed to run the command: ${(err as Error).message}`),
        ),
    );
  };

  private enqueue(pending: Pending): void {
    this.queue.push(pending);
    if (this.queue.length > MAX_INFLIGHT_COMMANDS && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** PING and HELLO are answered at once (HELLO must switch the protocol before the next command). */
  private execute(argv: Buffer[]): ReplyValue | Promise<ReplyValue> {
    const name = argv[0]!.toString("latin1").toLowerCase();
    if (name === "ping") return argv.length === 1 ? PONG : argv.length === 2 ? argv[1]! : wrongArity("ping");
    if (name === "hello") return this.hello(argv);
    let spec = this.context.commands.get(name);
    if (spec?.subcommands !== undefined && argv.length > 1) {
      spec = spec.subcommands.get(argv[1]!.toString("latin1").toLowerCase());
    }
    const handler = BUSY_COMMANDS.get(spec?.name ?? name);
    if (handler === undefined || (spec === undefined && !INTERNAL_COMMANDS.has(name))) {
      return new ErrorReply(
        `ERR the busy proxy runs only multi-key commands split across slots and cluster-wide commands, not '${truncate(name)}'`,
      );
    }
    if (spec !== undefined && !arityOk(spec, argv.length)) return wrongArity(spec.name);
    return handler(argv, { fanOut: this.fanOut, protocol: this.protocol });
  }

  /**
   * HELLO [2|3] [AUTH user pass] [SETNAME name]. AUTH is accepted without a check: workers send it
   * when the shards need credentials, and the busy proxy's trust boundary is its local socket.
   */
  private hello(argv: Buffer[]): ReplyValue {
    let protocol = this.protocol;
    let next = 1;
    if (argv.length > 1) {
      const version = parseInteger(argv[1]!, 0, argv[1]!.length);
      if (version === null) return new ErrorReply("ERR Protocol version is not an integer or out of range");
      if (version < 2 || version > 3) return new ErrorReply(RedisErrors.noProto);
      protocol = version as Protocol;
      next = 2;
    }
    for (let i = next; i < argv.length; i++) {
      const option = argv[i]!.toString("latin1").toLowerCase();
      if (option === "auth" && i + 2 < argv.length) i += 2;
      else if (option === "setname" && i + 1 < argv.length) i += 1;
      else return new ErrorReply(`ERR Syntax error in HELLO option '${argv[i]!.toString("latin1")}'`);
    }
    this.protocol = protocol;
    return helloReply(this.context.router.serverVersion, protocol, this.id);
  }

  private settle(pending: Pending, reply: Buffer): void {
    pending.reply = reply;
    if (this.state === State.Closed) return;
    for (let head = this.queue.peek(); head !== undefined && head.reply !== null; head = this.queue.peek()) {
      this.queue.shift();
      this.out.push(head.reply);
      this.outBytes += head.reply.length;
    }
    if (this.paused && this.queue.length <= MAX_INFLIGHT_COMMANDS / 2) {
      this.paused = false;
      this.socket.resume();
    }
    if (!this.flushQueued && this.out.length > 0) {
      this.flushQueued = true;
      this.context.flusher.add(this);
    }
  }

  flush(): void {
    this.flushQueued = false;
    if (this.state === State.Closed) return;
    if (this.out.length > 0) writeBatch(this.socket, this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (this.state === State.Closing && this.queue.length === 0) this.socket.end();
  }

  private onProtocolError = (message: string): void => {
    const pending: Pending = { reply: null };
    this.queue.push(pending);
    this.settle(pending, errorReply(message));
    this.state = State.Closing;
    this.socket.pause();
  };
}

const PONG = new SimpleString("PONG");

function wrongArity(name: string): ErrorReply {
  return new ErrorReply(RedisErrors.wrongArity(name));
}

function truncate(s: string): string {
  return s.length > 128 ? s.slice(0, 128) : s;
}
