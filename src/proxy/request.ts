/**
 * One client command on its way through the proxy.
 */
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { ReadFrom } from "./upstream/read-from.ts";

/** Whoever waits for a request's reply. */
export interface ReplySink {
  /** Called once per request, in any order; the sink restores the order the client sent. */
  complete(request: Request, reply: ReplyBytes): void;
}

/** What a request holds of a backend connection: the one it must use, or the one it borrowed. */
export interface RequestConnection {
  readonly closed: boolean;
  /** The node's "host:port", and this end's (CLIENT UNBLOCK finds the connection on the node by it). */
  readonly address?: string;
  readonly localAddress?: string;
  send(request: Request): void;
  close(): void;
}

/**
 * Where a request goes. Kept by the setters of `target` and `pinned` (so the code that sets a
 * destination sets the kind with it); a busy-proxy request is marked by the client session.
 */
export const enum RequestKind {
  /** To the master of `slot` (any master when -1), on a shared pipelined connection. */
  Slot,
  /** To the node `target`, whatever its slot (a fan-out part for one node). */
  Node,
  /** On the connection `pinned` (a WATCHed transaction). */
  Pinned,
  /** To the busy proxy, over the worker's busy link; its replies are final. */
  Busy,
}

export class Request {
  /** Where the request goes; set with `target` and `pinned`, or to Busy by the client session. */
  kind = RequestKind.Slot;
  /** Raw RESP bytes to send (the client's own bytes, untouched). */
  frame: Buffer = EMPTY;
  /** Slot of the request's keys, or -1 when keyless. */
  slot = -1;
  /** The reply, once it came; null while pending. */
  reply: ReplyBytes | null = null;
  done = false;
  /** Safe to send again after a lost connection (it only reads). */
  readonly = false;
  /** Where a read-only command may go (the client's mode; see ./upstream/read-from.ts). */
  readFrom = ReadFrom.Master;
  /** Redirects followed and retries made, to bound both. */
  redirects = 0;
  /** When the request stops waiting for an unavailable shard (ms since epoch; 0 = not waiting yet). */
  deadline = 0;
  /** Sent with ASKING first to this node (during a slot migration). */
  askTarget: string | null = null;
  /**
   * The last MOVED's target, and the slot's owner in the map when it came: while the map still
   * names that owner (a map read from a node that has not learnt of a failover yet), the request
   * goes to the target rather than back to the node that refused it, each time spending a redirect.
   */
  movedTo: string | null = null;
  movedFrom: string | undefined = undefined;
  /** Picks the backend connection: the same for all of one client's requests, so they keep their order. */
  affinity = 0;
  /** Replies the frame brings: 1, or for a transaction block (MULTI, n commands, EXEC) n + 2. */
  parts = 1;
  /**
   * Several independent commands in one frame (the busy proxy's parts for one node): every reply,
   * in order, is collected here and the sink gets them all at the last; redirects are left to the
   * sink, which retries just the parts that were refused. Null for everything else.
   */
  collect: ReplyBytes[] | null = null;
  /** The first error among a transaction block's queued parts (EXEC then aborts), e.g. a MOVED. */
  partError: Buffer | null = null;
  /** Needs a connection of its own while it waits (blocking commands), wherever it goes. */
  dedicated = false;
  /**
   * The client's later requests wait for its reply: it runs in steps (an emulated cross-slot
   * command reads, then writes), and a request sent meanwhile could come between them.
   */
  barrier = false;
  /** The connection lent to a dedicated request, so it can be closed if the client goes away. */
  lentConnection: RequestConnection | null = null;
  /** CLIENT REPLY OFF or SKIP was in force when the command came: its reply is dropped, not written. */
  silent = false;
  /** The client's protocol: requests ride backend connections that speak the same one. */
  protocol: 2 | 3 = 2;
  /** The client's database (SELECT): requests ride backend connections in the same one (./databases.ts). */
  db = 0;
  /** Sent by a client with CLIENT TRACKING on: rides a tracked connection (./tracking/hub.ts). */
  tracked = false;
  private node: string | null = null;
  private connection: RequestConnection | null = null;

  constructor(public sink: ReplySink | null) {}

  /** Goes to this node address whatever its slot, or null to route by slot. */
  get target(): string | null {
    return this.node;
  }
  set target(address: string | null) {
    this.node = address;
    this.kind = address === null ? RequestKind.Slot : RequestKind.Node;
  }

  /** Must go on this connection (a WATCHed transaction), whatever the slot map says. */
  get pinned(): RequestConnection | null {
    return this.connection;
  }
  set pinned(connection: RequestConnection | null) {
    this.connection = connection;
    this.kind = connection === null ? RequestKind.Slot : RequestKind.Pinned;
  }
}

const EMPTY = Buffer.alloc(0);

// Moved to ./io.ts; re-exported for the modules that still import them from here.
export { FlushScheduler, writeBatch } from "./io.ts";
