/**
 * One client connection: parses its requests, routes each or hands it to its handler, and keeps
 * the connection's flow in check (backpressure, and requests that must not overtake each other).
 *
 * The rooms around it: replies leave in request order through ./ordered-replies.ts; commands the
 * proxy answers itself are in ./local-commands.ts, MULTI/WATCH in ./transaction.ts, Pub/Sub in
 * ./pubsub.ts, each declared with its handler in the command table (./commands.ts).
 */
import type { Socket } from "node:net";
import { RedisErrors, ProxyErrors, unknownCommand } from "../errors.ts";
import { errorReply, type Protocol } from "../resp/encode.ts";
import { RequestParser } from "../resp/request-parser.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { blocksForReal, slotOf, SPANS_SLOTS } from "./keys.ts";
import { EMULATED } from "./busy/emulate-commands.ts";
import { SlotGrouper, splitCommand } from "./busy/key-split.ts";
import {
  arityOk,
  Mode,
  refusal,
  type CommandSpec,
  type Session,
  type SessionContext,
  type TrackingState,
} from "./command-spec.ts";
import { CommandView } from "./command-view.ts";
import { initiallyAuthenticated } from "./local-commands.ts";
import { readAccepted } from "./io.ts";
import { OrderedReplies, type ReplyWriterOwner } from "./ordered-replies.ts";
import { Request, RequestKind, type ReplySink } from "./request.ts";
import { SessionTransaction, WatchState } from "./transaction.ts";
import { SessionPubSub, SUBSCRIBED_ALLOWED } from "./pubsub.ts";
import type { AclUser } from "./acl/rules.ts";
import { permissionDenial } from "./acl/session.ts";
import { runsBeforeAuth } from "./acl/command-acl.ts";
import { sessionReadFrom } from "./upstream/read-from.ts";

/** Output worth writing at once rather than waiting a turn for more replies. */
const DEFER_MAX_BYTES = 16 * 1024;
const CROSSSLOT = errorReply(RedisErrors.crossSlot);
const NOAUTH = errorReply(RedisErrors.noAuth);
const NO_FRAME = Buffer.alloc(0);

/** Scratch space of the worker's own splits (one per process: a split runs within one call). */
let grouper: SlotGrouper | null = null;

const enum Auth {
  Required,
  Authenticated,
}

/** CLIENT REPLY's modes: replies written, dropped, or dropped for the next command only. */
const enum ReplyMode {
  On,
  Off,
  SkipNext,
}

export class ClientSession implements ReplySink, Session, ReplyWriterOwner<Request> {
  readonly id: number;
  readonly createdAt = Date.now();
  lastActivity = Date.now();
  name: string | null = null;
  libName = "";
  libVersion = "";
  protocol: Protocol = 2;
  /** The client sent READONLY (and no READWRITE since): its reads may go to replicas. */
  readonlyMode = false;
  /** The database the client selected (./databases.ts); its requests run there. */
  db = 0;
  /** Whether the client proved it may run commands (AUTH or HELLO AUTH, or no password is set). */
  private auth: Auth;
  aclUser: AclUser;
  readonly transaction: SessionTransaction;
  readonly pubsub: SessionPubSub;
  private readonly replies: OrderedReplies<Request>;
  private readonly parser: RequestParser;
  /** The command being handled: refilled for each one, never reallocated. */
  private readonly view = new CommandView();
  /** Request bytes sent to shards and not yet answered, for backpressure. */
  private inflightBytes = 0;
  /** Requests not yet sent because they must not overtake earlier ones (see `send`), in order. */
  private held: Request[] = [];
  /** Sent and not yet answered, by path: to the shards directly, or through the busy proxy. */
  private routedInFlight = 0;
  private busyInFlight = 0;
  private replyMode = ReplyMode.On;
  /** The command being handled gets no reply written (CLIENT REPLY OFF or SKIP before it). */
  private muted = false;
  /** A request sent that the later ones wait for (see `Request.barrier`), or null. */
  private barrier: Request | null = null;
  /** The database of the requests sent last: one in another waits until they are answered. */
  private sentDb = 0;
  /** CLIENT TRACKING's state while on (./tracking/session.ts); null keeps every hook below to one test. */
  tracking: TrackingState | null = null;
  /** What waits for the replies due to be released (a RESET; see `afterRepliesDue`), or null. */
  private afterDue: (() => void) | null = null;

  private readonly socket: Socket;

  constructor(
    accepted: Socket,
    readonly context: SessionContext,
  ) {
    this.id = context.nextClientId();
    this.auth = initiallyAuthenticated(this) ? Auth.Authenticated : Auth.Required;
    this.aclUser = context.acl.defaultUser;
    this.parser = new RequestParser(context.config.limits, this.onCommand, this.onProtocolError);
    // Reads land in a reused buffer and are copied out per read (./io.ts), so the frames the
    // parser hands out (kept as requests' frames) stay valid after the read.
    const socket = (this.socket = readAccepted(accepted, (chunk: Buffer) => {
      this.lastActivity = Date.now();
      this.parser.feed(chunk);
      this.checkBackpressure();
    }));
    this.replies = new OrderedReplies<Request>(socket, context.flusher, this, DEFER_MAX_BYTES);
    this.transaction = new SessionTransaction(this);
    this.pubsub = new SessionPubSub(this, this.replies);
    socket.setNoDelay(true);
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

  get authenticated(): boolean {
    return this.auth === Auth.Authenticated;
  }

  set authenticated(yes: boolean) {
    this.auth = yes ? Auth.Authenticated : Auth.Required;
  }

  get hasBusyProxy(): boolean {
    return this.context.busyProxy !== undefined;
  }

  /** Stops taking commands; closes once the replies still due are written (draining). */
  closeWhenIdle(): void {
    if (this.replies.open) this.closeAfterReply();
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
    if (!this.replies.open) return;
    this.context.stats.commands++;
    this.muted = this.replyMode !== ReplyMode.On;
    if (this.replyMode === ReplyMode.SkipNext) this.replyMode = ReplyMode.On;
    const view = this.view.set(buf, frameStart, frameEnd, argc, args);
    let spec = this.context.commands.lookup(buf, args[0]!, args[1]!);
    if (spec === undefined) {
      return this.reject(errorReply(unknownCommand(view.arg(0), view.argStrings(1)), "latin1"));
    }
    if (!arityOk(spec, argc)) return this.reject(errorReply(RedisErrors.wrongArity(spec.name)));
    if (spec.subcommands !== undefined) {
      const sub = view.arg(1);
      const subSpec = spec.subcommands.get(sub.toLowerCase());
      if (subSpec === undefined)
        return this.reject(errorReply(RedisErrors.unknownSubcommand(sub, spec.name)));
      if (!arityOk(subSpec, argc)) return this.reject(errorReply(RedisErrors.wrongArity(subSpec.name)));
      spec = subSpec;
    }
    // As Redis: unknown commands and wrong arity are answered first, then NOAUTH (but for AUTH,
    // HELLO, QUIT and RESET), then ACLs.
    if (this.auth !== Auth.Authenticated && !runsBeforeAuth(spec.name)) return this.reject(NOAUTH);
    // ACLs, as Redis checks them: after arity, before anything runs or is queued.
    if (!this.aclUser.unrestricted) {
      const denial = permissionDenial(this, spec, view);
      if (denial !== null) {
        // A refused EXEC also ends the transaction (Redis's rejectCommand aborts it).
        if (spec.name === "exec") this.transaction.end();
        return this.reject(denial);
      }
    }
    if (this.protocol === 2 && this.pubsub.active && !SUBSCRIBED_ALLOWED.has(spec.name)) {
      return this.reply(errorReply(RedisErrors.subscribedContext(spec.name)));
    }
    if (this.tracking !== null) this.tracking.command(spec, view);
    if (this.transaction.queues(spec)) return this.transaction.queue(spec, view);
    switch (spec.mode) {
      case Mode.Keyed:
        return this.routeKeyed(spec, view);
      case Mode.AnyShard:
        return this.forward(view.frame(), -1, spec.readonly);
      case Mode.Local:
      case Mode.Session:
        return spec.handler!(this, view, spec);
      case Mode.Broadcast:
        // Cluster-wide (SCAN, DBSIZE, SCRIPT LOAD...): the busy proxy runs it on every master.
        if (spec.check !== undefined) return spec.check(this, view, spec); // checks, then the same
        if (!this.hasBusyProxy) return this.reply(errorReply(ProxyErrors.needsBusyProxy(spec.name)));
        return this.toBusyProxy(view.frame(), spec.readonly);
      case Mode.Denied:
      case Mode.Unsupported:
        return this.reply(refusal(spec));
    }
  };

  /** An error that also dooms an open transaction, as Redis flags it. */
  private reject(reply: Buffer): void {
    this.transaction.doom();
    this.reply(reply);
  }

  private routeKeyed(spec: CommandSpec, view: CommandView): void {
    const slot = slotOf(spec, view);
    if (slot !== SPANS_SLOTS) {
      const request = this.newRequest(view.frame(), slot, spec.readonly);
      // A blocking command waits on a connection of its own, never in a shared pipeline.
      request.dedicated = spec.blocking && (!spec.movableKeys || blocksForReal(spec, view));
      this.send(request);
    } else if (spec.splittable && this.hasBusyProxy) {
      // Keys on several slots: a small MGET, MSET, DEL... splits here; the rest goes to the busy
      // proxy, which splits, fans out and merges, off this worker's path.
      if (!this.splitHere(view, spec.readonly)) this.toBusyProxy(view.frame(), spec.readonly);
    } else if (this.context.config.crossSlot === "emulate" && this.hasBusyProxy) {
      // crossSlot: emulate (./busy/emulate.ts): the atomic ones run there, blocking ones say why not.
      if (EMULATED.has(spec.name)) {
        const request = this.newRequest(view.frame(), -1, spec.readonly);
        request.kind = RequestKind.Busy;
        request.barrier = true;
        this.send(request);
      } else if (spec.blocking && (!spec.movableKeys || blocksForReal(spec, view)))
        this.reply(errorReply(ProxyErrors.crossSlotBlocking(spec.name)));
      else this.reply(CROSSSLOT);
    } else {
      this.reply(CROSSSLOT);
    }
  }

  /**
   * Splits a cross-slot MGET, MSET, DEL, UNLINK, EXISTS or TOUCH of at most `workerSplitMaxKeys`
   * keys in this worker, as the busy proxy would (./busy/key-split.ts: one command per slot, the
   * slots of one master in one write, refusals retried per part, the same merge and errors), and
   * saves the trip there and back over its socket. False when it must go to the busy proxy:
   *
   * - the parts ride this client's own shard connections only for a RESP2 client in database 0
   *   without tracking or READONLY (the parts speak RESP2 in database 0, to masters), so its
   *   later commands on those keys queue behind them on the same connections, as on Redis;
   * - a WATCH held pins the client to one connection; and a request that must wait for earlier
   *   ones (see `send`) would be split later, from a parse buffer no longer its own.
   */
  private splitHere(view: CommandView, readonly: boolean): boolean {
    const max = this.context.config.workerSplitMaxKeys;
    if (max === 0 || this.protocol !== 2 || this.db !== 0 || this.tracking !== null || this.readonlyMode)
      return false;
    if (this.transaction.watchState !== WatchState.None) return false;
    const { buf, argc, args } = view;
    const command = splitCommand(buf, args[0]!, args[1]!, argc);
    if (command === null || (argc - 1) / command.step > max) return false;
    // No view of the client's frame: the parts' frames, set below, are what it has in flight.
    const request = this.newRequest(NO_FRAME, -1, readonly);
    if (this.held.length > 0 || !this.mayOvertake(request)) return false;
    this.replies.queue.push(request);
    this.sentDb = 0;
    this.routedInFlight++;
    grouper ??= new SlotGrouper();
    const frames = grouper.run(command, buf, argc, args, this.context.router, this.id, 2, (reply) =>
      this.complete(request, reply),
    );
    // (Unless it was answered within the call: then it may be released already, counting no bytes.)
    if (!request.done) {
      request.frame = frames;
      this.inflightBytes += frames.length;
    }
    if (this.replies.queue.length >= this.context.config.limits.maxInflightPerClient)
      this.checkBackpressure();
    return true;
  }

  /** Sends a frame to the busy proxy (the caller checked there is one). */
  toBusyProxy(frame: Buffer, readonly: boolean): void {
    this.forward(frame, -1, readonly, true);
  }

  private forward(frame: Buffer, slot: number, readonly: boolean, toBusyProxy = false): void {
    const request = this.newRequest(frame, slot, readonly);
    if (toBusyProxy) request.kind = RequestKind.Busy;
    this.send(request);
  }

  newRequest(frame: Buffer, slot: number, readonly: boolean): Request {
    const request = new Request(this);
    request.frame = frame;
    request.slot = slot;
    request.readonly = readonly;
    // Not while a WATCH is held: a stale read there would let EXEC commit on an old value.
    if (readonly && this.transaction.watchState === WatchState.None)
      request.readFrom = sessionReadFrom(this.context.config.readFrom, this.readonlyMode);
    request.protocol = this.protocol;
    request.affinity = this.id;
    request.silent = this.muted;
    request.db = this.db;
    request.tracked = this.tracking !== null;
    return request;
  }

  /** Queues the request for its reply slot (keeping the client's order) and sends it on its way. */
  send(request: Request): void {
    this.replies.queue.push(request);
    this.inflightBytes += request.frame.length;
    if (this.replies.queue.length >= this.context.config.limits.maxInflightPerClient)
      this.checkBackpressure();
    // The busy proxy reaches the shards over its own connections, so nothing orders its requests
    // against this client's routed ones: a request never overtakes one sent the other way. It waits
    // until those are answered, so a pipeline reads its own writes as on Redis. (Requests one way
    // keep their order by themselves: one connection per shard, or to the busy proxy, per client;
    // except after a barrier, which runs in steps there, so everything after it waits for it.)
    if (this.held.length > 0 || !this.mayOvertake(request)) {
      this.held.push(request);
      return;
    }
    this.dispatch(request);
  }

  private mayOvertake(request: Request): boolean {
    if (this.barrier !== null) return false;
    // Databases ride different connections: after a SELECT, nothing overtakes the earlier ones.
    if (request.db !== this.sentDb) return this.routedInFlight === 0 && this.busyInFlight === 0;
    return request.kind !== RequestKind.Busy ? this.busyInFlight === 0 : this.routedInFlight === 0;
  }

  private dispatch(request: Request): void {
    this.sentDb = request.db;
    if (request.kind !== RequestKind.Busy) {
      this.routedInFlight++;
      this.context.router.dispatch(request);
    } else {
      this.busyInFlight++;
      if (request.barrier) this.barrier = request;
      this.context.busyProxy!.send(request);
    }
  }

  /** Sends held requests that may go now (called as replies come in). */
  private releaseHeld(): void {
    while (this.held.length > 0 && this.mayOvertake(this.held[0]!)) this.dispatch(this.held.shift()!);
  }

  /** Queues a reply the proxy made itself, behind any replies still due. */
  reply(reply: Buffer): void {
    if (this.muted && this.replies.queue.length === 0) return;
    if (this.replies.queue.length === 0) {
      this.replies.emit(reply);
      return;
    }
    const request = new Request(this);
    request.reply = reply;
    request.done = true;
    request.silent = this.muted;
    this.replies.queue.push(request);
  }

  get pendingReplies(): number {
    return this.replies.queue.length;
  }

  get watching(): boolean {
    return this.transaction.watchState !== WatchState.None;
  }

  emitPush(frame: Buffer): void {
    this.replies.emit(frame);
  }

  later(): (reply: Buffer) => void {
    const request = new Request(this);
    this.replies.queue.push(request);
    return (reply) => {
      request.reply = reply;
      request.done = true;
      if (this.replies.closed || !this.replies.release(request)) return;
      if (this.tracking !== null && this.replies.queue.length === 0) this.tracking.drained();
      if (this.afterDue !== null && this.replies.queue.length === 0) this.repliesDrained();
    };
  }

  blockedOn(): { node: string; localAddress: string } | null {
    // A blocking command holds the head of the reply order while it waits.
    const head = this.replies.queue.peek();
    const lent = head !== undefined && !head.done ? head.lentConnection : null;
    if (lent?.address === undefined || lent.localAddress === undefined) return null;
    return { node: lent.address, localAddress: lent.localAddress };
  }

  resetReplyMode(): void {
    // OFF ends, so the RESET is answered; a SKIP just before it was for the RESET itself.
    if (this.replyMode === ReplyMode.Off) this.muted = false;
    this.replyMode = ReplyMode.On;
  }

  setReplyMode(mode: "on" | "off" | "skip"): void {
    this.replyMode = mode === "on" ? ReplyMode.On : mode === "off" ? ReplyMode.Off : ReplyMode.SkipNext;
    // ON answers +OK; OFF and SKIP answer nothing, as on Redis.
    this.muted = mode !== "on";
  }

  complete(request: Request, reply: ReplyBytes): void {
    request.reply = reply;
    request.done = true;
    if (request.kind !== RequestKind.Busy) this.routedInFlight--;
    else this.busyInFlight--;
    if (request === this.barrier) this.barrier = null;
    if (this.replies.closed) return;
    if (this.held.length > 0) this.releaseHeld();
    if (!this.replies.release(request)) return; // an earlier request is still due: keep order
    if (this.tracking !== null && this.replies.queue.length === 0) this.tracking.drained();
    if (this.replies.queue.length === 0 && this.pubsub.heldFrames.length > 0) this.pubsub.emitHeld();
    if (this.afterDue !== null && this.replies.queue.length === 0) this.repliesDrained();
    if (this.replies.readPaused) this.checkBackpressure();
  }

  /**
   * Runs `then` once every reply due now is released (at once when none is), taking no further
   * command meanwhile. RESET waits so: Redis answers each command before it first, in that
   * command's protocol, transaction and subscriptions, and the commands after it see the reset.
   */
  afterRepliesDue(then: () => void): void {
    if (this.replies.queue.length === 0) return then();
    this.afterDue = then;
    this.parser.pause();
  }

  /** The replies due are all released: runs what waited for that, then takes commands again. */
  repliesDrained(): void {
    const then = this.afterDue;
    if (then === null || this.replies.closed) return;
    this.afterDue = null;
    then();
    if (!this.replies.readPaused) this.parser.resume();
  }

  released(request: Request): void {
    this.inflightBytes -= request.frame.length;
  }

  overHardLimit(): void {
    this.context.log.warn({ client: this.id }, "subscriber over its output buffer limit; closing it");
    this.destroy();
  }

  /**
   * Backpressure. A client with too much in flight (commands or request bytes) or too many unread
   * reply bytes stops being served new commands: its parser pauses after the current command (one
   * read can hold thousands) and its socket stops reading. Both resume below half the limits. A
   * client whose unread replies pass the hard limit is disconnected, as Redis's
   * client-output-buffer-limit does.
   */
  checkBackpressure(): void {
    if (this.replies.closed) return;
    const limits = this.context.config.limits;
    const unread = this.replies.unwrittenBytes;
    if (unread > limits.maxOutputBytesPerClient) {
      this.context.log.warn({ client: this.id, unread }, "client over its output buffer limit; closing it");
      this.destroy();
      return;
    }
    const bytes = this.inflightBytes + unread + this.parser.bufferedBytes;
    const inflight = this.replies.queue.length;
    if (!this.replies.readPaused) {
      if (bytes > limits.maxPendingBytesPerClient || inflight >= limits.maxInflightPerClient) {
        this.parser.pause();
        this.replies.pauseReading();
      }
    } else if (bytes <= limits.maxPendingBytesPerClient / 2 && inflight <= limits.maxInflightPerClient / 2) {
      this.replies.resumeReading();
      if (this.afterDue === null) this.parser.resume(); // else a RESET still waits: see repliesDrained
    }
  }

  private onProtocolError = (message: string): void => {
    this.reply(errorReply(message));
    this.closeAfterReply();
  };

  closeAfterReply(): void {
    this.replies.closeAfterReply();
  }

  private onClose(): void {
    this.afterDue = null;
    this.replies.socketClosed();
    this.endSession();
    this.context.clientClosed(this);
  }

  /** Drops the transaction, the watch and every subscription (client gone, or RESET). */
  endSession(): void {
    // A blocked command of a client that left must not stay blocked on the shard, where it would
    // still pop an element nobody will receive: closing its connection unblocks it.
    for (const request of this.replies.queue.drain()) if (!request.done) request.lentConnection?.close();
    this.transaction.end();
    this.pubsub.end();
    this.tracking?.end();
    this.tracking = null;
  }
}
