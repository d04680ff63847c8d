/**
 * One client command on its way through the proxy.
 */
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import type { BackendConnection } from "./backend.ts";

/** Whoever waits for a request's reply. */
export interface ReplySink {
  /** Called once per request, in any order; the sink restores the order the client sent. */
  complete(request: Request, reply: ReplyBytes): void;
}

export class Request {
  /** Raw RESP bytes to send (the client's own bytes, untouched). */
  frame: Buffer = EMPTY;
  /** Slot of the request's keys, or -1 when keyless. */
  slot = -1;
  /** The reply, once it came; null while pending. */
  reply: ReplyBytes | null = null;
  done = false;
  /** Safe to send again after a lost connection (it only reads). */
  readonly = false;
  /** Redirects followed and retries made, to bound both. */
  redirects = 0;
  /** When the request stops waiting for an unavailable shard (ms since epoch; 0 = not waiting yet). */
  deadline = 0;
  /** Goes to this address whatever its slot (the busy proxy), or null to route by slot. */
  target: string | null = null;
  /** Sent with ASKING first to this node (during a slot migration). */
  askTarget: string | null = null;
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
  /** Needs a connection of its own while it waits (blocking commands). */
  dedicated = false;
  /** The connection lent to a dedicated request, so it can be closed if the client goes away. */
  lentConnection: BackendConnection | null = null;
  /** Must go on this connection (a WATCHed transaction), whatever the slot map says. */
  pinned: BackendConnection | null = null;
  /** The client's protocol: requests ride backend connections that speak the same one. */
  protocol: 2 | 3 = 2;

  constructor(public sink: ReplySink | null) {}
}

const EMPTY = Buffer.alloc(0);

// Moved to ./io.ts; re-exported for the modules that still import them from here.
export { FlushScheduler, writeBatch } from "./io.ts";
