/**
 * One connection from a worker to the busy proxy. A worker multiplexes many clients' commands on
 * it, pipelined: commands run concurrently (each fans out to the shards), and replies go back
 * strictly in the order the commands came, however the parts finish.
 */
import type { Socket } from "node:net";
import { ProxyErrors, RedisErrors } from "../../errors.ts";
import {
  encodeReply,
  ErrorReply,
  errorReply,
  SimpleString,
  type Protocol,
  type ReplyValue,
} from "../../resp/encode.ts";
import { RequestParser, type RequestParserLimits } from "../../resp/request-parser.ts";
import { arityOk, type CommandTable } from "../commands.ts";
import { CommandView } from "../command-view.ts";
import type { FlushScheduler } from "../io.ts";
import { OrderedReplies, type ReplySlot, type ReplyWriterOwner } from "../ordered-replies.ts";
import type { ClusterRouter } from "../router.ts";
import { BUSY_COMMANDS, INTERNAL_COMMANDS } from "./commands.ts";
import { helloReply, parseHello } from "../hello.ts";
import { EMULATED_BUSY_COMMANDS } from "./emulate.ts";
import { FanOut } from "./fan-out.ts";
import { SlotGrouper, splitCommand } from "./key-split.ts";
import { parseDatabase, routerInDatabase } from "../databases.ts";

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
class Pending implements ReplySlot {
  done = false;
  reply: Buffer | null = null;
}

export class BusyConnection implements ReplyWriterOwner<Pending> {
  private protocol: Protocol = 2;
  private readonly replies: OrderedReplies<Pending>;
  private readonly parser: RequestParser;
  /** Runs this connection's parts in the database it selected (../databases.ts). */
  private fanOut: FanOut;
  private readonly grouper = new SlotGrouper();
  /** The command being run, for the handlers that read it in place (HELLO). */
  private readonly view = new CommandView();

  constructor(
    private readonly socket: Socket,
    private readonly context: BusyServerContext,
    readonly id: number,
  ) {
    // Replies go out as soon as they are due: no waiting a turn for more (deferMaxBytes 0).
    this.replies = new OrderedReplies<Pending>(socket, context.flusher, this, 0);
    this.fanOut = new FanOut(context.router, id);
    this.parser = new RequestParser(context.limits, this.onCommand, this.onProtocolError);
    socket.on("data", (chunk: Buffer) => this.parser.feed(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.replies.socketClosed();
      context.closed(this);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onCommand = (buf: Buffer, start: number, end: number, argc: number, args: Int32Array): void => {
    if (!this.replies.open) return;
    const split = splitCommand(buf, args[0]!, args[1]!, argc);
    if (split !== null) {
      const pending = this.enqueue();
      this.grouper.run(split, buf, argc, args, this.fanOut.router, this.id, this.protocol, (reply) =>
        this.settle(pending, reply),
      );
      return;
    }
    // Subarrays are safe to keep: the parser never writes into a buffer it handed out.
    const argv: Buffer[] = [];
    for (let i = 0; i < argc; i++) argv.push(buf.subarray(args[i * 2], args[i * 2 + 1]));
    const pending = this.enqueue();
    // The protocol a reply is encoded in is the one in force when its command came.
    const protocol = this.protocol;
    const result = this.execute(argv, this.view.set(buf, start, end, argc, args));
    if (!(result instanceof Promise)) return this.settle(pending, encodeReply(result, protocol));
    result.then(
      (value) => this.settle(pending, encodeReply(value, protocol)),
      (err: unknown) => this.settle(pending, errorReply(ProxyErrors.busyFailed((err as Error).message))),
    );
  };

  private enqueue(): Pending {
    const pending = new Pending();
    this.replies.queue.push(pending);
    if (this.replies.queue.length > MAX_INFLIGHT_COMMANDS && !this.replies.readPaused)
      this.replies.pauseReading();
    return pending;
  }

  /** PING and HELLO are answered at once (HELLO must switch the protocol before the next command). */
  private execute(argv: Buffer[], view: CommandView): ReplyValue | Promise<ReplyValue> {
    const name = argv[0]!.toString("latin1").toLowerCase();
    if (name === "ping") return argv.length === 1 ? PONG : argv.length === 2 ? argv[1]! : wrongArity("ping");
    if (name === "hello") return this.hello(view);
    if (name === "select") return this.select(argv);
    let spec = this.context.commands.get(name);
    if (spec?.subcommands !== undefined && argv.length > 1) {
      spec = spec.subcommands.get(argv[1]!.toString("latin1").toLowerCase());
    }
    const command = spec?.name ?? name;
    const handler = BUSY_COMMANDS.get(command) ?? EMULATED_BUSY_COMMANDS.get(command);
    if (handler === undefined || (spec === undefined && !INTERNAL_COMMANDS.has(name))) {
      return new ErrorReply(ProxyErrors.notForBusyProxy(name));
    }
    if (spec !== undefined && !arityOk(spec, argv.length)) return wrongArity(spec.name);
    return handler(argv, {
      fanOut: this.fanOut,
      protocol: this.protocol,
      serverVersion: this.context.router.serverVersion,
      serverEngine: this.context.router.serverEngine,
    });
  }

  /**
   * HELLO [2|3] [AUTH user pass] [SETNAME name]. AUTH is accepted without a check: workers send it
   * when the shards need credentials, and the busy proxy's trust boundary is its local socket.
   */
  private hello(view: CommandView): ReplyValue {
    const hello = parseHello(view);
    if (typeof hello === "string") return new ErrorReply(hello);
    if (hello.protocol !== null) this.protocol = hello.protocol;
    return helloReply(this.context.router, this.protocol, this.id);
  }

  /** SELECT, sent first by a worker's link for another database: its parts run there. */
  private select(argv: Buffer[]): ReplyValue {
    const db = argv.length === 2 ? parseDatabase(argv[1]!) : null;
    if (db === null) return new ErrorReply(RedisErrors.notInteger);
    this.fanOut = new FanOut(routerInDatabase(this.context.router, db), this.id);
    return OK_REPLY;
  }

  private settle(pending: Pending, reply: Buffer): void {
    pending.reply = reply;
    pending.done = true;
    if (this.replies.closed) return;
    this.replies.release(pending);
    if (this.replies.readPaused && this.replies.queue.length <= MAX_INFLIGHT_COMMANDS / 2)
      this.replies.resumeReading();
  }

  released(): void {}

  checkBackpressure(): void {}

  overHardLimit(): void {}

  private onProtocolError = (message: string): void => {
    this.settle(this.enqueue(), errorReply(message));
    this.replies.closeAfterReply();
  };
}

const PONG = new SimpleString("PONG");
const OK_REPLY = new SimpleString("OK");

function wrongArity(name: string): ErrorReply {
  return new ErrorReply(RedisErrors.wrongArity(name));
}
