/**
 * MULTI ... EXEC transactions and WATCH as the proxy runs them.
 *
 * Commands are checked and queued in the proxy (the client gets +QUEUED at once, or the error
 * Redis would give, which dooms the transaction as in Redis). EXEC sends MULTI, the queued
 * commands and EXEC as one contiguous block to the master of their slot. On a multiplexed
 * connection nothing can come between the parts of a block, so a transaction without WATCH needs
 * no connection of its own; a WATCHed one runs on the connection that holds the watch.
 */
import { ProxyErrors, RedisErrors } from "../errors.ts";
import { errorReply, OK, QUEUED } from "../resp/encode.ts";
import { encodeCommand } from "../resp/request-parser.ts";
import { ConnectionState as BackendState, type BackendConnection } from "./backend.ts";
import { Request } from "./request.ts";
import { multiNestedError } from "./engine-style.ts";
import { slotOf, SPANS_SLOTS } from "./keys.ts";
import type { CommandView } from "./command-view.ts";
import {
  Mode,
  refusal,
  type CommandHandler,
  type CommandSpec,
  type Session,
  type TransactionCommands,
} from "./command-spec.ts";

const MULTI = encodeCommand(["MULTI"]);
const EXEC = encodeCommand(["EXEC"]);
const UNWATCH = encodeCommand(["UNWATCH"]);
const CROSSSLOT = errorReply(RedisErrors.crossSlot);
const EXECABORT = errorReply(RedisErrors.execAbort);
/** Handled even inside MULTI rather than queued, as Redis does. */
const TRANSACTION_CONTROL = new Set(["exec", "discard", "multi", "watch", "quit", "reset"]);

/** The commands this file runs, each with its handler (the command table reads their mode from here). */
export const TRANSACTION_COMMANDS = {
  multi: (session) => session.transaction.multi(),
  exec: (session) => session.transaction.exec(),
  discard: (session) => session.transaction.discard(),
  watch: (session, view, spec) => session.transaction.watch(view, spec),
  unwatch: (session, view) => session.transaction.unwatch(view),
} satisfies Record<string, CommandHandler>;

/** The commands queued between MULTI and EXEC. */
export class Transaction {
  private frames: Buffer[] = [MULTI];
  private bytes = MULTI.length;
  /** Slot of the queued commands' keys; -1 while only keyless commands are queued. */
  slot = -1;

  /** Queues a command; false when its slot differs from the transaction's (CROSSSLOT). */
  add(frame: Buffer, slot: number): boolean {
    if (slot >= 0) {
      if (this.slot >= 0 && slot !== this.slot) return false;
      this.slot = slot;
    }
    this.frames.push(frame);
    this.bytes += frame.length;
    return true;
  }

  /** The block to send at EXEC, and how many replies it brings (MULTI, each command, EXEC). */
  block(): { frame: Buffer; parts: number } {
    return {
      frame: Buffer.concat([...this.frames, EXEC], this.bytes + EXEC.length),
      parts: this.frames.length + 1,
    };
  }
}

/** Where a session is between MULTI and EXEC. */
export const enum TransactionPhase {
  /** No MULTI: commands run as they come. */
  None,
  /** MULTI was sent: commands are queued until EXEC or DISCARD. */
  Queuing,
  /** A queued command was refused: EXEC answers EXECABORT. */
  Doomed,
}

/** Whether the session holds a WATCH (on its own connection to the watched keys' master). */
export const enum WatchState {
  None,
  Held,
}

/** One session's transaction and watch. */
export class SessionTransaction implements TransactionCommands {
  phase = TransactionPhase.None;
  watchState = WatchState.None;
  /** The queued commands (while Queuing or Doomed). */
  private queued: Transaction | null = null;
  /** The watched keys' slot, and the connection that holds the watch (while Held). */
  private watchSlot = -1;
  private watchConnection: BackendConnection | null = null;
  /** A connection of this client's own, for WATCHed transactions; kept for the next one. */
  private own: BackendConnection | null = null;
  /** The database `own` is in. */
  private ownDb = 0;

  constructor(private readonly session: Session) {}

  /** The command is queued rather than run: MULTI is open and it is not one that controls it. */
  queues(spec: CommandSpec): boolean {
    return this.phase !== TransactionPhase.None && !TRANSACTION_CONTROL.has(spec.name);
  }

  /** A refused command dooms an open transaction, as Redis flags it. */
  doom(): void {
    if (this.phase === TransactionPhase.Queuing) this.phase = TransactionPhase.Doomed;
  }

  /** Checks a command and queues it for EXEC (+QUEUED), or refuses it (which dooms the transaction). */
  queue(spec: CommandSpec, view: CommandView): void {
    let slot = -1;
    switch (spec.mode) {
      case Mode.Keyed:
        // PUBLISH is keyed by its channel only for its count: in a block it goes with the keys.
        slot = spec.name === "publish" ? -1 : slotOf(spec, view);
        if (slot === SPANS_SLOTS) return this.reject(CROSSSLOT);
        break;
      case Mode.AnyShard:
        break;
      case Mode.Local:
        if (spec.name === "ping" || spec.name === "echo") break;
        return this.reject(errorReply(ProxyErrors.notInMultiThroughProxy(spec.name)));
      case Mode.Session:
        return this.reject(errorReply(ProxyErrors.notInMulti(spec.name)));
      case Mode.Broadcast:
        return this.reject(errorReply(ProxyErrors.broadcastInMulti(spec.name)));
      case Mode.Denied:
      case Mode.Unsupported:
        return this.reject(refusal(spec));
    }
    if (!this.queued!.add(view.frame(), slot)) return this.reject(CROSSSLOT);
    this.session.reply(QUEUED);
  }

  multi(): void {
    if (this.phase !== TransactionPhase.None)
      return this.session.reply(errorReply(multiNestedError(this.session.context.router.serverEngine)));
    this.phase = TransactionPhase.Queuing;
    this.queued = new Transaction();
    // Keys queued later must live with the watched ones: the watch holds on one node.
    if (this.watchState === WatchState.Held) this.queued.slot = this.watchSlot;
    this.session.reply(OK);
  }

  exec(): void {
    if (this.phase === TransactionPhase.None)
      return this.session.reply(errorReply(RedisErrors.execWithoutMulti));
    const doomed = this.phase === TransactionPhase.Doomed;
    const queued = this.queued!;
    this.phase = TransactionPhase.None;
    this.queued = null;
    const watch = this.takeWatch(); // EXEC ends the watch on the node, whatever the outcome
    if (doomed) {
      if (watch !== null) this.unwatchOn(watch);
      return this.session.reply(EXECABORT);
    }
    const { frame, parts } = queued.block();
    const request = this.session.newRequest(frame, queued.slot, false);
    request.parts = parts;
    request.pinned = watch;
    this.session.send(request);
  }

  discard(): void {
    if (this.phase === TransactionPhase.None)
      return this.session.reply(errorReply(RedisErrors.discardWithoutMulti));
    this.phase = TransactionPhase.None;
    this.queued = null;
    const watch = this.takeWatch();
    if (watch !== null) this.unwatchOn(watch);
    this.session.reply(OK);
  }

  watch(view: CommandView, spec: CommandSpec): void {
    if (this.phase !== TransactionPhase.None)
      return this.session.reply(errorReply(RedisErrors.watchInsideMulti));
    const slot = slotOf(spec, view);
    if (slot === SPANS_SLOTS || (this.watchState === WatchState.Held && this.watchSlot !== slot))
      return this.session.reply(CROSSSLOT);
    if (this.watchState === WatchState.None) {
      const address = this.session.context.router.masterFor(slot);
      if (address === undefined) return this.session.reply(errorReply(ProxyErrors.noMasterForSlot(slot)));
      this.watchState = WatchState.Held;
      this.watchSlot = slot;
      this.watchConnection = this.ownConnection(address);
    }
    const request = this.session.newRequest(view.frame(), slot, false);
    request.pinned = this.watchConnection;
    this.session.send(request);
  }

  unwatch(view: CommandView): void {
    if (this.watchState === WatchState.None) return this.session.reply(OK);
    const request = this.session.newRequest(view.frame(), this.watchSlot, false);
    request.pinned = this.takeWatch();
    this.session.send(request);
  }

  selectOnWatch(frame: Buffer, db: number): boolean {
    if (this.watchState !== WatchState.Held) return false;
    const request = this.session.newRequest(frame, this.watchSlot, false);
    request.pinned = this.watchConnection;
    this.session.send(request);
    this.ownDb = db;
    return true;
  }

  /** Drops the transaction and the watch, and closes the session's own connection (client gone, or RESET). */
  end(): void {
    this.phase = TransactionPhase.None;
    this.queued = null;
    this.takeWatch();
    this.own?.close();
    this.own = null;
  }

  private reject(reply: Buffer): void {
    this.doom();
    this.session.reply(reply);
  }

  /** Ends the watch here; returns the connection that held it, or null without one. */
  private takeWatch(): BackendConnection | null {
    const connection = this.watchConnection;
    this.watchState = WatchState.None;
    this.watchSlot = -1;
    this.watchConnection = null;
    return connection;
  }

  /** This client's own connection to a node, for a WATCH (reused while it points at the same node). */
  private ownConnection(address: string): BackendConnection {
    const own = this.own;
    const protocol = this.session.protocol;
    if (
      own !== null &&
      own.address === address &&
      own.protocol === protocol &&
      this.ownDb === this.session.db &&
      own.state !== BackendState.Closed
    )
      return own;
    own?.close();
    this.ownDb = this.session.db;
    return (this.own = this.session.context.router.openSessionConnection(address, protocol, this.ownDb));
  }

  /** Ends a watch on its node without an EXEC (DISCARD, or a doomed transaction); the reply is not the client's. */
  private unwatchOn(connection: BackendConnection): void {
    const request = new Request(null);
    request.frame = UNWATCH;
    request.pinned = connection;
    this.session.context.router.dispatch(request);
  }
}
