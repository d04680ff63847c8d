/**
 * What the cluster looks like right now, read from every node the topology names (and from any
 * other live node they know of, which is how shards removed from the topology are found).
 */
import { SLOT_COUNT } from "../key-slot.ts";
import type { Topology } from "../topology.ts";
import { isFailed, isMaster, parseClusterNodes, type NodeEntry } from "./cluster-nodes.ts";
import type { NodePool } from "./node-pool.ts";

export interface NodeState {
  /** The address we reach it at: the topology's for its nodes, the gossiped one for others. */
  address: string;
  /** Topology shard the node belongs to; undefined for a node the topology does not name. */
  shard: string | undefined;
  reachable: boolean;
  /** Why the node could not be read. */
  error?: string;
  id?: string;
  /** Its own entry from its own `CLUSTER NODES`. */
  self?: NodeEntry;
  /** Its whole view of the cluster. */
  view: NodeEntry[];
  /** `CLUSTER INFO` fields. */
  info: Record<string, string>;
  /** `DBSIZE`. */
  keys: number;
}

export interface ShardState {
  name: string;
  /** The shard's node that currently is a master (the topology's master unless a failover happened). */
  master: NodeState | undefined;
  nodes: NodeState[];
}

export interface ClusterState {
  topology: Topology;
  /** Every node read: the topology's first (in shard order), then others found by gossip. */
  nodes: NodeState[];
  shards: ShardState[];
  /** Live masters the topology does not name (shards to drain). */
  strayMasters: NodeState[];
  /** Node ids every view has and that the topology does not name, with a failed flag somewhere. */
  failedStrays: NodeEntry[];
  /** slot -> ids of the masters that claim it in their own view (more than one: a conflict). */
  claims: string[][];
  /** slot -> id of its owner: the claimer every other view also names, else the first claimer. */
  owners: (string | undefined)[];
  byId: Map<string, NodeState>;
}

export async function readClusterState(pool: NodePool, topology: Topology): Promise<ClusterState> {
  const named = topology.shards.flatMap((shard) =>
    [shard.master, ...shard.replicas].map((address) => ({ address, shard: shard.name })),
  );
  const nodes = await Promise.all(named.map((n) => readNode(pool, n.address, n.shard)));
  const byId = new Map<string, NodeState>();
  for (const node of nodes) if (node.id) byId.set(node.id, node);
  // A topology node that is down is still known to the others by its address: name it by its id.
  for (const node of nodes.filter((n) => !n.reachable)) {
    const entry = nodes.flatMap((n) => n.view).find((e) => e.address === node.address);
    if (entry) byId.set((node.id = entry.id), node);
  }

  // Follow gossip to live nodes the topology does not name; they may still own slots.
  const strayEntries = new Map<string, NodeEntry>();
  for (const node of nodes)
    for (const entry of node.view) if (!byId.has(entry.id)) strayEntries.set(entry.id, entry);
  const failedStrays: NodeEntry[] = [];
  const liveStrays: NodeEntry[] = [];
  for (const entry of strayEntries.values()) {
    const seenFailed = nodes.some((n) => n.view.some((e) => e.id === entry.id && isFailed(e)));
    (seenFailed || entry.flags.includes("noaddr") ? failedStrays : liveStrays).push(entry);
  }
  const strays = await Promise.all(liveStrays.map((e) => readNode(pool, e.address, undefined)));
  for (const node of strays) if (node.id) byId.set(node.id, node);
  const all = [...nodes, ...strays.filter((s) => s.reachable && s.id && strayEntries.has(s.id))];

  const claims: string[][] = Array.from({ length: SLOT_COUNT }, () => []);
  for (const node of all) {
    if (!node.self || !isMaster(node.self)) continue;
    for (const slot of node.self.slots) claims[slot]!.push(node.id!);
  }
  const owners = claims.map((claimers, slot) => {
    if (claimers.length <= 1) return claimers[0];
    // During a migration the target claims the slot before the source lets go: the target is the owner.
    const importedBy = claimers.find((id) =>
      claimers.some((other) => byId.get(other)?.self?.migrating.get(slot) === id),
    );
    return importedBy ?? claimers[0];
  });

  const shards = topology.shards.map((spec) => {
    const members = nodes.filter((n) => n.shard === spec.name);
    const masters = members.filter((n) => n.self && isMaster(n.self));
    const master =
      masters.find((n) => (n.self?.slots.length ?? 0) > 0) ??
      masters.find((n) => n.address === spec.master) ??
      masters[0];
    return { name: spec.name, master, nodes: members };
  });

  return {
    topology,
    nodes: all,
    shards,
    strayMasters: all.filter((n) => n.shard === undefined && n.self && isMaster(n.self)),
    failedStrays,
    claims,
    owners,
    byId,
  };
}

async function readNode(pool: NodePool, address: string, shard: string | undefined): Promise<NodeState> {
  const state: NodeState = { address, shard, reachable: false, view: [], info: {}, keys: 0 };
  try {
    const client = pool.get(address);
    const [nodes, info, keys] = await Promise.all([
      client.call("CLUSTER", "NODES"),
      client.call("CLUSTER", "INFO"),
      client.dbsize(),
    ]);
    state.view = parseClusterNodes(String(nodes));
    state.self = state.view.find((e) => e.flags.includes("myself"));
    state.id = state.self?.id;
    state.info = Object.fromEntries(
      String(info)
        .split(/\r?\n/)
        .filter((l) => l.includes(":"))
        .map((l) => l.split(":") as [string, string]),
    );
    state.keys = keys;
    state.reachable = true;
  } catch (err) {
    state.error = pool.lastError(address) ?? (err as Error).message;
  }
  return state;
}

/** Slots each node owns, by node id. */
export function slotsByOwner(owners: (string | undefined)[]): Map<string, number[]> {
  const result = new Map<string, number[]>();
  owners.forEach((id, slot) => {
    if (id === undefined) return;
    let list = result.get(id);
    if (!list) result.set(id, (list = []));
    list.push(slot);
  });
  return result;
}

/** Compact "0-5460,5461" text for a sorted slot list. */
export function formatSlots(slots: readonly number[]): string {
  const parts: string[] = [];
  let start: number | undefined;
  let prev = -2;
  for (const slot of [...slots, -1]) {
    if (slot === prev + 1) {
      prev = slot;
      continue;
    }
    if (start !== undefined) parts.push(start === prev ? `${start}` : `${start}-${prev}`);
    start = slot;
    prev = slot;
  }
  return parts.join(",");
}
