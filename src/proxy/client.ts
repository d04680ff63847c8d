/**
 * One client connection: parses its requests, routes or answers each, and writes the replies
 * back in the order the client sent the requests, however the shards interleave them.
 */
import type { Socket } from "node:net";
import { timingSafeEqual } from "node:crypto";
import { RedisErrors, unknownCommand } from "../errors.ts";
import {
  encodeReply,
  errorReply,
  bulkReply,
  integerReply,
  SimpleString,
  OK,
  PONG,
  type Protocol,
} from "../resp/encode.ts";
import { RequestParser, encodeCommand, parseInteger } from "../resp/request-parser.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { keySlot } from "../cluster/key-slot.ts";
import { arityOk, Mode, movableKeyIndexes, type CommandSpec } from "./commands.ts";
import { Deque } from "./deque.ts";
import { Request, RequestKind, writeBatch, type ReplySink } from "./request.ts";
import type { BusyLink } from "./busy-link.ts";
import { Transaction } from "./transaction.ts";
import { helloReply } from "./hello.ts";
import { Subscriptions, PUBSUB_OUTPUT_LIMIT } from "./pubsub.ts";
import { ConnectionState, type BackendConnection } from "./backend.ts";
import { SHARD_INFO, type ProxyContext } from "./context.ts";

/** Output worth writing at once rather than waiting a turn for more replies. */
const DEFER_MAX_BYTES = 16 * 1024;
const enum State {
  Open,
  /** Replies still go out, then the connection closes (QUIT, protocol error). */
  ClosingAfterReply,
  Closed,
}

const CROSSSLOT = errorReply(RedisErrors.crossSlot);
const QUEUED_REPLY = Buffer.from("+QUEUED\r\n");
/** Unwritten reply bytes past which each new reply re-checks the client's limits. */
const OUTPUT_CHECK_BYTES = 1024 * 1024;
const EXECABORT = errorReply("EXECABORT Transaction discarded because of previous errors.");
const UNWATCH = encodeCommand(["UNWATCH"]);
/** Handled even inside MULTI rather than queued, as Redis does. */
const TRANSACTION_CONTROL = new Set(["exec", "discard", "multi", "watch", "quit", "reset"]);
/** What a RESP2 client may send while subscribed (Redis enforces the rest on the pipe). */
const SUBSCRIBED_ALLOWED = new Set([
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
  "ping",
  "quit",
  "reset",
]);
/** Marks a request whose keys span slots: it goes to the busy proxy, or gets CROSSSLOT. */
const SPANS_SLOTS = -2;
const RESET = Buffer.from("+RESET\r\n");

export class ClientSession implements ReplySink {
  readonly id: number;
  readonly createdAt = Date.now();
  lastActivity = Date.now();
  name: string | null = null;
  libName = "";
  libVersion = "";
  protocol: Protocol = 2;
  private authenticated: boolean;
  private state = State.Open;
  private readonly parser: RequestParser;
  private readonly queue = new Deque<Request>();
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  /** Request bytes sent to shards and not yet answered, for backpressure. */
  private inflightBytes = 0;
  /** The pending flush already waited one turn for more replies. */
  private deferred = false;
  private readPaused = false;
  /** MULTI was sent: commands are queued until EXEC or DISCARD. */
  private transaction: Transaction | null = null;
  /** WATCH was sent: the watched keys' slot (the watch itself lives on `ownConnection`). */
  private watch: { connection: BackendConnection; slot: number } | null = null;
  /** A connection of this client's own, for WATCHed transactions; kept for the next one. */
  private own: BackendConnection | null = null;
  private subscriptions: Subscriptions | null = null;
  /** Pub/Sub frames held until the replies due before them are written (RESP2 ordering). */
  private heldFrames: ReplyBytes[] = [];
  /** Requests not yet sent because they must not overtake earlier ones (see `forward`), in order. */
  private held: Request[] = [];
  /** Sent and not yet answered, by path: to the shards directly, or through the busy proxy. */
  private routedInFlight = 0;
  private busyInFlight = 0;

  constructor(
    private readonly socket: Socket,
    private readonly context: ProxyContext,
  ) {
    this.id = context.nextClientId();
    this.authenticated = context.config.clientPassword === undefined;
    this.parser = new RequestParser(context.config.limits, this.onCommand, this.onProtocolError);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      this.lastActivity = Date.now();
      this.parser.feed(chunk);
      this.checkBackpressure();
    });
    socket.on("drain", () => this.checkBackpressure());
    socket.on("error", () => {});
    socket.on("close", () => this.onClose());
    const idle = context.config.limits.idleTimeoutSeconds;
    if (idle > 0) socket.setTimeout(idle * 1000, () => socket.destroy());
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  get localAddress(): string {
    return `${this.socket.localAddress}:${this.socket.localPort}`;
  }

  /** Stops taking commands; closes once the replies still due are written (draining). */
  closeWhenIdle(): void {
    if (this.state === State.Open) this.closeAfterReply();
  }

  /** Closes the connection at once (shutdown, CLIENT KILL). */
  destroy(): void {
    this.socket.destroy();
  }

  private onCommand = (
    buf: Buffer,
    frameStart: number,
    frameEnd: number,
    argc: number,
    args: Int32Array,
  ): void => {
    if (this.state !== State.Open) return;
    this.context.stats.commands++;
    const table = this.context.commands;
    let spec = table.lookup(buf, args[0]!, args[1]!);
    if (spec === undefined) {
      return this.reject(
        errorReply(
          unknownCommand(buf.toString("latin1", args[0], args[1]), argStrings(buf, args, 1, argc)),
          "latin1",
        ),
      );
    }
    if (!this.authenticated && spec.name !== "auth" && spec.name !== "hello" && spec.name !== "quit") {
      return this.reject(errorReply(RedisErrors.noAuth));
    }
    if (!arityOk(spec, argc)) return this.reject(errorReply(RedisErrors.wrongArity(spec.name)));
    if (spec.subcommands !== undefined) {
      const sub = buf.toString("latin1", args[2], args[3]);
      const subSpec = spec.subcommands.get(sub.toLowerCase());
      if (subSpec === undefined)
        return this.reject(errorReply(RedisErrors.unknownSubcommand(sub, spec.name)));
      if (!arityOk(subSpec, argc)) return this.reject(errorReply(RedisErrors.wrongArity(subSpec.name)));
      spec = subSpec;
    }
    if (this.protocol === 2 && this.subscriptions?.active && !SUBSCRIBED_ALLOWED.has(spec.name)) {
      return this.reply(
        errorReply(
          `ERR Can't execute '${spec.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
        ),
      );
    }
    if (this.transaction !== null && !TRANSACTION_CONTROL.has(spec.name)) {
      return this.queueInTransaction(this.transaction, spec, buf, frameStart, frameEnd, argc, args);
    }
    if (spec.name === "ping" && this.subscriptions?.active && this.protocol === 2) {
      // A subscribed RESP2 client's PING is answered by Redis in the subscriber format.
      return this.subscriptionConnection(spec.name, -1).sendRaw(buf.subarray(frameStart, frameEnd));
    }
    switch (spec.mode) {
      case Mode.Keyed:
        this.routeKeyed(spec, buf, frameStart, frameEnd, argc, args);
        return;
      case Mode.AnyShard:
        this.forward(buf.subarray(frameStart, frameEnd), -1, spec.readonly);
        return;
      case Mode.Local:
        this.answerLocally(spec.name, buf, argc, args);
        return;
      case Mode.Session:
        this.session(spec, buf, frameStart, frameEnd, argc, args);
        return;
      case Mode.Broadcast:
        // Cluster-wide (SCAN, DBSIZE, SCRIPT LOAD...): the busy proxy runs it on every master.
        if (this.context.busyProxy === undefined) this.reply(needsBusyProxy(spec));
        else this.forward(buf.subarray(frameStart, frameEnd), -1, spec.readonly, this.context.busyProxy);
        return;
      case Mode.Denied:
        this.reply(refusal(spec));
        return;
      case Mode.Unsupported:
        this.reply(refusal(spec));
        return;
    }
  };

  /** An error that also dooms an open transaction, as Redis flags it. */
  private reject(reply: Buffer): void {
    if (this.transaction !== null) this.transaction.aborted = true;
    this.reply(reply);
  }

  private queueInTransaction(
    transaction: Transaction,
    spec: CommandSpec,
    buf: Buffer,
    frameStart: number,
    frameEnd: number,
    argc: number,
    args: Int32Array,
  ): void {
    let slot = -1;
    switch (spec.mode) {
      case Mode.Keyed:
        slot = this.slotOf(spec, buf, argc, args);
        if (slot === SPANS_SLOTS) return this.reject(CROSSSLOT);
        break;
      case Mode.AnyShard:
        break;
      case Mode.Local:
        if (spec.name === "ping" || spec.name === "echo") break;
        return this.reject(
          errorReply(`ERR command '${spec.name}' is not allowed inside MULTI through this proxy`),
        );
      case Mode.Session:
        return this.reject(errorReply(`ERR command '${spec.name}' is not allowed inside MULTI`));
      case Mode.Broadcast:
        return this.reject(
          errorReply(`ERR command '${spec.name}' runs on every shard and is not allowed inside MULTI`),
        );
      case Mode.Denied:
      case Mode.Unsupported:
        return this.reject(refusal(spec));
    }
    if (!transaction.add(buf.subarray(frameStart, frameEnd), slot)) return this.reject(CROSSSLOT);
    this.reply(QUEUED_REPLY);
  }

  /** MULTI, EXEC, DISCARD, WATCH, UNWATCH and the (un)subscribe family. */
  private session(
    spec: CommandSpec,
    buf: Buffer,
    frameStart: number,
    frameEnd: number,
    argc: number,
    args: Int32Array,
  ): void {
    const frame = buf.subarray(frameStart, frameEnd);
    switch (spec.name) {
      case "multi":
        if (this.transaction !== null) return this.reply(errorReply("ERR MULTI calls can not be nested"));
        this.transaction = new Transaction();
        // Keys queued later must live with the watched ones: the watch holds on one node.
        if (this.watch !== null) this.transaction.slot = this.watch.slot;
        return this.reply(OK);
      case "exec": {
        const transaction = this.transaction;
        if (transaction === null) return this.reply(errorReply("ERR EXEC without MULTI"));
        this.transaction = null;
        const watch = this.watch;
        this.watch = null; // EXEC ends the watch on the node, whatever the outcome
        if (transaction.aborted) {
          if (watch !== null) this.unwatchOn(watch.connection);
          return this.reply(EXECABORT);
        }
        const { frame: block, parts } = transaction.block();
        const request = this.newRequest(block, transaction.slot, false);
        request.parts = parts;
        request.pinned = watch?.connection ?? null;
        return this.send(request);
      }
      case "discard":
        if (this.transaction === null) return this.reply(errorReply("ERR DISCARD without MULTI"));
        this.transaction = null;
        if (this.watch !== null) {
          this.unwatchOn(this.watch.connection);
          this.watch = null;
        }
        return this.reply(OK);
      case "watch": {
        if (this.transaction !== null) return this.reply(errorReply("ERR WATCH inside MULTI is not allowed"));
        const slot = this.slotOf(spec, buf, argc, args);
        if (slot === SPANS_SLOTS || (this.watch !== null && this.watch.slot !== slot))
          return this.reply(CROSSSLOT);
        if (this.watch === null) {
          const address = this.context.router.masterFor(slot);
          if (address === undefined)
            return this.reply(errorReply(`CLUSTERDOWN no master serves slot ${slot}`));
          this.watch = { connection: this.ownConnection(address), slot };
        }
        const request = this.newRequest(frame, slot, false);
        request.pinned = this.watch.connection;
        return this.send(request);
      }
      case "unwatch": {
        if (this.watch === null) return this.reply(OK);
        const request = this.newRequest(frame, this.watch.slot, false);
        request.pinned = this.watch.connection;
        this.watch = null;
        return this.send(request);
      }
      case "ssubscribe":
      case "sunsubscribe": {
        // Shard channels live in the slot of their name; all of one command's must share it.
        let slot = -1;
        for (let i = 1; i < argc; i++) {
          const s = keySlot(buf, args[i * 2]!, args[i * 2 + 1]!);
          if (slot >= 0 && s !== slot) return this.reply(CROSSSLOT);
          slot = s;
        }
        if (
          spec.name === "sunsubscribe" &&
          slot < 0 &&
          this.subscriptions &&
          this.subscriptions.shard.size > 0
        ) {
          for (const connection of this.subscriptions.shard.values()) connection.sendRaw(frame);
          return;
        }
        return this.subscriptionConnection(spec.name, slot).sendRaw(frame);
      }
      default:
        // subscribe, psubscribe, unsubscribe, punsubscribe: any master hears every PUBLISH.
        return this.subscriptionConnection(spec.name, -1).sendRaw(frame);
    }
  }

  /** This client's own connection to a node, for a WATCH (reused while it points at the same node). */
  private ownConnection(address: string): BackendConnection {
    const own = this.own;
    if (
      own !== null &&
      own.address === address &&
      own.protocol === this.protocol &&
      own.state !== ConnectionState.Closed
    )
      return own;
    own?.close();
    return (this.own = this.context.router.openSessionConnection(address, this.protocol));
  }

  /** Ends a watch on its node without an EXEC (DISCARD, or a doomed transaction); the reply is not the client's. */
  private unwatchOn(connection: BackendConnection): void {
    const request = new Request(null);
    request.frame = UNWATCH;
    request.pinned = connection;
    this.context.router.dispatch(request);
  }

  /** The pipe-mode connection for a subscription command: shard channels by slot, others to any master. */
  private subscriptionConnection(name: string, slot: number): BackendConnection {
    const subscriptions = (this.subscriptions ??= new Subscriptions());
    const sharded = name === "ssubscribe" || name === "sunsubscribe";
    const address = this.context.router.masterFor(slot, this.id);
    if (!sharded && subscriptions.classic !== null) return subscriptions.classic;
    if (sharded && address !== undefined && subscriptions.shard.has(address))
      return subscriptions.shard.get(address)!;
    const connection = this.context.router.openSessionConnection(
      address ?? this.context.config.seeds[0]!,
      this.protocol,
    );
    connection.pipe = (reply) => this.onSubscriptionFrame(connection, reply);
    // Losing a subscription connection must not go unnoticed: the client reconnects and resubscribes.
    connection.onClosed = () => connection.pipe !== null && this.destroy();
    if (sharded) subscriptions.shard.set(connection.address, connection);
    else subscriptions.classic = connection;
    return connection;
  }

  private onSubscriptionFrame(connection: BackendConnection, reply: ReplyBytes): void {
    this.subscriptions?.observe(connection, reply);
    // RESP3 pushes are out of band; RESP2 frames wait for the replies due before them.
    if (this.protocol === 3 || this.queue.length === 0) this.emit(reply);
    else this.heldFrames.push(reply);
  }

  private routeKeyed(
    spec: CommandSpec,
    buf: Buffer,
    frameStart: number,
    frameEnd: number,
    argc: number,
    args: Int32Array,
  ): void {
    const slot = this.slotOf(spec, buf, argc, args);
    const frame = buf.subarray(frameStart, frameEnd);
    if (slot !== SPANS_SLOTS) {
      const request = this.newRequest(frame, slot, spec.readonly);
      // A blocking command waits on a connection of its own, never in a shared pipeline.
      request.dedicated = spec.blocking && (!spec.movableKeys || blocksForReal(spec, buf, argc, args));
      this.send(request);
    } else if (spec.splittable && this.context.busyProxy !== undefined) {
      // Keys on several slots: the busy proxy splits, fans out and merges, off this worker's path.
      this.forward(frame, -1, spec.readonly, this.context.busyProxy);
    } else {
      this.reply(CROSSSLOT);
    }
  }

  /** Slot of a command's keys: -1 when it has none, SPANS_SLOTS when they hash to different slots. */
  private slotOf(spec: CommandSpec, buf: Buffer, argc: number, args: Int32Array): number {
    let slot = -1;
    if (spec.movableKeys) {
      for (const index of movableKeyIndexes(spec.name, argBuffers(buf, args, argc))) {
        const s = keySlot(buf, args[index * 2]!, args[index * 2 + 1]!);
        if (slot < 0) slot = s;
        else if (s !== slot) return SPANS_SLOTS;
      }
      return slot;
    }
    const last = spec.keyStop < 0 ? argc + spec.keyStop : Math.min(spec.keyStop, argc - 1);
    for (let i = spec.keyStart; i <= last; i += spec.step) {
      const s = keySlot(buf, args[i * 2]!, args[i * 2 + 1]!);
      if (slot < 0) slot = s;
      else if (s !== slot) return SPANS_SLOTS;
    }
    return slot;
  }

  private forward(frame: Buffer, slot: number, readonly: boolean, busyProxy?: BusyLink): void {
    const request = this.newRequest(frame, slot, readonly);
    if (busyProxy !== undefined) request.kind = RequestKind.Busy;
    this.send(request);
  }

  private newRequest(frame: Buffer, slot: number, readonly: boolean): Request {
    const request = new Request(this);
    request.frame = frame;
    request.slot = slot;
    request.readonly = readonly;
    request.protocol = this.protocol;
    request.affinity = this.id;
    return request;
  }

  /** Queues the request for its reply slot (keeping the client's order) and sends it on its way. */
  private send(request: Request): void {
    this.queue.push(request);
    this.inflightBytes += request.frame.length;
    if (this.queue.length >= this.context.config.limits.maxInflightPerClient) this.checkBackpressure();
    // The busy proxy reaches the shards over its own connections, so nothing orders its requests
    // against this client's routed ones: a request never overtakes one sent the other way. It waits
    // until those are answered, so a pipeline reads its own writes as on Redis. (Requests one way
    // keep their order by themselves: one connection per shard, or to the busy proxy, per client.)
    if (this.held.length > 0 || !this.mayOvertake(request)) {
      this.held.push(request);
      return;
    }
    this.dispatch(request);
  }

  private mayOvertake(request: Request): boolean {
    return request.kind !== RequestKind.Busy ? this.busyInFlight === 0 : this.routedInFlight === 0;
  }

  private dispatch(request: Request): void {
    if (request.kind !== RequestKind.Busy) {
      this.routedInFlight++;
      this.context.router.dispatch(request);
    } else {
      this.busyInFlight++;
      this.context.busyProxy!.send(request);
    }
  }

  /** Sends held requests that may go now (called as replies come in). */
  private releaseHeld(): void {
    while (this.held.length > 0 && this.mayOvertake(this.held[0]!)) this.dispatch(this.held.shift()!);
  }

  /** Queues a reply the proxy made itself, behind any replies still due. */
  private reply(reply: Buffer): void {
    if (this.queue.length === 0) {
      this.emit(reply);
      return;
    }
    const request = new Request(this);
    request.reply = reply;
    request.done = true;
    this.queue.push(request);
  }

  complete(request: Request, reply: ReplyBytes): void {
    request.reply = reply;
    request.done = true;
    if (request.kind !== RequestKind.Busy) this.routedInFlight--;
    else this.busyInFlight--;
    if (this.state === State.Closed) return;
    if (this.held.length > 0) this.releaseHeld();
    if (this.queue.peek() !== request) return; // an earlier request is still due: keep order
    for (let head = this.queue.peek(); head !== undefined && head.done; head = this.queue.peek()) {
      this.queue.shift();
      this.inflightBytes -= head.frame.length;
      this.emit(head.reply!);
    }
    if (this.queue.length === 0 && this.heldFrames.length > 0) {
      const held = this.heldFrames;
      this.heldFrames = [];
      for (const frame of held) this.emit(frame);
    }
    if (this.readPaused) this.checkBackpressure();
  }

  private emit(reply: ReplyBytes): void {
    if (Buffer.isBuffer(reply)) {
      this.out.push(reply);
      this.outBytes += reply.length;
    } else {
      for (const piece of reply) {
        this.out.push(piece);
        this.outBytes += piece.length;
      }
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      this.context.flusher.add(this);
    }
    if (this.outBytes > OUTPUT_CHECK_BYTES) this.checkBackpressure();
    // A subscriber that does not keep up is dropped, as Redis's pubsub output buffer limit does.
    if (this.subscriptions?.active && this.socket.writableLength + this.outBytes > PUBSUB_OUTPUT_LIMIT) {
      this.context.log.warn({ client: this.id }, "subscriber over its output buffer limit; closing it");
      this.destroy();
    }
  }

  flush(): void {
    this.flushQueued = false;
    if (this.state === State.Closed || this.out.length === 0) return;
    // Replies still due (a pipeline spread over several shards, whose replies arrive in successive
    // turns) may wait one turn to share this write: measured at pipeline 16 over three shards,
    // writes per request fell from 0.107-0.116 to 0.088-0.113 and throughput rose 2-10%. One
    // turn at most, so a reply never waits behind a slow or blocking command.
    if (this.queue.length > 0 && !this.deferred && this.outBytes < DEFER_MAX_BYTES) {
      this.deferred = true;
      this.flushQueued = true;
      this.context.flusher.add(this);
      return;
    }
    this.deferred = false;
    writeBatch(this.socket, this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (this.socket.writableLength > OUTPUT_CHECK_BYTES) this.checkBackpressure();
    if (this.state === State.ClosingAfterReply && this.queue.length === 0) this.socket.end();
  }

  /**
   * Backpressure. A client with too much in flight (commands or request bytes) or too many unread
   * reply bytes stops being served new commands: its parser pauses after the current command (one
   * read can hold thousands) and its socket stops reading. Both resume below half the limits. A
   * client whose unread replies pass the hard limit is disconnected, as Redis's
   * client-output-buffer-limit does.
   */
  private checkBackpressure(): void {
    if (this.state === State.Closed) return;
    const limits = this.context.config.limits;
    const unread = this.socket.writableLength + this.outBytes;
    if (unread > limits.maxOutputBytesPerClient) {
      this.context.log.warn({ client: this.id, unread }, "client over its output buffer limit; closing it");
      this.destroy();
      return;
    }
    const bytes = this.inflightBytes + unread + this.parser.bufferedBytes;
    if (!this.readPaused) {
      if (bytes > limits.maxPendingBytesPerClient || this.queue.length >= limits.maxInflightPerClient) {
        this.readPaused = true;
        this.parser.pause();
        this.socket.pause();
      }
    } else if (
      bytes <= limits.maxPendingBytesPerClient / 2 &&
      this.queue.length <= limits.maxInflightPerClient / 2
    ) {
      this.readPaused = false;
      this.socket.resume();
      this.parser.resume();
    }
  }

  private onProtocolError = (message: string): void => {
    this.reply(errorReply(message));
    this.closeAfterReply();
  };

  private closeAfterReply(): void {
    this.state = State.ClosingAfterReply;
    this.socket.pause();
    if (this.queue.length === 0 && this.out.length === 0) this.socket.end();
  }

  private onClose(): void {
    this.state = State.Closed;
    this.out = [];
    this.endSession();
    this.context.clientClosed(this);
  }

  /** Drops the transaction, the watch and every subscription (client gone, or RESET). */
  private endSession(): void {
    // A blocked command of a client that left must not stay blocked on the shard, where it would
    // still pop an element nobody will receive: closing its connection unblocks it.
    for (const request of this.queue.drain()) if (!request.done) request.lentConnection?.close();
    this.transaction = null;
    this.watch = null;
    this.own?.close();
    this.own = null;
    this.subscriptions?.closeAll();
    this.subscriptions = null;
    this.heldFrames = [];
  }

  private answerLocally(name: string, buf: Buffer, argc: number, args: Int32Array): void {
    const arg = (i: number) => buf.toString("latin1", args[i * 2], args[i * 2 + 1]);
    const argBuf = (i: number) => buf.subarray(args[i * 2], args[i * 2 + 1]);
    switch (name) {
      case "ping":
        return this.reply(argc === 1 ? PONG : bulkReply(argBuf(1), this.protocol));
      case "echo":
        return this.reply(bulkReply(argBuf(1), this.protocol));
      case "quit":
        this.reply(OK);
        return this.closeAfterReply();
      case "reset":
        this.endSession();
        this.protocol = 2;
        this.name = null;
        this.authenticated = this.context.config.clientPassword === undefined;
        return this.reply(RESET);
      case "auth":
        return this.reply(this.authenticate(argc === 2 ? undefined : arg(1), argBuf(argc - 1)));
      case "hello":
        return this.hello(argc, arg, argBuf);
      case "select": {
        const db = parseInteger(argBuf(1), 0, args[3]! - args[2]!);
        if (db === null) return this.reply(errorReply("ERR value is not an integer or out of range"));
        return this.reply(db === 0 ? OK : errorReply(RedisErrors.selectInCluster));
      }
      case "readonly":
      case "readwrite":
      case "asking":
        return this.reply(errorReply("ERR This instance has cluster support disabled"));
      case "role":
        return this.reply(encodeReply([new SimpleString("master") as never, 0, []], this.protocol));
      case "info": {
        const section = argc > 1 ? arg(1).toLowerCase() : "default";
        if (this.context.busyProxy === undefined)
          return this.reply(this.context.info(section, this.protocol));
        // The busy proxy adds the shards' figures (keyspace, memory, stats) to the proxy's sections.
        const sections = this.context.infoSections(section).flatMap(([n, lines]) => [n, lines.join("\r\n")]);
        return this.forward(encodeCommand([SHARD_INFO, ...sections]), -1, true, this.context.busyProxy);
      }
      case "client|setname": {
        const value = arg(2);
        if (/[^\x21-\x7e]/.test(value)) {
          return this.reply(
            errorReply("ERR Client names cannot contain spaces, newlines or special characters."),
          );
        }
        this.name = value === "" ? null : value;
        return this.reply(OK);
      }
      case "client|getname":
        return this.reply(bulkReply(this.name, this.protocol));
      case "client|id":
        return this.reply(integerReply(this.id));
      case "client|setinfo": {
        const attr = arg(2).toLowerCase();
        const value = arg(3);
        if (attr !== "lib-name" && attr !== "lib-ver") {
          return this.reply(errorReply(`ERR Unrecognized option '${arg(2)}'`));
        }
        if (/[^\x21-\x7e]/.test(value)) {
          return this.reply(errorReply(`ERR ${attr} cannot contain spaces, newlines or special characters.`));
        }
        if (attr === "lib-name") this.libName = value;
        else this.libVersion = value;
        return this.reply(OK);
      }
      case "client|info":
        return this.reply(bulkReply(this.context.describeClient(this) + "\n", this.protocol));
      case "client|list":
        return this.reply(this.clientList(argc, arg));
      case "client|kill":
        return this.reply(this.clientKill(argc, arg));
      case "client|help":
        return this.reply(
          encodeReply(
            [
              "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
              "GETNAME",
              "SETNAME <name>",
              "ID",
              "INFO",
              "SETINFO <option> <value>",
            ].map((s) => new SimpleString(s) as never),
            this.protocol,
          ),
        );
      default:
        return this.reply(errorReply(`ERR command '${name}' is not supported through this proxy yet`));
    }
  }

  /** CLIENT LIST [TYPE normal] [ID id ...]: the clients of this worker (each worker has its own). */
  private clientList(argc: number, arg: (i: number) => string): Buffer {
    let clients = [...this.context.clients];
    for (let i = 2; i < argc; i++) {
      const option = arg(i).toLowerCase();
      if (option === "id" && i + 1 < argc) {
        const ids = new Set<number>();
        for (i++; i < argc; i++) ids.add(Number(arg(i)));
        clients = clients.filter((c) => ids.has(c.id));
      } else if (option === "type" && i + 1 < argc) {
        const type = arg(++i).toLowerCase();
        if (!["normal", "master", "replica", "slave", "pubsub"].includes(type)) {
          return errorReply(`ERR Unknown client type '${arg(i)}'`);
        }
        if (type !== "normal") clients = [];
      } else return errorReply("ERR syntax error");
    }
    return bulkReply(clients.map((c) => this.context.describeClient(c) + "\n").join(""), this.protocol);
  }

  /**
   * CLIENT KILL addr (old form: +OK or an error), or CLIENT KILL [ID id] [ADDR ip:port]
   * [LADDR ip:port] [SKIPME yes|no] (the number killed), among this worker's clients.
   */
  private clientKill(argc: number, arg: (i: number) => string): Buffer {
    if (argc === 3) {
      const target = [...this.context.clients].find((c) => c.remoteAddress === arg(2));
      if (target === undefined) return errorReply("ERR No such client");
      this.killLater(target);
      return OK;
    }
    let matches = [...this.context.clients];
    let skipMe = true;
    for (let i = 2; i < argc; i += 2) {
      if (i + 1 >= argc) return errorReply("ERR syntax error");
      const option = arg(i).toLowerCase();
      const value = arg(i + 1);
      if (option === "id") matches = matches.filter((c) => c.id === Number(value));
      else if (option === "addr") matches = matches.filter((c) => c.remoteAddress === value);
      else if (option === "laddr") matches = matches.filter((c) => c.localAddress === value);
      else if (option === "skipme") {
        if (value.toLowerCase() !== "yes" && value.toLowerCase() !== "no")
          return errorReply("ERR syntax error");
        skipMe = value.toLowerCase() === "yes";
      } else return errorReply("ERR syntax error");
    }
    if (skipMe) matches = matches.filter((c) => c !== this);
    for (const client of matches) this.killLater(client);
    return integerReply(matches.length);
  }

  /** Closes a client once the current reply is queued (killing oneself still gets the reply). */
  private killLater(client: ClientSession): void {
    if (client === this) queueMicrotask(() => this.closeAfterReply());
    else client.destroy();
  }

  /** AUTH [user] password, against the proxy's client password (the shards' credentials stay private). */
  private authenticate(username: string | undefined, password: Buffer): Buffer {
    const expected = this.context.config.clientPassword;
    if (expected === undefined) {
      // Like Redis's default user with nopass: `AUTH pass` is an error, `AUTH default anything` succeeds.
      if (username === undefined) return errorReply(RedisErrors.noAuthConfigured);
      return username === "default" ? OK : errorReply(RedisErrors.wrongPass);
    }
    const want = Buffer.from(expected);
    const ok =
      (username === undefined || username === "default") &&
      password.length === want.length &&
      timingSafeEqual(password, want);
    if (!ok) return errorReply(RedisErrors.wrongPass);
    this.authenticated = true;
    return OK;
  }

  private hello(argc: number, arg: (i: number) => string, argBuf: (i: number) => Buffer): void {
    let protocol = this.protocol;
    let next = 1;
    if (argc > 1) {
      const version = parseInteger(argBuf(1), 0, argBuf(1).length);
      if (version === null)
        return this.reply(errorReply("ERR Protocol version is not an integer or out of range"));
      if (version < 2 || version > 3) return this.reply(errorReply(RedisErrors.noProto));
      protocol = version as Protocol;
      next = 2;
    }
    let auth: [string, Buffer] | undefined;
    let name: string | undefined;
    for (let i = next; i < argc; i++) {
      const option = arg(i).toLowerCase();
      if (option === "auth" && i + 2 < argc) {
        auth = [arg(i + 1), argBuf(i + 2)];
        i += 2;
      } else if (option === "setname" && i + 1 < argc) {
        name = arg(i + 1);
        i += 1;
      } else {
        return this.reply(errorReply(`ERR Syntax error in HELLO option '${arg(i)}'`));
      }
    }
    if (auth) {
      const result = this.authenticate(auth[0], auth[1]);
      if (result !== OK) return this.reply(result);
    }
    if (!this.authenticated) {
      return this.reply(
        errorReply(
          "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ),
      );
    }
    if (name !== undefined) this.name = name === "" ? null : name;
    this.protocol = protocol;
    this.reply(encodeReply(helloReply(this.context.router.serverVersion, protocol, this.id), protocol));
  }
}

function argStrings(buf: Buffer, args: Int32Array, from: number, argc: number): string[] {
  const out: string[] = [];
  for (let i = from; i < argc && i < from + 16; i++)
    out.push(buf.toString("latin1", args[i * 2], args[i * 2 + 1]));
  return out;
}

function argBuffers(buf: Buffer, args: Int32Array, argc: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < argc; i++) out.push(buf.subarray(args[i * 2], args[i * 2 + 1]));
  return out;
}

/** A cluster-wide command on a worker that runs without a busy proxy. */
function needsBusyProxy(spec: CommandSpec): Buffer {
  return errorReply(
    `ERR command '${spec.name}' needs the busy proxy (it runs on every shard), and this proxy runs without one`,
  );
}

/** The error for a refused or not-yet-supported command. */
function refusal(spec: CommandSpec): Buffer {
  return errorReply(
    spec.mode === Mode.Denied
      ? `ERR command '${spec.name}' is disabled on this proxy: ${spec.reason}`
      : `ERR command '${spec.name}' is not supported through this proxy yet: ${spec.reason}`,
  );
}

/** XREAD and XREADGROUP block only with a BLOCK option; other blocking commands always may. */
function blocksForReal(spec: CommandSpec, buf: Buffer, argc: number, args: Int32Array): boolean {
  if (spec.name !== "xread" && spec.name !== "xreadgroup") return true;
  return hasBlockOption(argBuffers(buf, args, argc));
}

function hasBlockOption(args: Buffer[]): boolean {
  for (let i = 1; i < args.length; i++) {
    const word = args[i]!.toString("latin1").toLowerCase();
    if (word === "streams") return false;
    if (word === "block") return true;
  }
  return false;
}
