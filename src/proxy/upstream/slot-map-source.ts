/**
 * Where the router's slot map comes from: read from the cluster on a timer and at once when
 * something suggests it changed (MOVED, a lost connection, CLUSTERDOWN), with MOVED applied to
 * the map before the read confirms it. Each read also takes the cluster's `cluster-node-timeout`,
 * from which the default retry budget is derived (limits.ts, failoverBudgetMs).
 *
 * The reads go through an injected `ReadMap`; the default one uses ioredis control connections.
 */
import type { ConnectionOptions } from "node:tls";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { parseAddress } from "../../cluster/address.ts";
import { slotMapFromShards, slotMapFromSlots, type SlotMap } from "../../cluster/slot-map.ts";
import type { BackendAuth } from "../backend.ts";
import { readReplicaHealth, type ReplicaHealth } from "./read-from.ts";
import { describeTlsError } from "../../tls/backend.ts";
import { CONTROL_COMMAND_TIMEOUT_MS, CONTROL_CONNECT_TIMEOUT_MS, DEFAULT_NODE_TIMEOUT_MS } from "./limits.ts";

/** Delay of the one map read that confirms a burst of MOVED to known masters (see `moved`). */
export const MOVED_CONFIRM_MS = 250;

export interface MapRead {
  map: SlotMap;
  /** The node's `cluster-node-timeout`, when it let us read it. */
  nodeTimeoutMs: number | undefined;
  /** The node's Redis version, when asked for. */
  version: string | undefined;
}

/** Reads the slot map from one node. */
export interface MapReader {
  read(address: string, withVersion: boolean): Promise<MapRead>;
  /** Replicas' replication state by address (./read-from.ts); without it no replica serves reads. */
  replicaHealth?(map: SlotMap): Promise<Map<string, ReplicaHealth>>;
  close(): void;
}

export class SlotMapSource {
  map: SlotMap | null = null;
  /** Version of the shards' Redis, reported to clients by HELLO and INFO (read once from a shard). */
  serverVersion = "7.0.0";
  /** Replicas' replication state, read after each map load (empty until then). */
  replicaHealth: ReadonlyMap<string, ReplicaHealth> = new Map();
  /** The cluster's node timeout, as last read (Redis's default until then). */
  nodeTimeoutMs = DEFAULT_NODE_TIMEOUT_MS;
  /** Why each node failed at the last read that found no map (for readiness reports). */
  lastErrors: string[] = [];
  private versionRead = false;
  private healthReading = false;
  /** The replica-state read started by the last map load (start() waits for the first). */
  private healthRead: Promise<void> = Promise.resolve();
  private healthAgain = false;
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  private timer: NodeJS.Timeout | null = null;
  /** The confirming read of a burst of MOVED to known masters, pending. */
  private confirmTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly seeds: readonly string[],
    private readonly reader: MapReader,
    private readonly refreshIntervalMs: number,
    /** Called with every map read (the router updates its pools and retries waiting requests). */
    private readonly onMap: (map: SlotMap) => void,
    private readonly log: Logger,
    /**
     * Where in the list of masters (and seeds) this process starts its reads, as a fraction: a
     * fleet's processes then spread their refreshes and control connections over the masters
     * instead of all reading the first one (100 shards x 20 hosts x 8 workers: 36 reads/s on one
     * node). Fixed per process, so the same control connection serves every refresh.
     */
    private readonly startAt = Math.random(),
  ) {}

  /**
   * Loads the first map (and its replicas' state) and starts the refresh timer. Resolves even if
   * no seed answers yet.
   */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.refresh(), this.refreshIntervalMs);
    this.timer.unref();
    await this.refresh();
    await this.healthRead;
  }

  /**
   * A MOVED: the slot is served at `address` now, applied at once; a full read confirms it. At
   * once when `address` is a master the map did not know (a new shard, a failover); otherwise one
   * read per burst, MOVED_CONFIRM_MS after its first MOVED: an atomic handoff (Valkey 9) moves
   * hundreds of slots to a known master together, and a read per MOVED would be a refresh storm
   * in every proxy process (the burst's other slots each cost one MOVED hop meanwhile).
   */
  moved(slot: number, address: string): void {
    const known = this.map?.masters.includes(address) ?? false;
    this.map?.assign(slot, address);
    if (!known) {
      void this.refresh();
      return;
    }
    if (this.confirmTimer !== null || this.closed) return;
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = null;
      void this.refresh();
    }, MOVED_CONFIRM_MS);
    this.confirmTimer.unref();
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
        await this.load();
      } while (this.refreshAgain && !this.closed);
    })().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private rotated(addresses: readonly string[]): string[] {
    const first = Math.floor(this.startAt * addresses.length) % Math.max(1, addresses.length);
    return [...addresses.slice(first), ...addresses.slice(0, first)];
  }

  private async load(): Promise<void> {
    const candidates = new Set<string>([
      ...this.rotated(this.map?.masters ?? []),
      ...(this.map?.nodes.map((n) => n.address) ?? []),
      ...this.rotated(this.seeds),
    ]);
    let best: MapRead | null = null;
    const errors: string[] = [];
    for (const address of candidates) {
      try {
        const read = await this.reader.read(address, !this.versionRead);
        if (read.version !== undefined) {
          this.versionRead = true;
          this.serverVersion = read.version;
        }
        if (!best || coverage(read.map) > coverage(best.map)) best = read;
        if (read.map.complete) break;
      } catch (err) {
        errors.push(`${address}: ${(err as Error).message}`);
      }
    }
    if (this.closed) return;
    if (!best) {
      this.lastErrors = errors;
      this.log.warn({ errors }, "no cluster node answered the slot map request");
      return;
    }
    this.lastErrors = [];
    if (best.nodeTimeoutMs !== undefined) this.nodeTimeoutMs = best.nodeTimeoutMs;
    this.map = best.map;
    this.onMap(best.map);
    this.healthRead = this.refreshReplicaHealth();
  }

  /**
   * Reads the replicas' state after a map load, off the refresh's path (a node that does not
   * answer must not delay the map). Calls `onMap` again with the result; reads during one cause
   * one more.
   */
  private async refreshReplicaHealth(): Promise<void> {
    if (this.reader.replicaHealth === undefined) return;
    if (this.healthReading) {
      this.healthAgain = true;
      return;
    }
    this.healthReading = true;
    try {
      do {
        this.healthAgain = false;
        try {
          this.replicaHealth = await this.reader.replicaHealth(this.map!);
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, "reading the replicas' state failed");
          this.replicaHealth = new Map();
        }
        if (this.closed) return;
        if (this.map !== null) this.onMap(this.map);
      } while (this.healthAgain);
    } finally {
      this.healthReading = false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    this.reader.close();
  }
}

function coverage(map: SlotMap): number {
  let n = 0;
  for (const owner of map.owner) if (owner >= 0) n++;
  return n;
}

/** Reads maps over one ioredis control connection per node, authenticated with the current credentials. */
export function clusterMapReader(
  auth: () => BackendAuth | undefined,
  tls: () => ConnectionOptions | undefined = () => undefined,
): MapReader {
  const control = new Map<string, Redis>();
  const lastErrors = new Map<string, Error>();
  const connection = (address: string): Redis => {
    let client = control.get(address);
    if (client && client.status !== "end" && client.status !== "close") return client;
    const credentials = auth();
    client = new Redis({
      ...parseAddress(address),
      username: credentials?.username,
      password: credentials?.password,
      tls: tls(),
      lazyConnect: true,
      connectTimeout: CONTROL_CONNECT_TIMEOUT_MS,
      commandTimeout: CONTROL_COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      retryStrategy: () => null,
    });
    // ioredis rejects a failed connect with "Connection is closed."; the error event says why.
    client.on("error", (err: Error) => lastErrors.set(address, err));
    control.set(address, client);
    return client;
  };
  return {
    async read(address, withVersion) {
      const client = connection(address);
      if (client.status === "wait")
        await client.connect().catch((err: Error) => {
          throw describeTlsError(
            lastErrors.get(address) ?? err,
            address,
            undefined,
            tls()?.cert !== undefined,
          );
        });
      let map: SlotMap;
      try {
        map = slotMapFromShards(await client.call("CLUSTER", "SHARDS"));
      } catch (err) {
        if (!/unknown subcommand|unknown command/i.test((err as Error).message)) throw err;
        map = slotMapFromSlots(await client.call("CLUSTER", "SLOTS"));
      }
      // Refused where CONFIG is denied to the proxy's user: the budget then assumes Redis's default.
      const timeout = await client.call("CONFIG", "GET", "cluster-node-timeout").catch(() => undefined);
      const nodeTimeoutMs = Array.isArray(timeout) ? Number(timeout[1]) : NaN;
      let version: string | undefined;
      if (withVersion) {
        const info = String(await client.call("INFO", "server"));
        version = /redis_version:(\S+)/.exec(info)?.[1];
      }
      return { map, nodeTimeoutMs: Number.isFinite(nodeTimeoutMs) ? nodeTimeoutMs : undefined, version };
    },
    replicaHealth(map) {
      return readReplicaHealth(map, async (address) => {
        const client = connection(address);
        if (client.status === "wait") await client.connect();
        return String(await client.call("INFO", "replication"));
      });
    },
    close() {
      for (const client of control.values()) client.disconnect();
      control.clear();
    },
  };
}
