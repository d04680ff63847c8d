/**
 * Where the router's slot map comes from: read from the cluster on a timer and at once when
 * something suggests it changed (MOVED, a lost connection, CLUSTERDOWN), with MOVED applied to
 * the map before the read confirms it. Each read also takes the cluster's `cluster-node-timeout`,
 * from which the default retry budget is derived (limits.ts, failoverBudgetMs), and in the same
 * reply Valkey's `cluster-databases`, which bounds SELECT (../databases.ts).
 *
 * The replicas' state (./read-from.ts) is read after each map load only while reads may go to
 * replicas: from the first such read (held until the state is known) until none came for
 * REPLICA_STATE_IDLE_REFRESHES refresh intervals. A fleet on `readFrom: master` whose clients send
 * no READONLY thus asks the replicas nothing and keeps one control connection per process.
 *
 * The reads go through an injected `ReadMap`; the default one uses control connections of its own
 * (./control-connection.ts).
 */
import type { ConnectionOptions } from "node:tls";
import type { Logger } from "pino";
import { parseAddress } from "../../cluster/address.ts";
import { parseServerEngine, type Engine } from "../../cluster/engine.ts";
import { slotMapFromShards, slotMapFromSlots, type SlotMap } from "../../cluster/slot-map.ts";
import type { BackendAuth } from "../backend.ts";
import { readReplicaHealth, type ReplicaHealth } from "./read-from.ts";
import { ControlConnection } from "./control-connection.ts";
import { describeTlsError } from "../../tls/backend.ts";
import {
  CONTROL_COMMAND_TIMEOUT_MS,
  CONTROL_CONNECT_TIMEOUT_MS,
  DEFAULT_NODE_TIMEOUT_MS,
  REPLICA_STATE_IDLE_REFRESHES,
} from "./limits.ts";

/** Delay of the one map read that confirms a burst of MOVED to known masters (see `moved`). */
export const MOVED_CONFIRM_MS = 250;

export interface MapRead {
  map: SlotMap;
  /** The node's `cluster-node-timeout`, when it let us read it. */
  nodeTimeoutMs: number | undefined;
  /** The node's Redis version, when asked for. */
  version: string | undefined;
  /** The node's engine, when the version was asked for (absent: redis). */
  engine?: Engine;
  /** The engine's own version ("9.1.2" for Valkey; Redis's is `version`), when asked for. */
  engineVersion?: string | undefined;
  /** The node's `cluster-databases` (Valkey 9); unset on Redis, or where CONFIG is denied. */
  databases?: number | undefined;
}

/** Reads the slot map from one node. */
export interface MapReader {
  read(address: string, withVersion: boolean): Promise<MapRead>;
  /** Replicas' replication state by address (./read-from.ts); without it no replica serves reads. */
  replicaHealth?(map: SlotMap): Promise<Map<string, ReplicaHealth>>;
  /** Closes the control connections to every node but `keep` (the replicas' state is no longer read). */
  release?(keep: string): void;
  close(): void;
}

export class SlotMapSource {
  map: SlotMap | null = null;
  /** Version of the shards' Redis, reported to clients by HELLO and INFO (read once from a shard). */
  serverVersion = "7.0.0";
  /** The shards' engine, read with the version (Valkey words some errors its own way). */
  serverEngine: Engine = "redis";
  /** The engine's own version (Valkey's `valkey_version`; for Redis the same as serverVersion). */
  serverEngineVersion = "7.0.0";
  /** Replicas' replication state, read after each map load while reads may go to replicas (else empty). */
  replicaHealth: ReadonlyMap<string, ReplicaHealth> = new Map();
  /** The cluster's node timeout, as last read (Redis's default until then). */
  nodeTimeoutMs = DEFAULT_NODE_TIMEOUT_MS;
  /** How many databases clients may SELECT, as last read (1 until then, and on Redis). */
  databases = 1;
  /** Why each node failed at the last read that found no map (for readiness reports). */
  lastErrors: string[] = [];
  private versionRead = false;
  private healthReading = false;
  private healthAgain = false;
  /** Reads may go to replicas: their state is read after each map load. */
  private healthWanted = false;
  /** `replicaHealth` is current: read since `healthWanted` was set (or the reader cannot read it). */
  private healthKnown: boolean;
  /** A read that may go to a replica came since the last map load; and when one last did. */
  private replicaReadSeen = false;
  private replicaReadAt = 0;
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
  ) {
    this.healthKnown = reader.replicaHealth === undefined;
  }

  /** Loads the first map and starts the refresh timer. Resolves even if no seed answers yet. */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.refresh(), this.refreshIntervalMs);
    this.timer.unref();
    await this.refresh();
  }

  /**
   * Called for each read that may go to a replica: true when the replicas' state is known. Else it
   * starts reading it and returns false; the caller holds the read until the next `onMap`.
   */
  replicaStateReady(): boolean {
    this.replicaReadSeen = true;
    if (this.healthKnown) return true;
    if (!this.healthWanted) {
      this.healthWanted = true;
      this.replicaReadAt = Date.now();
      void this.refreshReplicaHealth();
    }
    return false;
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
    let bestAddress = "";
    const errors: string[] = [];
    for (const address of candidates) {
      try {
        const read = await this.reader.read(address, !this.versionRead);
        if (read.version !== undefined) {
          this.versionRead = true;
          this.serverVersion = read.version;
          this.serverEngine = read.engine ?? "redis";
          this.serverEngineVersion = read.engineVersion ?? read.version;
        }
        if (!best || coverage(read.map) > coverage(best.map)) {
          best = read;
          bestAddress = address;
        }
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
    this.databases = best.databases ?? 1;
    this.map = best.map;
    const readHealth = this.healthWanted && this.replicaReadsGoOn(bestAddress);
    this.onMap(best.map);
    if (readHealth) void this.refreshReplicaHealth();
  }

  /**
   * Whether reads still go to replicas; after REPLICA_STATE_IDLE_REFRESHES intervals without one,
   * forgets the replicas' state and closes the control connections but the map's (`mapAddress`).
   */
  private replicaReadsGoOn(mapAddress: string): boolean {
    const now = Date.now();
    if (this.replicaReadSeen) {
      this.replicaReadSeen = false;
      this.replicaReadAt = now;
    }
    if (now - this.replicaReadAt < REPLICA_STATE_IDLE_REFRESHES * this.refreshIntervalMs) return true;
    this.healthWanted = false;
    this.healthKnown = false;
    this.replicaHealth = new Map();
    this.reader.release?.(mapAddress);
    return false;
  }

  /**
   * Reads the replicas' state after a map load, off the refresh's path (a node that does not
   * answer must not delay the map). Calls `onMap` again with the result; reads during one cause
   * one more.
   */
  private async refreshReplicaHealth(): Promise<void> {
    if (this.reader.replicaHealth === undefined || this.map === null) return;
    if (this.healthReading) {
      this.healthAgain = true;
      return;
    }
    this.healthReading = true;
    try {
      do {
        this.healthAgain = false;
        let health: Map<string, ReplicaHealth>;
        try {
          health = await this.reader.replicaHealth(this.map);
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, "reading the replicas' state failed");
          health = new Map();
        }
        // Stopped meanwhile (no more reads for replicas): the state is not kept.
        if (this.closed || !this.healthWanted) return;
        this.replicaHealth = health;
        this.healthKnown = true;
        this.onMap(this.map);
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

/** Reads maps over one control connection per node, authenticated with the current credentials. */
export function clusterMapReader(
  auth: () => BackendAuth | undefined,
  tls: () => ConnectionOptions | undefined = () => undefined,
): MapReader {
  const control = new Map<string, ControlConnection>();
  const lastErrors = new Map<string, Error>();
  const connection = (address: string): ControlConnection => {
    let client = control.get(address);
    if (client && client.status !== "end") return client;
    const credentials = auth();
    client = new ControlConnection({
      ...parseAddress(address),
      username: credentials?.username,
      password: credentials?.password,
      tls: tls(),
      connectTimeout: CONTROL_CONNECT_TIMEOUT_MS,
      commandTimeout: CONTROL_COMMAND_TIMEOUT_MS,
    });
    // A failed connect rejects with "Connection is closed."; the error event says why.
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
      // cluster-databases (Valkey 9) comes in the same reply; Redis has no such parameter.
      const config = await client
        .call("CONFIG", "GET", "cluster-node-timeout", "cluster-databases")
        .catch(() => undefined);
      const nodeTimeoutMs = Array.isArray(config) ? configNumber(config, "cluster-node-timeout") : NaN;
      const databases = Array.isArray(config) ? configNumber(config, "cluster-databases") : NaN;
      let version: string | undefined;
      let engine: Engine | undefined;
      let engineVersion: string | undefined;
      if (withVersion) {
        const info = String(await client.call("INFO", "server"));
        version = /redis_version:(\S+)/.exec(info)?.[1];
        if (version !== undefined) ({ engine, version: engineVersion } = parseServerEngine(info));
      }
      return {
        map,
        nodeTimeoutMs: Number.isFinite(nodeTimeoutMs) ? nodeTimeoutMs : undefined,
        version,
        engine,
        engineVersion,
        databases: Number.isInteger(databases) && databases >= 1 ? databases : undefined,
      };
    },
    replicaHealth(map) {
      return readReplicaHealth(map, async (address) => {
        const client = connection(address);
        if (client.status === "wait") await client.connect();
        return String(await client.call("INFO", "replication"));
      });
    },
    release(keep) {
      for (const [address, client] of control) {
        if (address === keep) continue;
        client.disconnect();
        control.delete(address);
      }
    },
    close() {
      for (const client of control.values()) client.disconnect();
      control.clear();
    },
  };
}

/** A parameter's value in a CONFIG GET reply (name, value, name, value...), NaN when absent. */
function configNumber(reply: unknown[], name: string): number {
  for (let i = 0; i + 1 < reply.length; i += 2) if (String(reply[i]) === name) return Number(reply[i + 1]);
  return NaN;
}
