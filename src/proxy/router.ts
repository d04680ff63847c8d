/**
 * Routes requests to shard masters by slot and hides the cluster's moves from clients.
 *
 * It keeps the slot map fresh (on a timer, and at once on MOVED, a lost connection or CLUSTERDOWN),
 * follows MOVED and ASK itself, retries TRYAGAIN/CLUSTERDOWN/LOADING with backoff, and holds
 * requests for a shard that is down (failover in progress) until a master serves their slot again
 * or the retry budget runs out. Clients never see a redirect.
 */
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { slotMapFromShards, slotMapFromSlots, type SlotMap } from "../cluster/slot-map.ts";
import { errorReply } from "../resp/encode.ts";
import { replyBuffer, type ReplyBytes } from "../resp/reply-scanner.ts";
import { BackendConnection, ConnectionState, type BackendAuth, type BackendEvents } from "./backend.ts";
import type { FlushScheduler, Request } from "./request.ts";
import type { ProxyConfig } from "./config.ts";
import { WorkerStats } from "./metrics.ts";

export interface RouterOptions {
  seeds: string[];
  auth: BackendAuth | undefined;
  connectionsPerShard: number;
  refreshIntervalMs: number;
  retryBudgetMs: number;
  flusher: FlushScheduler;
  log: Logger;
}

const MAX_REDIRECTS = 16;
/** Idle connections kept per node for blocking commands. */
const MAX_IDLE_DEDICATED = 8;
/** While a shard is unavailable, the map is re-read this often (failover completes within a few seconds). */
const UNAVAILABLE_REFRESH_MS = 100;
/** Reconnect backoff: full jitter between 0 and min(cap, base * 2^attempt). */
const RECONNECT_BASE_MS = 50;
const RECONNECT_CAP_MS = 2000;
/** At most this many new backend connections per second per worker, so a restarted shard meets no storm. */
const RECONNECTS_PER_SECOND = 20;

interface Pool {
  address: string;
  protocol: 2 | 3;
  connections: (BackendConnection | null)[];
  /** Consecutive failed connects; 0 when the node answers. */
  failures: number;
  retired: boolean;
}

/** A router configured from the proxy config, as workers and the busy proxy both need one. */
export function routerFor(config: ProxyConfig, flusher: FlushScheduler, log: Logger): ClusterRouter {
  return new ClusterRouter({
    seeds: config.seeds,
    auth: config.backendAuth,
    connectionsPerShard: config.connectionsPerShard,
    refreshIntervalMs: config.refreshIntervalMs,
    retryBudgetMs: config.retryBudgetMs,
    flusher,
    log,
  });
}

export class ClusterRouter implements BackendEvents {
  map: SlotMap | null = null;
  readonly stats = new WorkerStats();
  /** Version of the shards' Redis, reported to clients by HELLO and INFO (read once from a shard). */
  serverVersion = "7.0.0";
  private versionRead = false;
  /** Shared pools by node address, one map per protocol (no key string is built per request). */
  private readonly pools: Record<2 | 3, Map<string, Pool>> = { 2: new Map(), 3: new Map() };
  /** Connections lent to one blocking request at a time, and those idle between such requests. */
  private readonly dedicated = new Set<BackendConnection>();
  private readonly idleDedicated = new Map<string, BackendConnection[]>();
  /** Connections owned by a client session (WATCH, Pub/Sub): never shared, never reconnected. */
  private readonly sessions = new Set<BackendConnection>();
  private parked: Request[] = [];
  private parkTimer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly control = new Map<string, Redis>();
  private anyIndex = 0;
  private reconnectTokens = RECONNECTS_PER_SECOND;
  private reconnectRefill: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: RouterOptions) {
    this.reconnectRefill = setInterval(() => (this.reconnectTokens = RECONNECTS_PER_SECOND), 1000);
    this.reconnectRefill.unref();
  }

  /** Loads the first slot map and starts the refresh timer. Resolves even if no seed answers yet. */
  async start(): Promise<void> {
    this.refreshTimer = setInterval(() => void this.refresh(), this.options.refreshIntervalMs);
    this.refreshTimer.unref();
    await this.refresh();
  }

  /** The proxy can serve every slot: the map is complete and every master has a live connection. */
  get ready(): boolean {
    if (!this.map || !this.map.complete) return false;
    return this.map.masters.every((address) => {
      const pool = this.pools[2].get(address);
      return pool !== undefined && pool.failures === 0;
    });
  }

  dispatch(request: Request): void {
    if (request.pinned !== null) {
      if (request.pinned.state === ConnectionState.Closed) {
        request.sink?.complete(
          request,
          errorReply("ERR the connection this transaction watched on was lost"),
        );
      } else request.pinned.send(request);
      return;
    }
    const map = this.map;
    let address: string | undefined;
    if (request.target !== null) address = request.target;
    else if (request.askTarget !== null) address = request.askTarget;
    else if (request.slot >= 0) address = map?.masterFor(request.slot);
    else if (map && map.masters.length > 0) address = map.masters[this.anyIndex++ % map.masters.length];
    let connection =
      address === undefined ? null : this.connectionTo(address, request.protocol, request.affinity);
    if (connection !== null && request.dedicated) {
      connection = this.dedicatedConnection(address!, request.protocol);
      request.lentConnection = connection;
    }
    if (connection === null) {
      this.park(request);
      return;
    }
    connection.send(request);
  }

  /** Requests held for an unavailable shard. */
  get waitingRequests(): number {
    return this.parked.length;
  }

  /** Address of the master serving a slot (or any master for -1), if one is known. */
  masterFor(slot: number, affinity = 0): string | undefined {
    const map = this.map;
    if (!map || map.masters.length === 0) return undefined;
    return slot >= 0 ? map.masterFor(slot) : map.masters[affinity % map.masters.length];
  }

  /**
   * A connection of its own for one request at a time (a blocking command must not hold up a
   * shared pipeline). Idle ones are kept per node for the next blocking command.
   */
  private dedicatedConnection(address: string, protocol: 2 | 3): BackendConnection {
    const key = `${protocol}|${address}`;
    const idle = this.idleDedicated.get(key);
    let connection = idle?.pop();
    while (connection !== undefined && connection.state === ConnectionState.Closed) connection = idle?.pop();
    connection ??= new BackendConnection(address, protocol, this.options.auth, this.options.flusher, this);
    this.dedicated.add(connection);
    return connection;
  }

  /** A connection owned by one client session: a WATCHed transaction, or a subscriber's pipe. */
  openSessionConnection(address: string, protocol: 2 | 3): BackendConnection {
    const connection = new BackendConnection(
      address,
      protocol,
      this.options.auth,
      this.options.flusher,
      this,
    );
    this.sessions.add(connection);
    return connection;
  }

  /**
   * The connection a request takes to a node. A client always uses the same one of the pool
   * (by `affinity`), so its commands to one shard keep their order; others spread over the pool.
   */
  private connectionTo(address: string, protocol: 2 | 3, affinity: number): BackendConnection | null {
    let pool = this.pools[protocol].get(address);
    if (pool === undefined) {
      pool = { address, protocol, connections: [], failures: 0, retired: false };
      this.pools[protocol].set(address, pool);
      for (let i = 0; i < this.options.connectionsPerShard; i++) pool.connections.push(this.connect(pool));
    }
    // A node that keeps refusing connections is down: hold its requests instead of queueing them on it.
    if (pool.failures > 0) return null;
    const preferred = pool.connections[affinity % pool.connections.length];
    if (preferred && preferred.state !== ConnectionState.Closed) return preferred;
    for (const c of pool.connections) if (c !== null && c.state !== ConnectionState.Closed) return c;
    return null;
  }

  private connect(pool: Pool): BackendConnection {
    return new BackendConnection(pool.address, pool.protocol, this.options.auth, this.options.flusher, this);
  }

  onReady(connection: BackendConnection): void {
    const pool = this.pools[connection.protocol].get(connection.address);
    if (pool && pool.failures > 0) {
      pool.failures = 0;
      this.options.log.info({ node: connection.address }, "shard node reachable again");
      this.retryParked();
    }
  }

  onReply(connection: BackendConnection, request: Request, reply: ReplyBytes, firstByte: number): void {
    if (this.dedicated.has(connection) && connection.pending === 0) this.releaseDedicated(connection);
    if (request.collect !== null) {
      // Independent parts: the sink retries the refused ones (retryRefused), not the whole frame.
      request.sink?.complete(request, reply);
      return;
    }
    if (request.partError !== null) {
      // A transaction block whose queued commands were refused (EXEC answered EXECABORT): if a
      // redirect caused it, nothing ran, so the whole block goes again where the slot lives now.
      const refusal = request.partError;
      request.partError = null;
      if (request.pinned === null && this.redirected(request, refusal)) return;
      if (
        request.pinned !== null &&
        /^-(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(refusal.toString("latin1", 0, 14))
      ) {
        // A WATCHed transaction cannot move (its watch lives on this node): answer as a failed
        // watch, and the client's optimistic-locking loop retries.
        request.sink?.complete(request, Buffer.from(request.protocol === 3 ? "_\r\n" : "*-1\r\n"));
        return;
      }
    } else if (firstByte === 45 && this.redirected(request, reply)) return;
    request.sink?.complete(request, reply);
  }

  private releaseDedicated(connection: BackendConnection): void {
    this.dedicated.delete(connection);
    const key = `${connection.protocol}|${connection.address}`;
    const idle = this.idleDedicated.get(key) ?? [];
    if (idle.length >= MAX_IDLE_DEDICATED || this.closed) {
      connection.close();
      return;
    }
    idle.push(connection);
    this.idleDedicated.set(key, idle);
  }

  /**
   * Follows a refusal (MOVED, ASK, TRYAGAIN, LOADING, CLUSTERDOWN, MASTERDOWN) for a request that
   * has not been through the router's own handling of it; false when the reply is final.
   */
  retryRefused(request: Request, reply: ReplyBytes): boolean {
    return this.redirected(request, reply);
  }

  /** Handles cluster redirects and transient errors; returns false when the reply goes to the client as is. */
  private redirected(request: Request, reply: ReplyBytes): boolean {
    const head = Buffer.isBuffer(reply) ? reply : replyBuffer(reply);
    const c1 = head[1];
    // Cheap first-letter test before any string is made: M(OVED) A(SK) T(RYAGAIN) C(LUSTERDOWN) L(OADING).
    if (c1 !== 77 && c1 !== 65 && c1 !== 84 && c1 !== 67 && c1 !== 76) return false;
    const text = head.toString("latin1", 1, head.length - 2);
    this.stats.redirects++;
    const space = text.indexOf(" ");
    const kind = space < 0 ? text : text.slice(0, space);
    switch (kind) {
      case "MOVED":
      case "ASK": {
        const [, slotText, target] = text.split(" ");
        if (target === undefined || ++request.redirects > MAX_REDIRECTS) return false;
        if (kind === "MOVED") {
          this.map?.assign(Number(slotText), target);
          request.askTarget = null;
          void this.refresh();
        } else {
          request.askTarget = target;
        }
        this.dispatch(request);
        return true;
      }
      case "TRYAGAIN":
      case "LOADING":
      case "CLUSTERDOWN":
      case "MASTERDOWN": {
        if (request.deadline === 0) request.deadline = Date.now() + this.options.retryBudgetMs;
        if (Date.now() >= request.deadline) return false;
        request.askTarget = null;
        if (kind !== "TRYAGAIN") void this.refresh();
        const delay = Math.min(200, 10 * 2 ** Math.min(request.redirects++, 5));
        setTimeout(() => this.dispatch(request), delay);
        return true;
      }
      default:
        return false;
    }
  }

  onClose(connection: BackendConnection, sent: Request[], unsent: Request[], error: Error | undefined): void {
    const owned = this.sessions.delete(connection) || this.dedicated.delete(connection);
    if (owned || connection.pipe !== null) {
      // A session's or a blocking request's own connection: its requests end, nothing reconnects.
      for (const request of sent) request.sink?.complete(request, lostReply(connection, error));
      for (const request of unsent) this.dispatch(request);
      if (error && !this.closed) void this.refresh();
      return;
    }
    const idle = this.idleDedicated.get(`${connection.protocol}|${connection.address}`);
    if (idle?.includes(connection)) {
      idle.splice(idle.indexOf(connection), 1);
      return;
    }
    const pool = this.pools[connection.protocol].get(connection.address);
    const index = pool ? pool.connections.indexOf(connection) : -1;
    if (pool && index >= 0) {
      pool.connections[index] = null;
      if (!this.closed && !pool.retired) {
        pool.failures++;
        if (pool.failures === 1) {
          this.options.log.warn({ node: connection.address, err: error?.message }, "shard connection lost");
        }
        this.scheduleReconnect(pool, index);
      }
    }
    const lost = lostReply(connection, error);
    for (const request of sent) {
      // A read can safely go again; a write might have run, so the client must decide.
      if (request.readonly) this.dispatch(request);
      else request.sink?.complete(request, lost);
    }
    for (const request of unsent) this.dispatch(request);
    if (!this.closed) void this.refresh();
  }

  private scheduleReconnect(pool: Pool, index: number): void {
    if (index < 0) return;
    const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.min(pool.failures, 10));
    const attempt = () => {
      if (this.closed || pool.retired || pool.connections[index] !== null) return;
      if (this.reconnectTokens <= 0) {
        setTimeout(attempt, 100 + Math.random() * 200).unref();
        return;
      }
      this.reconnectTokens--;
      this.stats.reconnects++;
      pool.connections[index] = this.connect(pool);
    };
    setTimeout(attempt, Math.random() * ceiling).unref();
  }

  private park(request: Request): void {
    if (request.deadline === 0) request.deadline = Date.now() + this.options.retryBudgetMs;
    this.parked.push(request);
    if (this.parkTimer === null) {
      this.parkTimer = setInterval(() => {
        void this.refresh();
        this.retryParked();
      }, UNAVAILABLE_REFRESH_MS);
    }
  }

  private retryParked(): void {
    const parked = this.parked;
    this.parked = [];
    const now = Date.now();
    for (const request of parked) {
      if (now >= request.deadline) {
        request.sink?.complete(request, errorReply(this.unavailableMessage(request)));
      } else {
        this.dispatch(request);
      }
    }
    if (this.parked.length === 0 && this.parkTimer !== null) {
      clearInterval(this.parkTimer);
      this.parkTimer = null;
    }
  }

  private unavailableMessage(request: Request): string {
    const what = request.slot >= 0 ? `slot ${request.slot}` : "this command";
    const owner = request.slot >= 0 ? this.map?.masterFor(request.slot) : undefined;
    return (
      `CLUSTERDOWN no reachable master serves ${what}${owner ? ` (${owner} is not answering)` : ""}; ` +
      `retried for ${this.options.retryBudgetMs} ms`
    );
  }

  /** Re-reads the slot map. Concurrent calls share one read; calls during a read cause one more. */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        await this.loadMap();
      } while (this.refreshAgain && !this.closed);
    })().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async loadMap(): Promise<void> {
    const candidates = new Set<string>([
      ...(this.map?.masters ?? []),
      ...(this.map?.nodes.map((n) => n.address) ?? []),
      ...this.options.seeds,
    ]);
    let best: SlotMap | null = null;
    const errors: string[] = [];
    for (const address of candidates) {
      try {
        const map = await this.readMap(address);
        if (!best || coverage(map) > coverage(best)) best = map;
        if (map.complete) break;
      } catch (err) {
        errors.push(`${address}: ${(err as Error).message}`);
      }
    }
    if (!best) {
      this.options.log.warn({ errors }, "no cluster node answered the slot map request");
      return;
    }
    this.applyMap(best);
  }

  private async readMap(address: string): Promise<SlotMap> {
    const client = this.controlConnection(address);
    if (client.status === "wait") await client.connect();
    let map: SlotMap;
    try {
      map = slotMapFromShards(await client.call("CLUSTER", "SHARDS"));
    } catch (err) {
      if (!/unknown subcommand|unknown command/i.test((err as Error).message)) throw err;
      map = slotMapFromSlots(await client.call("CLUSTER", "SLOTS"));
    }
    if (!this.versionRead) {
      this.versionRead = true;
      const info = String(await client.call("INFO", "server"));
      this.serverVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? this.serverVersion;
    }
    return map;
  }

  private controlConnection(address: string): Redis {
    let client = this.control.get(address);
    if (client && client.status !== "end" && client.status !== "close") return client;
    const split = address.lastIndexOf(":");
    client = new Redis({
      host: address.slice(0, split).replace(/^\[|\]$/g, ""),
      port: Number(address.slice(split + 1)),
      username: this.options.auth?.username,
      password: this.options.auth?.password,
      lazyConnect: true,
      connectTimeout: 1000,
      commandTimeout: 2000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      retryStrategy: () => null,
    });
    client.on("error", () => {});
    this.control.set(address, client);
    return client;
  }

  private applyMap(map: SlotMap): void {
    this.map = map;
    const masters = new Set(map.masters);
    // Connect to every master now, so the first requests do not wait for a connect and readiness is known.
    for (const address of masters) this.connectionTo(address, 2, 0);
    for (const [address, pool] of [...this.pools[2], ...this.pools[3]]) {
      if (masters.has(address) || address.startsWith("unix:")) continue;
      // No longer a master: stop reconnecting; close connections once their replies are in.
      pool.retired = true;
      this.pools[pool.protocol].delete(address);
      for (const c of pool.connections) {
        if (c && c.pending === 0) c.close();
        else if (c) setTimeout(() => c.close(), 5000).unref();
      }
    }
    if (this.parked.length > 0) this.retryParked();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.parkTimer) clearInterval(this.parkTimer);
    clearInterval(this.reconnectRefill);
    for (const pools of [this.pools[2], this.pools[3]]) {
      for (const pool of pools.values()) for (const c of pool.connections) c?.close();
      pools.clear();
    }
    for (const c of [...this.dedicated, ...this.sessions, ...[...this.idleDedicated.values()].flat()])
      c.close();
    for (const client of this.control.values()) client.disconnect();
    this.control.clear();
    for (const request of this.parked)
      request.sink?.complete(request, errorReply("ERR proxy is shutting down"));
    this.parked = [];
  }
}

function lostReply(connection: BackendConnection, error: Error | undefined): Buffer {
  const peer = connection.address.startsWith("unix:") ? "the busy proxy" : `shard ${connection.address}`;
  return errorReply(
    `ERR connection to ${peer} was lost before it replied (${error?.message ?? "closed"}); ` +
      "the command may or may not have run",
  );
}

function coverage(map: SlotMap): number {
  let n = 0;
  for (const owner of map.owner) if (owner >= 0) n++;
  return n;
}
