/**
 * A worker's link to its host's busy proxy (multi-key commands across slots, cluster-wide
 * commands): one pipelined connection per client protocol over the busy proxy's unix socket.
 *
 * It is not a shard: no slot map, no redirects. The busy proxy does its own routing and retrying
 * against the shards, so its replies, errors included, go to the client as they are. What the link
 * does handle is the busy proxy being away (the host restarts it when it dies): requests wait for
 * the reconnect within the retry budget, a read lost in flight goes again, and a write lost in
 * flight gets the "may or may not have run" error.
 */
import type { Logger } from "pino";
import { errorReply } from "../resp/encode.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { UpstreamErrors } from "../errors.ts";
import { SocketConnection, type BackendConnection, type BackendEvents } from "./backend.ts";
import type { FlushScheduler, Request } from "./request.ts";
import { RECONNECT_BASE_MS, RECONNECT_CAP_MS, UNAVAILABLE_REFRESH_MS } from "./upstream/limits.ts";

/** Opens a connection to the busy proxy speaking `protocol`; its events go to `events`. */
export type BusyConnect = (protocol: 2 | 3, events: BackendEvents) => BackendConnection;

const NAME = "the busy proxy";

/** The link over the busy proxy's socket at `path`. */
export function busyLinkTo(
  path: string,
  flusher: FlushScheduler,
  budgetMs: () => number,
  log: Logger,
): BusyLink {
  return new BusyLink(
    (protocol, events) => new SocketConnection({ path }, NAME, protocol, undefined, flusher, events),
    budgetMs,
    log,
  );
}

export class BusyLink implements BackendEvents {
  private readonly connections: Record<2 | 3, BackendConnection | null> = { 2: null, 3: null };
  /** Consecutive lost connections per protocol; 0 once connected. */
  private readonly failures: Record<2 | 3, number> = { 2: 0, 3: 0 };
  private parked: Request[] = [];
  private parkTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly connect: BusyConnect,
    /** How long a request may wait for the busy proxy to come back, in ms. */
    private readonly budgetMs: () => number,
    private readonly log: Logger,
  ) {}

  send(request: Request): void {
    if (this.closed) {
      request.sink?.complete(request, errorReply(UpstreamErrors.shuttingDown));
      return;
    }
    const protocol = request.protocol;
    if (this.failures[protocol] > 0) {
      this.park(request);
      return;
    }
    (this.connections[protocol] ??= this.connect(protocol, this)).send(request);
  }

  /** Requests waiting for the busy proxy to come back. */
  get waitingRequests(): number {
    return this.parked.length;
  }

  onReady(connection: BackendConnection): void {
    if (this.failures[connection.protocol] === 0) return;
    this.failures[connection.protocol] = 0;
    this.log.info("busy proxy reachable again");
    this.retryParked();
  }

  /** The busy proxy's reply is final: it has followed every redirect and retry itself. */
  onReply(_connection: BackendConnection, request: Request, reply: ReplyBytes): void {
    request.sink?.complete(request, reply);
  }

  onClose(connection: BackendConnection, sent: Request[], unsent: Request[], error: Error | undefined): void {
    const protocol = connection.protocol;
    if (this.connections[protocol] === connection) this.connections[protocol] = null;
    const lost = errorReply(UpstreamErrors.connectionLost(NAME, error?.message ?? "closed"));
    if (this.closed) {
      for (const request of [...sent, ...unsent]) request.sink?.complete(request, lost);
      return;
    }
    if (++this.failures[protocol] === 1) this.log.warn({ err: error?.message }, "busy proxy connection lost");
    this.scheduleReconnect(protocol);
    // A read can safely go again; a write might have run, so the client must decide.
    for (const request of sent) {
      if (request.readonly) this.park(request);
      else request.sink?.complete(request, lost);
    }
    for (const request of unsent) this.park(request);
  }

  private scheduleReconnect(protocol: 2 | 3): void {
    const ceiling = Math.min(
      RECONNECT_CAP_MS,
      RECONNECT_BASE_MS * 2 ** Math.min(this.failures[protocol], 10),
    );
    setTimeout(() => {
      if (!this.closed && this.connections[protocol] === null)
        this.connections[protocol] = this.connect(protocol, this);
    }, Math.random() * ceiling).unref();
  }

  private park(request: Request): void {
    if (request.deadline === 0) request.deadline = Date.now() + this.budgetMs();
    this.parked.push(request);
    this.parkTimer ??= setInterval(() => this.retryParked(), UNAVAILABLE_REFRESH_MS);
  }

  private retryParked(): void {
    const parked = this.parked;
    this.parked = [];
    const now = Date.now();
    for (const request of parked) {
      if (now >= request.deadline)
        request.sink?.complete(request, errorReply(UpstreamErrors.busyProxyUnavailable(this.budgetMs())));
      else this.send(request);
    }
    if (this.parked.length === 0 && this.parkTimer !== null) {
      clearInterval(this.parkTimer);
      this.parkTimer = null;
    }
  }

  close(): void {
    this.closed = true;
    if (this.parkTimer !== null) clearInterval(this.parkTimer);
    this.parkTimer = null;
    for (const request of this.parked)
      request.sink?.complete(request, errorReply(UpstreamErrors.shuttingDown));
    this.parked = [];
    for (const connection of [this.connections[2], this.connections[3]]) connection?.close();
  }
}
