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
 * Right after a failover or a slot move, nodes that have not learnt of it yet answer with the old
 * owners for tens of ms, and a process that reads its maps from several nodes would flip between
 * the views (each flip retires the new owner's pool, bounces requests with MOVED and churns Pub/Sub
 * links). A read that changes an owner is therefore judged as Redis Cluster judges a claim: by the
 * owners' config epochs (`judge`); a view older than the held map is skipped for another node's,
 * for OLDER_VIEW_GRACE_MS at most.
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
import { isMaster, parseClusterNodes } from "../../cluster/admin/cluster-nodes.ts";
import type { WorkerStats } from "../stats.ts";
import {
  CONTROL_COMMAND_TIMEOUT_MS,
  CONTROL_CONNECT_TIMEOUT_MS,
  DEFAULT_NODE_TIMEOUT_MS,
  REPLICA_STATE_IDLE_REFRESHES,
} from "./limits.ts";

/** Delay of the one map read that confirms a burst of MOVED to known masters (see `moved`). */
export const MOVED_CONFIRM_MS = 250;

/**
 * How long the held map is kept against reads that the owners' config epochs call older. A node
 * behind on a failover or a slot move catches up in well under a second; nodes that keep
 * answering with lower epochs past this had their epochs reset (a cluster rebuilt by hand), and
 * their view is taken, with a warning. MOVED from the owner itself is applied at once meanwhile.
 */
export const OLDER_VIEW_GRACE_MS = 5_000;
/** When a load kept the held map (every node read was behind), the next read comes this much later. */
const BEHIND_REREAD_MS = 50;
/** Reads judged older than the held map in one load before the load keeps the held map. */
const OLDER_READS_PER_LOAD = 2;

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
  /**
   * Each master's config epoch by node id, as the node at `address` knows them (CLUSTER NODES).
   * Without it, or where it fails, no read is judged older than the held map.
   */
  configEpochs?(address: string): Promise<Map<string, number>>;
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
  /** The read again after a load that kept the held map (the nodes read were behind), pending. */
  private behindTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /**
   * Config epoch of each master by node id, as the node read last with a change knew them: the
   * held map's owners' epochs, against which a read that changes an owner is judged.
   */
  private epochs = new Map<string, number>();
  /** When loads began finding only reads older than the held map; 0 when the last did not. */
  private olderSince = 0;
  /**
   * Slots a MOVED took from the master the map named (the master itself refused them), until a
   * map taken shows them moved: a read that names that master again is older (`judge`). The
   * MOVED's own target has no recorded epoch to judge by until a map with it is taken.
   */
  private readonly refused = new Map<number, { from: string; at: number }>();
  /** The backend user may not run CLUSTER NODES: reads are not judged (said once in the log). */
  private epochsDenied = false;
  private readonly olderViewGraceMs: number;

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
    private readonly options: { stats?: WorkerStats; olderViewGraceMs?: number } = {},
  ) {
    this.healthKnown = reader.replicaHealth === undefined;
    this.olderViewGraceMs = options.olderViewGraceMs ?? OLDER_VIEW_GRACE_MS;
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
   * A MOVED (from `answeredBy`, when known): the slot is served at `address` now, applied at once;
   * a full read confirms it. At once when `address` is a master the map did not know (a new shard,
   * a failover); otherwise one read per burst, MOVED_CONFIRM_MS after its first MOVED: an atomic
   * handoff (Valkey 9) moves hundreds of slots to a known master together, and a read per MOVED
   * would be a refresh storm in every proxy process (the burst's other slots each cost one MOVED
   * hop meanwhile).
   */
  moved(slot: number, address: string, answeredBy?: string): void {
    const known = this.map?.masters.includes(address) ?? false;
    const from = this.map?.masterFor(slot);
    // Evidence only from the owner itself: a replica behind on a move may point at a former owner.
    if (from !== undefined && from !== address && answeredBy === from)
      this.refused.set(slot, { from, at: Date.now() });
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
    let best: Judged | null = null;
    /** The fullest read judged older than the held map, taken only once OLDER_VIEW_GRACE_MS is over. */
    let older: Judged | null = null;
    let olderReads = 0;
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
        const judged = { read, address, ...(await this.judge(read.map, address)) };
        if (judged.older) {
          if (this.options.stats) this.options.stats.olderMapReads++;
          if (!older || coverage(read.map) > coverage(older.read.map)) older = judged;
          if (++olderReads >= OLDER_READS_PER_LOAD) break;
          continue;
        }
        if (!best || coverage(read.map) > coverage(best.read.map)) best = judged;
        if (read.map.complete) break;
      } catch (err) {
        errors.push(`${address}: ${(err as Error).message}`);
      }
    }
    if (this.closed) return;
    if (!best && older) {
      const now = Date.now();
      if (this.olderSince === 0) this.olderSince = now;
      if (now - this.olderSince < this.olderViewGraceMs) {
        this.log.debug(
          { address: older.address },
          "kept the slot map: the nodes read show owners of lower config epochs",
        );
        // Not given to the router as a map read: listeners wait for a read (Pub/Sub keeps a
        // demoted master's subscriptions until one retires it), and what asked for this read
        // still wants one. The nodes behind catch up in ms: read again shortly.
        if (this.behindTimer === null) {
          this.behindTimer = setTimeout(() => {
            this.behindTimer = null;
            void this.refresh();
          }, BEHIND_REREAD_MS);
          this.behindTimer.unref();
        }
        return;
      }
      this.log.warn(
        { address: older.address, forMs: now - this.olderSince },
        "the cluster's nodes keep showing slot owners of lower config epochs than the proxy's map; taking their map (were the config epochs reset?)",
      );
      best = older;
      this.refused.clear();
    }
    if (!best) {
      this.lastErrors = errors;
      this.log.warn({ errors }, "no cluster node answered the slot map request");
      return;
    }
    this.olderSince = 0;
    if (best.epochs) this.epochs = best.epochs;
    // Kept: slots the map still names their refuser for (a MOVED that came while it was read).
    for (const [slot, { from }] of this.refused)
      if (best.read.map.masterFor(slot) !== from) this.refused.delete(slot);
    this.lastErrors = [];
    const { read, address } = best;
    if (read.nodeTimeoutMs !== undefined) this.nodeTimeoutMs = read.nodeTimeoutMs;
    this.databases = read.databases ?? 1;
    this.map = read.map;
    const readHealth = this.healthWanted && this.replicaReadsGoOn(address);
    this.onMap(read.map);
    if (readHealth) void this.refreshReplicaHealth();
  }

  /**
   * Whether `map`, read from `address`, is an older view than the held map: a slot whose owner
   * it changes to a master whose config epoch (as `address` knows it) is below that of the held
   * map's owner (as recorded when that map was taken). Redis Cluster settles a slot the same way:
   * the claim of the higher config epoch wins, and a failover or a slot move gives the new owner
   * the highest. Reads the epochs (one CLUSTER NODES) only when the map changes an owner or names
   * one whose epoch is not recorded, and returns them to record when the map is taken. A slot
   * the held map has from MOVED (its owner has no recorded epoch yet) is judged by the MOVED: a
   * read that names the master that refused it is older.
   */
  private async judge(
    map: SlotMap,
    address: string,
  ): Promise<{ older: boolean; epochs?: Map<string, number> }> {
    if (this.reader.configEpochs === undefined || this.epochsDenied) return { older: false };
    const time = Date.now();
    for (const [slot, { from, at }] of this.refused)
      if (time - at >= this.olderViewGraceMs) this.refused.delete(slot);
      else if (map.masterFor(slot) === from) return { older: true };
    const newIds = masterIds(map);
    const held = this.map;
    /** Pairs (held owner index, new owner index) of the slots whose owner the read changes. */
    const changed = new Set<number>();
    // Where the masters are listed alike (most reads), one compare of the two owner tables; else
    // held.masters[i] is map.masters[same[i]]: one integer compare per slot, not a string one.
    const alike =
      held !== null &&
      held.masters.length === map.masters.length &&
      held.masters.every((a, i) => a === map.masters[i]);
    if (held !== null && !(alike && bytesOf(held.owner).equals(bytesOf(map.owner)))) {
      const same = held.masters.map((a) => map.masters.indexOf(a));
      for (let slot = 0; slot < held.owner.length; slot++) {
        const was = held.owner[slot]!;
        const now = map.owner[slot]!;
        if (was >= 0 && now >= 0 && same[was] !== now) changed.add(was * 65_536 + now);
      }
    }
    if (changed.size === 0 && newIds.every((id) => id === undefined || this.epochs.has(id)))
      return { older: false };
    let epochs: Map<string, number>;
    try {
      epochs = await this.reader.configEpochs(address);
    } catch (err) {
      const message = (err as Error).message;
      if (/^NOPERM/.test(message)) {
        // Asked again at every read otherwise, refused every time: said once, then not asked.
        this.epochsDenied = true;
        this.log.warn(
          { address, err: message },
          "the proxy's backend user may not run CLUSTER NODES: slot map reads are not judged by the owners' config epochs, " +
            "so right after a failover or a slot move a worker may switch between the old and the new owner until the nodes agree " +
            "(allow it with +cluster|nodes)",
        );
      } else this.log.debug({ address, err: message }, "could not read the nodes' config epochs");
      return { older: false };
    }
    const heldIds = held === null ? [] : masterIds(held);
    for (const pair of changed) {
      const heldId = heldIds[Math.floor(pair / 65_536)];
      const newId = newIds[pair % 65_536];
      const before = heldId === undefined ? undefined : this.epochs.get(heldId);
      const now = newId === undefined ? undefined : epochs.get(newId);
      if (before !== undefined && now !== undefined && now < before) return { older: true, epochs };
    }
    return { older: false, epochs };
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
    if (this.behindTimer) clearTimeout(this.behindTimer);
    this.reader.close();
  }
}

/** A map read, where from, and what `judge` said of it. */
interface Judged {
  read: MapRead;
  address: string;
  older: boolean;
  epochs?: Map<string, number>;
}

function bytesOf(table: Int16Array): Buffer {
  return Buffer.from(table.buffer, table.byteOffset, table.byteLength);
}

/** The node id of each of the map's masters, by index (undefined for an owner known only from MOVED). */
function masterIds(map: SlotMap): (string | undefined)[] {
  const byAddress = new Map<string, string>();
  for (const shard of map.shards) if (shard.master?.id) byAddress.set(shard.master.address, shard.master.id);
  return map.masters.map((address) => byAddress.get(address));
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
    async configEpochs(address) {
      const client = connection(address);
      if (client.status === "wait") await client.connect();
      const nodes = parseClusterNodes(String(await client.call("CLUSTER", "NODES")));
      return new Map(nodes.filter(isMaster).map((node) => [node.id, node.configEpoch]));
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
