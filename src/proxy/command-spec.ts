/**
 * What a command is to the proxy, and what its handler may ask of a client session: the contract
 * between the command table (./commands.ts), the handlers (./local-commands.ts, ./transaction.ts,
 * ./pubsub.ts) and the session that runs them (./client.ts). It imports none of them, so none of
 * them imports another through it.
 */
import type { Logger } from "pino";
import { ProxyErrors } from "../errors.ts";
import { errorReply } from "../resp/encode.ts";
import type { Protocol } from "../resp/encode.ts";
import type { BackendConnection } from "./backend.ts";
import type { ProxyConfig } from "./config.ts";
import type { FlushScheduler } from "./io.ts";
import type { Request } from "./request.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import type { CommandView } from "./command-view.ts";
import type { AclUser } from "./acl/rules.ts";
import type { AclUsers } from "./acl/users.ts";
import type { PubSubRouter } from "./pubsub-hub.ts";

/** How the proxy runs a command. */
export const enum Mode {
  /** Sent to the master of its keys' slot (all keys must share one slot). */
  Keyed,
  /** Keyless, and any master gives the same answer (TIME, COMMAND, PUBLISH...). */
  AnyShard,
  /** Answered by the proxy itself (PING, HELLO, AUTH, CLIENT SETNAME...). */
  Local,
  /** Changes the client's session: transactions (MULTI, EXEC, WATCH...) and Pub/Sub subscriptions. */
  Session,
  /** Refused: it would damage or confuse the cluster when sent through a proxy. */
  Denied,
  /**
   * Keyless with a cluster-wide meaning (SCAN, DBSIZE, FLUSHALL, SCRIPT LOAD...): the busy proxy
   * runs it on every master and merges the replies.
   */
  Broadcast,
  /** Needs a session, a broadcast or a split that this proxy does not run yet. */
  Unsupported,
}

export interface CommandSpec {
  /** Lower-case name; for subcommands "container|sub", as Redis names them. */
  name: string;
  arity: number;
  mode: Mode;
  keyStart: number;
  keyStop: number;
  step: number;
  movableKeys: boolean;
  readonly: boolean;
  write: boolean;
  blocking: boolean;
  /** Container commands (CLIENT, OBJECT, ...): subcommand name (lower case) to its spec. */
  subcommands?: Map<string, CommandSpec>;
  /**
   * Keys may span slots: the busy proxy splits it by slot, runs the parts and merges the replies.
   * Only commands whose meaning survives a split; atomic ones (MSETNX, RENAME, *STORE...) are not.
   */
  splittable: boolean;
  /** Runs a Local or Session command (set from the handler records, see ./commands.ts). */
  handler?: CommandHandler;
  /** A Broadcast command's checks in the worker, which then hand it to the busy proxy (./config-check.ts). */
  check?: CommandHandler;
  /** Why the command is refused or not supported, for the error text. */
  reason?: string;
}

/** Arity check as Redis does it: positive = exact, negative = at least. */
export function arityOk(spec: CommandSpec, argc: number): boolean {
  return spec.arity >= 0 ? argc === spec.arity : argc >= -spec.arity;
}

/** The error for a refused or not-yet-supported command. */
export function refusal(spec: CommandSpec): Buffer {
  return errorReply(
    spec.mode === Mode.Denied
      ? ProxyErrors.disabled(spec.name, spec.reason)
      : ProxyErrors.notSupported(spec.name, spec.reason),
  );
}

/** Runs one Local or Session command for a session; answers through `session.reply` or a request. */
export type CommandHandler = (session: Session, view: CommandView, spec: CommandSpec) => void;

/** The internal command a worker sends the busy proxy with its INFO sections, to get the shards' sums added. */
export const SHARD_INFO = "dredis.info";

/** What a session needs from its worker (./context.ts's ProxyContext provides it). */
export interface SessionContext {
  readonly config: ProxyConfig;
  readonly commands: { lookup(buf: Buffer, start: number, end: number): CommandSpec | undefined };
  readonly router: SessionRouter;
  readonly flusher: FlushScheduler;
  readonly log: Logger;
  readonly stats: { commands: number };
  /** The link to the busy proxy; unset: multi-key commands across slots get CROSSSLOT. */
  readonly busyProxy: { send(request: Request): void } | undefined;
  readonly clients: Iterable<Session>;
  nextClientId(): number;
  clientClosed(client: Session): void;
  describeClient(client: Session): string;
  infoSections(args: readonly string[]): [name: string, lines: string[]][];
  info(args: readonly string[], protocol: Protocol): Buffer;
  /** The ACL users clients authenticate as (replaced on a config reload). */
  readonly acl: AclUsers;
}

/** The router calls a session makes (./router.ts's ClusterRouter provides them). */
export interface SessionRouter extends PubSubRouter {
  readonly serverVersion: string;
  /** The shards' engine (valkey-server answers some errors in its own words). */
  readonly serverEngine: "redis" | "valkey";
  /** The engine's own version (Valkey's valkey_version), as HELLO and INFO server present it. */
  readonly serverEngineVersion: string;
  dispatch(request: Request): void;
  masterFor(slot: number, affinity?: number): string | undefined;
  /** Follows a refusal for a part of a split command (./busy/key-split.ts); false when the reply is final. */
  retryRefused(request: Request, reply: ReplyBytes): boolean;
  openSessionConnection(address: string, protocol: Protocol, db?: number): BackendConnection;
  /** How many databases clients may SELECT (./databases.ts). */
  readonly databases: number;
}

/** What handlers may read and do on the session they run for (./client.ts's ClientSession). */
export interface Session {
  readonly id: number;
  readonly context: SessionContext;
  readonly createdAt: number;
  readonly lastActivity: number;
  readonly remoteAddress: string;
  readonly localAddress: string;
  protocol: Protocol;
  name: string | null;
  libName: string;
  libVersion: string;
  /** The client proved it may run commands (AUTH or HELLO AUTH, or no password is set). */
  authenticated: boolean;
  /** The ACL user the session runs as: `default` until AUTH or HELLO AUTH names another. */
  aclUser: AclUser;
  /** READONLY sent (READWRITE clears it): the client's reads may go to replicas. */
  readonlyMode: boolean;
  /** The database selected (SELECT; ./databases.ts). */
  db: number;
  readonly transaction: TransactionCommands;
  readonly pubsub: SubscriptionCommands;
  /** Queues a reply the proxy made itself, behind any replies still due. */
  reply(reply: Buffer): void;
  /** The node and this proxy's end of the connection the session's blocking command waits on, if one does. */
  blockedOn(): { node: string; localAddress: string } | null;
  /** CLIENT REPLY: whether the replies of the following commands are written (pushes always are). */
  setReplyMode(mode: "on" | "off" | "skip"): void;
  /** RESET: replies on again, as Redis clears CLIENT REPLY OFF and SKIP (a SKIP just before still mutes the RESET). */
  resetReplyMode(): void;
  /** Stops taking commands; the connection closes once the replies due are written. */
  closeAfterReply(): void;
  /** Closes the connection at once. */
  destroy(): void;
  /** Drops the transaction, the watch and every subscription (RESET). */
  endSession(): void;
  /** Runs `then` once the replies due now are all released, taking no command until then (RESET). */
  afterRepliesDue(then: () => void): void;
  /** The replies due are all released (the pub/sub room's own reply places say so too). */
  repliesDrained(): void;
  /** A request of this session, for a frame it sends. */
  newRequest(frame: Buffer, slot: number, readonly: boolean): Request;
  /** Queues the request for its reply slot and sends it on its way. */
  send(request: Request): void;
  /** Sends a frame to the busy proxy, or answers that there is none. */
  toBusyProxy(frame: Buffer, readonly: boolean): void;
  readonly hasBusyProxy: boolean;
  // Client-side caching (./tracking/session.ts).
  /** CLIENT TRACKING's state while tracking is on (a ./tracking/session.ts SessionTracking); null while off. */
  tracking: TrackingState | null;
  /** Replies due and not yet written (queued behind earlier ones). */
  readonly pendingReplies: number;
  /** Writes an out-of-band frame (a RESP3 push, or a subscriber's message) now. */
  emitPush(frame: Buffer): void;
  /** A place in the reply order for an answer given later (call the function with it). */
  later(): (reply: Buffer) => void;
  /** A WATCH is held (the client's commands ride its own connection). */
  readonly watching: boolean;
}

/** What the session calls on its CLIENT TRACKING state (./tracking/session.ts). */
export interface TrackingState {
  /** A command came (before it runs or is queued in MULTI). */
  command(spec: CommandSpec, view: CommandView): void;
  /** The replies due are all written. */
  drained(): void;
  /** Tracking ends (off, RESET, or the client left). */
  end(): void;
}

/** MULTI, EXEC, DISCARD, WATCH and UNWATCH on a session (./transaction.ts). */
export interface TransactionCommands {
  multi(): void;
  exec(): void;
  discard(): void;
  watch(view: CommandView, spec: CommandSpec): void;
  unwatch(view: CommandView): void;
  /** SELECT while a WATCH is held: sent on the watch's connection (true), which answers it. */
  selectOnWatch(frame: Buffer, db: number): boolean;
}

/** The (un)subscribe family and a subscribed client's PING on a session (./pubsub.ts). */
export interface SubscriptionCommands {
  /** The client is in subscribed mode: it has at least one subscription. */
  readonly active: boolean;
  subscription(view: CommandView, spec: CommandSpec): void;
  ping(view: CommandView): void;
  /** MONITOR: every master's stream, merged (./monitor.ts). */
  monitor(): void;
}
