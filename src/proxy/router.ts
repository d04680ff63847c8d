/**
 * Routes requests to shard masters by slot and hides the cluster's moves from clients.
 *
 * The router decides where each request goes (dispatch) and what becomes of its reply or of a
 * lost connection (onReply, onClose). The parts it drives live in ./upstream/:
 * - slot-map-source.ts: the slot map, read on a timer and at once on MOVED, CLUSTERDOWN or a loss;
 * - pools.ts: shared, dedicated (blocking) and session connections, reconnects and their rate;
 * - retry.ts: MOVED, ASK, TRYAGAIN/CLUSTERDOWN/LOADING backoff and parking within the retry budget;
 * - limits.ts: every fixed limit, and the default budget's formula;
 * - read-from.ts: which replica, if any, serves a client's read-only command (readFrom, READONLY).
 * Clients never see a redirect. The busy proxy is not reached through here (busy-link.ts).
 */
import type { ConnectionOptions } from "node:tls";
import type { Logger } from "pino";
import { parseAddress } from "../cluster/address.ts";
import type { Engine } from "../cluster/engine.ts";
import type { SlotMap } from "../cluster/slot-map.ts";
import { errorReply } from "../resp/encode.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { ReplicaReadErrors, UpstreamErrors } from "../errors.ts";
import { SocketConnection, type BackendAuth, type BackendConnection, type BackendEvents } from "./backend.ts";
import type { ProxyConfig } from "./config.ts";
import { RequestKind, type FlushScheduler, type Request } from "./request.ts";
import { WorkerStats } from "./stats.ts";
import { failoverBudgetMs } from "./upstream/limits.ts";
import { ConnectionPools, Lost, type Connect } from "./upstream/pools.ts";
import { connectInDatabase, DatabasePools } from "./upstream/database-pools.ts";
import {
  chooseReadNode,
  DEFAULT_MAX_REPLICA_LAG_BYTES,
  qualifyingReplicas,
  ReadFrom,
} from "./upstream/read-from.ts";
import { RetryPolicy } from "./upstream/retry.ts";
import { backendTlsOptions } from "../tls/backend.ts";
import { clusterMapReader, SlotMapSource, type MapReader } from "./upstream/slot-map-source.ts";

export interface RouterOptions {
  seeds: string[];
  connectionsPerShard: number;
  refreshIntervalMs: number;
  /** A fixed budget in ms, or "auto": derived from the cluster's node timeout (limits.ts). */
  retryBudgetMs: number | "auto";
  /** Opens backend connections (sockets in production, fakes in routing tests). */
  connect: Connect;
  /** Reads the slot map from a node. */
  reader: MapReader;
  /** Replicas further behind than this serve no reads (./upstream/read-from.ts). @default 1048576 */
  maxReplicaLagBytes?: number;
  log: Logger;
}

/** The credentials new backend connections use; replaced on a config reload, existing connections keep theirs. */
export interface BackendCredentials {
  auth: BackendAuth | undefined;
  /** TLS options (`backendTls`, its files read); unset: plain TCP. */
  tls?: ConnectionOptions | undefined;
}

/** A router configured from the proxy config, as workers and the busy proxy both need one. */
export function routerFor(
  config: ProxyConfig,
  flusher: FlushScheduler,
  log: Logger,
  credentials: BackendCredentials = backendCredentials(config),
  wrapReader: (reader: MapReader) => MapReader = (reader) => reader,
): ClusterRouter {
  return new ClusterRouter({
    seeds: config.seeds,
    connectionsPerShard: config.connectionsPerShard,
    refreshIntervalMs: config.refreshIntervalMs,
    retryBudgetMs: config.retryBudgetMs,
    maxReplicaLagBytes: config.maxReplicaLagBytes,
    connect: (address, protocol, events) =>
      new SocketConnection(
        parseAddress(address),
        address,
        protocol,
        credentials.auth,
        flusher,
        events,
        credentials.tls,
      ),
    reader: wrapReader(
      clusterMapReader(
        () => credentials.auth,
        () => credentials.tls,
      ),
    ),
    log,
  });
}

/** The credentials of the config: its `backendAuth`, and its `backendTls` with the files read now. */
export function backendCredentials(config: ProxyConfig): BackendCredentials {
  return {
    auth: config.backendAuth,
    tls: config.backendTls === undefined ? undefined : backendTlsOptions(config.backendTls),
  };
}

export class ClusterRouter implements BackendEvents {
  readonly stats = new WorkerStats();
  private readonly source: SlotMapSource;
  private readonly pools: ConnectionPools;
  /** Connections in databases other than 0, for clients that SELECT one (./databases.ts). */
  private readonly databasePools: DatabasePools;
  private readonly retry: RetryPolicy;
  private anyIndex = 0;
  /** Each master's replicas that may serve reads, as of the last map and replica state. */
  private readers = new Map<string, string[]>();
  private closed = false;
  /** Pub/Sub placement (./pubsub-hub.ts): told of every map, and may hold requests to a node. */
  private readonly mapListeners: ((map: SlotMap) => void)[] = [];
  private gate: ((address: string) => boolean) | null = null;
  /** Client-side caching (./tracking/hub.ts): the connection a tracked request takes, null to wait. */
  private tracked: ((address: string, protocol: 2 | 3, affinity: number) => BackendConnection | null) | null =
    null;
  /** The tracked connections open, closed with the router. */
  private readonly trackedConnections = new Set<BackendConnection>();

  constructor(private readonly options: RouterOptions) {
    this.source = new SlotMapSource(
      options.seeds,
      options.reader,
      options.refreshIntervalMs,
      (map) => this.onMap(map),
      options.log,
      undefined,
      { stats: this.stats },
    );
    this.pools = new ConnectionPools(
      options.connect,
      this,
      options.connectionsPerShard,
      this.stats,
      options.log,
    );
    this.databasePools = new DatabasePools(
      (db, events) =>
        new ConnectionPools(
          connectInDatabase(options.connect, db, options.log),
          events,
          options.connectionsPerShard,
          this.stats,
          options.log,
        ),
      this,
    );
    this.retry = new RetryPolicy(
      this.source,
      (request) => this.dispatch(request),
      () => this.retryBudgetMs,
      this.stats,
    );
  }

  /** Loads the first slot map and starts the refresh timer. Resolves even if no seed answers yet. */
  start(): Promise<void> {
    return this.source.start();
  }

  get map(): SlotMap | null {
    return this.source.map;
  }

  /** Version of the shards' Redis, reported to clients by HELLO and INFO. */
  get serverVersion(): string {
    return this.source.serverVersion;
  }

  /** The shards' engine (redis or valkey), read with the version. */
  get serverEngine(): Engine {
    return this.source.serverEngine;
  }

  /** The shards' engine's own version (Valkey's valkey_version), for HELLO and INFO server. */
  get serverEngineVersion(): string {
    return this.source.serverEngineVersion;
  }

  /** How many databases the shards have (`cluster-databases` on Valkey 9; 1 on Redis). */
  get databases(): number {
    return this.source.databases;
  }

  /** How long a request may wait for its shard: the configured value, or one that covers a failover. */
  get retryBudgetMs(): number {
    const configured = this.options.retryBudgetMs;
    return configured === "auto" ? failoverBudgetMs(this.source.nodeTimeoutMs) : configured;
  }

  /** Why the proxy is not ready (for /readyz), or undefined when it is. */
  get notReadyReason(): string | undefined {
    const map = this.source.map;
    if (map === null)
      return `no slot map read yet: ${this.source.lastErrors.join("; ") || "no seed answered"}`;
    if (!map.complete) return "the slot map does not cover every slot";
    const down = map.masters.filter((address) => !this.pools.isUp(address));
    if (down.length === 0) return undefined;
    return down.map((address) => `${address}: ${this.pools.lastError(address) ?? "connecting"}`).join("; ");
  }

  /** The proxy can serve every slot: the map is complete and every master has a live connection. */
  get ready(): boolean {
    return this.notReadyReason === undefined;
  }

  /** Requests held for an unavailable shard. */
  get waitingRequests(): number {
    return this.retry.waiting;
  }

  dispatch(request: Request): void {
    if (request.kind === RequestKind.Pinned) {
      const pinned = request.pinned!;
      if (pinned.closed) request.sink?.complete(request, errorReply(UpstreamErrors.watchedConnectionLost));
      else pinned.send(request);
      return;
    }
    let master =
      request.askTarget ??
      (request.kind === RequestKind.Node ? request.target! : this.masterFor(request.slot, this.anyIndex++));
    // Refused with MOVED by the owner the map still names: the map is older than that answer.
    if (
      request.movedTo !== null &&
      master === request.movedFrom &&
      request.askTarget === null &&
      request.kind === RequestKind.Slot
    )
      master = request.movedTo;
    if (master !== undefined && this.gate !== null && !this.gate(master)) return this.retry.park(request);
    const address =
      request.readFrom === ReadFrom.Master || master === undefined || request.tracked
        ? master
        : this.readNode(request, master);
    if (address === null) return;
    if (address === undefined && master !== undefined) {
      request.sink?.complete(request, errorReply(ReplicaReadErrors.noReplica(master)));
      return;
    }
    const pools = request.db === 0 ? this.pools : this.databasePools.of(request.db);
    // A tracked request is always in database 0: tracking and SELECT n refuse each other (./databases.ts).
    let connection =
      address === undefined
        ? null
        : request.tracked && this.tracked !== null
          ? this.tracked(address, request.protocol, request.affinity)
          : pools.shared(address, request.protocol, request.affinity);
    if (connection !== null && request.dedicated) {
      connection = pools.dedicated(address!, request.protocol);
      request.lentConnection = connection;
    }
    if (connection === null) this.retry.park(request);
    else connection.send(request);
  }

  /**
   * Where a read-only request goes under its client's read mode (./upstream/read-from.ts): a
   * qualifying replica of `master`, the master, or undefined for none; null when it is held until
   * the replicas' state is read (the first such read in a while). Only a single command routed by
   * slot, sent for the first time, may go to a replica.
   */
  private readNode(request: Request, master: string): string | undefined | null {
    if (
      request.kind !== RequestKind.Slot ||
      request.slot < 0 ||
      request.askTarget !== null ||
      request.redirects > 0 ||
      request.dedicated ||
      request.parts !== 1 ||
      request.collect !== null
    )
      return master;
    if (!this.source.replicaStateReady()) {
      this.retry.park(request);
      return null;
    }
    return chooseReadNode(
      request.readFrom,
      master,
      this.readers.get(master),
      request.affinity,
      (replica) => !this.pools.failing(replica, request.protocol),
    );
  }

  /** Address of the master serving a slot (or any master for -1), if one is known. */
  masterFor(slot: number, affinity = 0): string | undefined {
    const map = this.source.map;
    if (!map || map.masters.length === 0) return undefined;
    return slot >= 0 ? map.masterFor(slot) : map.masters[affinity % map.masters.length];
  }

  /** A connection owned by one client session: a WATCHed transaction, or a subscriber's pipe. */
  openSessionConnection(address: string, protocol: 2 | 3, db = 0): BackendConnection {
    return (db === 0 ? this.pools : this.databasePools.of(db)).openSession(address, protocol);
  }

  /**
   * Requests this worker has sent (or queued) to a node and not yet had answered, on every
   * connection: when it is 0, whatever they did there (their keyspace events) has happened.
   */
  inFlight(address: string): number {
    let requests = this.pools.inFlight(address) + this.databasePools.inFlight(address);
    for (const connection of this.trackedConnections)
      if (connection.address === address) requests += connection.pending;
    return requests;
  }

  /** A connection outside the pools whose lost requests are handled as a shared one's (reads resent). */
  openTrackedConnection(address: string, protocol: 2 | 3): BackendConnection {
    const connection = this.options.connect(address, protocol, this);
    this.trackedConnections.add(connection);
    return connection;
  }

  /** Tracked requests (CLIENT TRACKING's clients) take the connection `route` gives; null holds them. */
  setTracked(route: (address: string, protocol: 2 | 3, affinity: number) => BackendConnection | null): void {
    this.tracked = route;
  }

  /** Calls `listener` with every slot map read, before the requests held for a shard go again. */
  onMapChange(listener: (map: SlotMap) => void): void {
    this.mapListeners.push(listener);
  }

  /** Requests to a node `gate` refuses are held, within their retry budget, until `retryHeld`. */
  setGate(gate: (address: string) => boolean): void {
    this.gate = gate;
  }

  retryHeld(): void {
    this.retry.retryParked();
  }

  /** Re-reads the slot map (concurrent calls share one read). */
  refresh(): Promise<void> {
    return this.source.refresh();
  }

  /**
   * Follows a refusal (MOVED, ASK, TRYAGAIN, LOADING, CLUSTERDOWN, MASTERDOWN) for a request that
   * has not been through the router's own handling of it; false when the reply is final.
   */
  retryRefused(request: Request, reply: ReplyBytes): boolean {
    return this.retry.redirected(request, reply);
  }

  onReady(connection: BackendConnection, pools = this.pools): void {
    if (pools.ready(connection)) this.retry.retryParked();
  }

  onReply(
    connection: BackendConnection,
    request: Request,
    reply: ReplyBytes,
    firstByte: number,
    pools = this.pools,
  ): void {
    pools.replied(connection);
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
      if (request.kind !== RequestKind.Pinned) {
        if (this.retry.redirected(request, refusal, connection.address)) return;
      } else if (/^-(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(refusal.toString("latin1", 0, 14))) {
        // A WATCHed transaction cannot move (its watch lives on this node): answer as a failed
        // watch, and the client's optimistic-locking loop retries.
        request.sink?.complete(request, Buffer.from(request.protocol === 3 ? "_\r\n" : "*-1\r\n"));
        return;
      }
    } else if (firstByte === 45 && this.retry.redirected(request, reply, connection.address)) return;
    request.sink?.complete(request, reply);
  }

  onClose(
    connection: BackendConnection,
    sent: Request[],
    unsent: Request[],
    error: Error | undefined,
    pools = this.pools,
  ): void {
    const lost = pools.lost(connection, error);
    this.trackedConnections.delete(connection);
    if (lost === Lost.Idle) return;
    const reply = errorReply(
      UpstreamErrors.connectionLost(`shard ${connection.address}`, error?.message ?? "closed"),
    );
    for (const request of sent) {
      // A read on a shared connection can safely go again; a write might have run, so the client
      // must decide. A session's or a blocking request's own connection ends its requests.
      if (lost === Lost.Shared && request.readonly) this.dispatch(request);
      else request.sink?.complete(request, reply);
    }
    for (const request of unsent) this.dispatch(request);
    if (!this.closed && (lost === Lost.Shared || error)) void this.source.refresh();
  }

  private onMap(map: SlotMap): void {
    this.readers = qualifyingReplicas(
      map,
      this.source.replicaHealth,
      this.options.maxReplicaLagBytes ?? DEFAULT_MAX_REPLICA_LAG_BYTES,
    );
    const replicas = new Set([...this.readers.values()].flat());
    this.pools.keepOnly(map.masters, replicas);
    this.databasePools.keepOnly(map.masters, replicas);
    for (const listener of this.mapListeners) listener(map);
    this.retry.retryParked();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.source.close();
    this.pools.close();
    this.databasePools.close();
    for (const connection of this.trackedConnections) connection.close();
    this.retry.close();
  }
}
