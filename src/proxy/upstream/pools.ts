/**
 * The router's connections to shard nodes, by kind:
 *
 * - shared: `connectionsPerShard` pipelined connections per master and protocol, carrying many
 *   clients' requests; reconnected with jittered backoff under a per-process rate limit;
 * - dedicated: lent to one blocking request at a time, kept idle per node for the next one;
 * - session: owned by one client session (WATCH, Pub/Sub), never shared, never reconnected.
 *
 * Connections come from an injected `Connect`, so the routing decisions above them are testable
 * with fake connections and no Redis process.
 */
import type { Logger } from "pino";
import { ConnectionState, type BackendConnection, type BackendEvents } from "../backend.ts";
import { encodeCommand } from "../../resp/request-parser.ts";
import { Request } from "../request.ts";
import type { WorkerStats } from "../stats.ts";
import {
  MAX_IDLE_DEDICATED,
  RECONNECT_BASE_MS,
  RECONNECT_CAP_MS,
  RECONNECT_THROTTLED_MS,
  RECONNECTS_PER_SECOND,
  RETIRED_CLOSE_MS,
} from "./limits.ts";

/** Opens a connection to a node; its events (ready, reply, close) go to `events`. */
export type Connect = (address: string, protocol: 2 | 3, events: BackendEvents) => BackendConnection;

/** What a closed connection was to the pools, which decides what becomes of its requests. */
export const enum Lost {
  /** A session's or a blocking request's own connection: nothing reconnects. */
  Owned,
  /** An idle dedicated connection: it carried nothing. */
  Idle,
  /** A shared connection (or one of a retired node): reconnected when the node is still a master. */
  Shared,
}

interface Pool {
  address: string;
  protocol: 2 | 3;
  /** A replica's pool: its connections send READONLY first, or the replica answers MOVED. */
  replica: boolean;
  connections: (BackendConnection | null)[];
  /** Consecutive failed connects; 0 when the node answers. */
  failures: number;
  /** Why the last connection closed, while failing (readiness reports it). */
  lastError: string | undefined;
  retired: boolean;
}

export class ConnectionPools {
  /** Shared pools by node address, one map per protocol (no key string is built per request). */
  private readonly pools: Record<2 | 3, Map<string, Pool>> = { 2: new Map(), 3: new Map() };
  private readonly lent = new Set<BackendConnection>();
  private readonly idle = new Map<string, BackendConnection[]>();
  private readonly sessions = new Set<BackendConnection>();
  /** Every connection not yet closed that may carry writes, by node (shared, retired, dedicated, idle, session): what `inFlight` counts. */
  private readonly byNode = new Map<string, Set<BackendConnection>>();
  /** Replicas that serve reads, as of the last `keepOnly`. */
  private replicas: ReadonlySet<string> = new Set();
  private reconnectTokens = RECONNECTS_PER_SECOND;
  private readonly reconnectRefill: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly connect: Connect,
    private readonly events: BackendEvents,
    private readonly perNode: number,
    private readonly stats: WorkerStats,
    private readonly log: Logger,
  ) {
    this.reconnectRefill = setInterval(() => (this.reconnectTokens = RECONNECTS_PER_SECOND), 1000);
    this.reconnectRefill.unref();
  }

  /**
   * The shared connection a request takes to a node, or null while the node keeps refusing
   * connections (its requests are held instead of queued on it). A client always uses the same
   * one of the pool (by `affinity`), so its commands to one shard keep their order.
   */
  shared(address: string, protocol: 2 | 3, affinity: number): BackendConnection | null {
    let pool = this.pools[protocol].get(address);
    if (pool === undefined) {
      pool = {
        address,
        protocol,
        replica: this.replicas.has(address),
        connections: [],
        failures: 0,
        lastError: undefined,
        retired: false,
      };
      this.pools[protocol].set(address, pool);
      for (let i = 0; i < this.perNode; i++) pool.connections.push(this.poolConnect(pool));
    }
    if (pool.failures > 0) return null;
    const preferred = pool.connections[affinity % pool.connections.length];
    if (preferred && preferred.state !== ConnectionState.Closed) return preferred;
    for (const c of pool.connections) if (c !== null && c.state !== ConnectionState.Closed) return c;
    return null;
  }

  /** The node has a RESP2 pool that is not failing (readiness: every master has one). */
  isUp(address: string): boolean {
    const pool = this.pools[2].get(address);
    return pool !== undefined && pool.failures === 0;
  }

  /** Why the node's RESP2 pool is failing, if it is. */
  lastError(address: string): string | undefined {
    const pool = this.pools[2].get(address);
    return pool !== undefined && pool.failures > 0 ? pool.lastError : undefined;
  }

  /** A connection of its own for one request at a time (a blocking command must not hold up a pipeline). */
  dedicated(address: string, protocol: 2 | 3): BackendConnection {
    const idle = this.idle.get(`${protocol}|${address}`);
    let connection = idle?.pop();
    while (connection !== undefined && connection.state === ConnectionState.Closed) connection = idle?.pop();
    connection ??= this.open(address, protocol);
    this.lent.add(connection);
    return connection;
  }

  /** A connection owned by one client session: a WATCHed transaction, or a subscriber's pipe. */
  openSession(address: string, protocol: 2 | 3): BackendConnection {
    const connection = this.open(address, protocol);
    this.sessions.add(connection);
    return connection;
  }

  /** A reply came on `connection`: a lent one with nothing left in flight goes back to the idle list. */
  replied(connection: BackendConnection): void {
    if (!this.lent.has(connection) || connection.pending !== 0) return;
    this.lent.delete(connection);
    const key = `${connection.protocol}|${connection.address}`;
    const idle = this.idle.get(key) ?? [];
    if (idle.length >= MAX_IDLE_DEDICATED || this.closed) {
      connection.close();
      return;
    }
    idle.push(connection);
    this.idle.set(key, idle);
  }

  /** A connection is ready; true when its node had been failing and answers again. */
  ready(connection: BackendConnection): boolean {
    const pool = this.pools[connection.protocol].get(connection.address);
    if (pool === undefined || pool.failures === 0) return false;
    pool.failures = 0;
    this.log.info({ node: connection.address }, "shard node reachable again");
    return true;
  }

  /** Opens a connection; `writes`: it may carry writes (a replica pool's carry reads only, uncounted). */
  private open(address: string, protocol: 2 | 3, writes = true): BackendConnection {
    const connection = this.connect(address, protocol, this.events);
    if (!writes) return connection;
    let open = this.byNode.get(address);
    if (open === undefined) this.byNode.set(address, (open = new Set()));
    open.add(connection);
    return connection;
  }

  /**
   * Requests sent (or queued behind a connect) to a node and not yet answered, on every kind of
   * connection that may carry writes (not a replica pool's: the reads a demoted master serves as a
   * replica must not hold up leaving it), those of a pool retired meanwhile included.
   */
  inFlight(address: string): number {
    let requests = 0;
    for (const connection of this.byNode.get(address) ?? []) requests += connection.pending;
    return requests;
  }

  /** Forgets a closed connection and, for a shared one of a current master, schedules its reconnect. */
  lost(connection: BackendConnection, error: Error | undefined): Lost {
    const open = this.byNode.get(connection.address);
    if (open?.delete(connection) && open.size === 0) this.byNode.delete(connection.address);
    if (this.sessions.delete(connection) || this.lent.delete(connection) || connection.pipe !== null)
      return Lost.Owned;
    const idle = this.idle.get(`${connection.protocol}|${connection.address}`);
    const at = idle ? idle.indexOf(connection) : -1;
    if (at >= 0) {
      idle!.splice(at, 1);
      return Lost.Idle;
    }
    const pool = this.pools[connection.protocol].get(connection.address);
    const index = pool ? pool.connections.indexOf(connection) : -1;
    if (pool && index >= 0) {
      pool.connections[index] = null;
      pool.lastError = error?.message ?? "connection closed";
      if (!this.closed && !pool.retired) {
        if (++pool.failures === 1)
          this.log.warn({ node: connection.address, err: error?.message }, "shard connection lost");
        this.scheduleReconnect(pool, index);
      }
    }
    return Lost.Shared;
  }

  private poolConnect(pool: Pool): BackendConnection {
    const connection = this.open(pool.address, pool.protocol, !pool.replica);
    // Queued before any client request (behind the handshake); its +OK goes to no client.
    if (pool.replica) connection.send(readonlyRequest(pool.protocol));
    return connection;
  }

  /** Whether the node's shared connections keep failing (its reads had better go elsewhere). */
  failing(address: string, protocol: 2 | 3): boolean {
    const pool = this.pools[protocol].get(address);
    return pool !== undefined && pool.failures > 0;
  }

  private scheduleReconnect(pool: Pool, index: number): void {
    const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.min(pool.failures, 10));
    const attempt = () => {
      if (this.closed || pool.retired || pool.connections[index] !== null) return;
      if (this.reconnectTokens <= 0) {
        setTimeout(attempt, RECONNECT_THROTTLED_MS * (1 + Math.random())).unref();
        return;
      }
      this.reconnectTokens--;
      this.stats.reconnects++;
      pool.connections[index] = this.poolConnect(pool);
    };
    setTimeout(attempt, Math.random() * ceiling).unref();
  }

  /**
   * Connects to every master now (so first requests do not wait and readiness is known), and
   * retires the pools of nodes that are no longer masters or replicas serving reads (or changed
   * between the two): no reconnects, connections closed once their replies are in. Replicas'
   * pools are opened by their first read.
   */
  keepOnly(masters: readonly string[], replicas: ReadonlySet<string> = new Set()): void {
    this.replicas = replicas;
    const current = new Set(masters);
    for (const pool of [...this.pools[2].values(), ...this.pools[3].values()]) {
      if (pool.replica ? replicas.has(pool.address) : current.has(pool.address)) continue;
      pool.retired = true;
      this.pools[pool.protocol].delete(pool.address);
      for (const c of pool.connections) {
        if (c && c.pending === 0) c.close();
        else if (c) setTimeout(() => c.close(), RETIRED_CLOSE_MS).unref();
      }
    }
    for (const address of masters) this.shared(address, 2, 0);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.reconnectRefill);
    for (const pools of [this.pools[2], this.pools[3]]) {
      for (const pool of pools.values()) for (const c of pool.connections) c?.close();
      pools.clear();
    }
    for (const c of [...this.lent, ...this.sessions, ...[...this.idle.values()].flat()]) c.close();
  }
}

const READONLY = encodeCommand(["READONLY"]);

/** The READONLY a replica connection starts with; a request with no client waiting for it. */
function readonlyRequest(protocol: 2 | 3): Request {
  const request = new Request(null);
  request.frame = READONLY;
  request.protocol = protocol;
  return request;
}
