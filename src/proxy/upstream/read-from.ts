/**
 * Reads from replicas: which node serves a client's read-only command, and which replicas may.
 *
 * - `master` (default): every command goes to the slot's master; a read sees every acknowledged write.
 * - `replica-preferred`: read-only commands go to a qualifying replica of the slot's master, and to
 *   the master when none qualifies (or the chosen one's connection is failing).
 * - `replica`: read-only commands go to qualifying replicas only; with none, the read fails with
 *   an error naming the shard (as cluster clients' "replica only" modes do): a deployment that
 *   chose it wants the masters kept free of reads, and says so.
 *
 * A replica qualifies when its link to its master is up, it is not in a full sync, and it is at
 * most `maxReplicaLagBytes` of replication stream behind its master. Both are read after each
 * slot-map load (one `INFO replication` per node, off the refresh's path) while reads may go to
 * replicas (./slot-map-source.ts; the first such read waits for it), so a replica that falls
 * behind or dies stops qualifying at the next refresh at the latest; a lost connection to one
 * triggers a refresh and sends its reads to the master meanwhile.
 *
 * A client's `READONLY` (as cluster clients send it) makes its reads `replica-preferred` when the
 * setting is `master`; `READWRITE` returns it to the setting. Only single read-only commands routed
 * by slot go to replicas: never a transaction, a read while a WATCH is held, a blocking command,
 * an ASK or a retried request (those go to the master), nor anything the busy proxy runs.
 */
import type { SlotMap } from "../../cluster/slot-map.ts";

export const READ_FROM_MODES = ["master", "replica-preferred", "replica"] as const;
export type ReadFromSetting = (typeof READ_FROM_MODES)[number];
/** `maxReplicaLagBytes` when not configured: a replica a second or so behind a busy master qualifies. */
export const DEFAULT_MAX_REPLICA_LAG_BYTES = 1024 * 1024;

/** Where a request's read may go, as decided per client (a number: set on every read for free). */
export const enum ReadFrom {
  Master,
  ReplicaPreferred,
  Replica,
}

/** The mode a client's read-only commands use: the setting, raised by the client's READONLY. */
export function sessionReadFrom(setting: ReadFromSetting, clientReadonly: boolean): ReadFrom {
  if (setting === "replica") return ReadFrom.Replica;
  if (setting === "replica-preferred" || clientReadonly) return ReadFrom.ReplicaPreferred;
  return ReadFrom.Master;
}

/** A replica's replication state, as its `INFO replication` and its master's told it. */
export interface ReplicaHealth {
  /** `master_link_status:up` and no full sync in progress. */
  linkUp: boolean;
  /** Bytes of replication stream the master has and the replica has not applied yet. */
  lagBytes: number;
}

/**
 * Picks the node for one read: a replica among `replicas` that `usable` accepts (by `affinity`,
 * so one client's reads of a shard keep to one replica while it qualifies), else the master for
 * `ReplicaPreferred`, else none (`Replica` with no usable replica).
 */
export function chooseReadNode(
  mode: ReadFrom,
  master: string,
  replicas: readonly string[] | undefined,
  affinity: number,
  usable: (address: string) => boolean,
): string | undefined {
  if (mode === ReadFrom.Master) return master;
  const count = replicas?.length ?? 0;
  for (let i = 0; i < count; i++) {
    const replica = replicas![(affinity + i) % count]!;
    if (usable(replica)) return replica;
  }
  return mode === ReadFrom.ReplicaPreferred ? master : undefined;
}

/** Each master's replicas that may serve reads (replicas without a known, healthy state do not). */
export function qualifyingReplicas(
  map: SlotMap,
  health: ReadonlyMap<string, ReplicaHealth>,
  maxLagBytes: number,
): Map<string, string[]> {
  const byMaster = new Map<string, string[]>();
  for (const shard of map.shards) {
    if (shard.master === undefined) continue;
    const ok = shard.replicas
      // Not "loading" too: CLUSTER SHARDS says so from gossip until a replica's offset is known
      // there, while its own INFO (checked below) is current.
      .filter((r) => r.health !== "failed")
      .map((r) => r.address)
      .filter((address) => {
        const state = health.get(address);
        return state !== undefined && state.linkUp && state.lagBytes <= maxLagBytes;
      });
    if (ok.length > 0) byMaster.set(shard.master.address, ok);
  }
  return byMaster;
}

/** The `field:value` lines of an INFO reply. */
function infoFields(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** A replica's health from its own `INFO replication` and its master's replication offset. */
export function replicaHealthFromInfo(replicaInfo: string, masterOffset: number): ReplicaHealth {
  const fields = infoFields(replicaInfo);
  const offset = Number(fields.get("slave_repl_offset"));
  const linkUp =
    fields.get("role") === "slave" &&
    fields.get("master_link_status") === "up" &&
    fields.get("master_sync_in_progress") !== "1" &&
    Number.isFinite(offset);
  return { linkUp, lagBytes: linkUp ? Math.max(0, masterOffset - offset) : Infinity };
}

/** A master's replication offset from its `INFO replication`, or NaN. */
export function masterOffsetFromInfo(masterInfo: string): number {
  return Number(infoFields(masterInfo).get("master_repl_offset"));
}

/**
 * Reads every replica's health in `map`: `INFO replication` of each shard's replicas, then of its
 * master (in that order, so a lag is overstated rather than understated). A node that does not
 * answer is left out, so its replicas do not qualify.
 */
export async function readReplicaHealth(
  map: SlotMap,
  info: (address: string) => Promise<string>,
): Promise<Map<string, ReplicaHealth>> {
  const health = new Map<string, ReplicaHealth>();
  await Promise.all(
    map.shards.map(async (shard) => {
      if (shard.master === undefined || shard.replicas.length === 0) return;
      const replicas = await Promise.all(
        shard.replicas.map((replica) => info(replica.address).catch(() => undefined)),
      );
      const masterOffset = masterOffsetFromInfo(await info(shard.master.address).catch(() => ""));
      if (!Number.isFinite(masterOffset)) return;
      shard.replicas.forEach((replica, i) => {
        const text = replicas[i];
        if (text !== undefined) health.set(replica.address, replicaHealthFromInfo(text, masterOffset));
      });
    }),
  );
  return health;
}
