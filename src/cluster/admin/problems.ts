/**
 * Everything wrong with a cluster relative to its topology, each problem with the fix to run.
 * `check` reports these; the gates refuse to start on the ones an operation cannot handle.
 */
import { isFailed, isMaster } from "./cluster-nodes.ts";
import { formatSlots, type ClusterState, type NodeState } from "./cluster-state.ts";

export type ProblemKind =
  | "unreachable"
  | "failed-node"
  | "lingering-failed-node"
  | "cluster-state"
  | "uncovered-slots"
  | "open-slot"
  | "slot-conflict"
  | "disagreement"
  | "not-joined"
  | "replica-detached"
  | "stray-node";

export interface Problem {
  kind: ProblemKind;
  message: string;
  /** What to do about it, as a command or an action. */
  fix: string;
  /** For an open slot: an interrupted migration that apply and rebalance finish by themselves. */
  resumable?: boolean;
}

/** An open slot (MIGRATING/IMPORTING somewhere) and, when it is a migration that can simply be finished, its endpoints. */
export interface OpenSlot {
  slot: number;
  migrating: { node: string; to: string }[];
  importing: { node: string; from: string }[];
  /** Set when the state is one a migration passes through: finishing it moves the slot to `toId`. */
  resume?: { fromId: string; toId: string };
}

/** `dredis cluster fix` with the caller's topology, for fix hints. */
const FIX = "run: dredis cluster fix --topology <the same topology>";

export function openSlots(state: ClusterState): OpenSlot[] {
  const bySlot = new Map<number, OpenSlot>();
  const get = (slot: number) => {
    if (!bySlot.has(slot)) bySlot.set(slot, { slot, migrating: [], importing: [] });
    return bySlot.get(slot)!;
  };
  for (const node of state.nodes) {
    // Primaries only: Valkey 8+ replicates SETSLOT to replicas, whose copy of the state is their
    // primary's (Redis replicas have none); counted apart, it made every Valkey open slot look
    // unresumable, and a demoted primary's stale copy kept the cluster from converging.
    if (!node.self || !node.id || !isMaster(node.self)) continue;
    for (const [slot, to] of node.self.migrating) get(slot).migrating.push({ node: node.id, to });
    for (const [slot, from] of node.self.importing) get(slot).importing.push({ node: node.id, from });
  }
  const liveMaster = (id: string) => {
    const node = state.byId.get(id);
    return node?.reachable === true && node.self !== undefined && isMaster(node.self);
  };
  for (const open of bySlot.values()) {
    const claims = state.claims[open.slot]!;
    const [m] = open.migrating;
    const [i] = open.importing;
    let resume: OpenSlot["resume"];
    if (open.migrating.length === 1 && open.importing.length === 1) {
      // Both sides set: the usual mid-migration state.
      if (m!.to === i!.node && i!.from === m!.node && claims.includes(m!.node))
        resume = { fromId: m!.node, toId: m!.to };
    } else if (open.migrating.length === 0 && open.importing.length === 1) {
      // Stopped between IMPORTING on the target and MIGRATING on the source.
      if (claims.length === 1 && claims[0] === i!.from) resume = { fromId: i!.from, toId: i!.node };
    } else if (open.migrating.length === 1 && open.importing.length === 0) {
      // Stopped after the target took the slot, before the source let go.
      if (claims.includes(m!.to)) resume = { fromId: m!.node, toId: m!.to };
    }
    if (resume && liveMaster(resume.fromId) && liveMaster(resume.toId)) open.resume = resume;
  }
  return [...bySlot.values()].sort((a, b) => a.slot - b.slot);
}

/**
 * A test for "this node is part of the cluster": the members are the nodes the reference node
 * (a master owning slots, else the first shard's master) knows; a member is joined once it and
 * every other member know each other (slot commands naming a node fail on a node that does not).
 */
export function joinedTest(state: ClusterState): (node: NodeState) => boolean {
  const reference = state.shards.find((s) => s.master?.self?.slots.length)?.master ?? state.shards[0]?.master;
  const knows = (viewer: NodeState, id: string | undefined) =>
    viewer.view.some((e) => e.id === id && !e.flags.includes("handshake"));
  const members = state.nodes.filter(
    (n) => n.reachable && n.id && reference && (n === reference || knows(reference, n.id)),
  );
  return (node) =>
    members.includes(node) && members.every((m) => m === node || (knows(m, node.id) && knows(node, m.id)));
}

/** Reachable topology nodes that are not part of the cluster yet. */
export function unjoinedNodes(state: ClusterState): NodeState[] {
  const joined = joinedTest(state);
  return state.nodes.filter((n) => n.shard !== undefined && n.reachable && n.id && !joined(n));
}

/**
 * The slots on which each joined node's view names another owner than the cluster's (open slots
 * aside): gossip that has not reached it yet, or a claim it will never accept (an owner whose
 * config epoch is not above the previous owner's). Nodes that agree are left out.
 */
export function viewDifferences(
  state: ClusterState,
  joined = joinedTest(state),
  open: ReadonlySet<number> = new Set(openSlots(state).map((o) => o.slot)),
): { node: NodeState; slots: number[] }[] {
  const result: { node: NodeState; slots: number[] }[] = [];
  for (const node of state.nodes) {
    if (!node.reachable || !node.id || !joined(node)) continue;
    const seen = new Array<string | undefined>(state.owners.length).fill(undefined);
    for (const entry of node.view) if (isMaster(entry)) for (const slot of entry.slots) seen[slot] = entry.id;
    const slots = seen.flatMap((owner, slot) =>
      owner !== state.owners[slot] && !open.has(slot) ? [slot] : [],
    );
    if (slots.length > 0) result.push({ node, slots });
  }
  return result;
}

export function findProblems(state: ClusterState): Problem[] {
  const problems: Problem[] = [];
  const name = (id: string) => {
    const node = state.byId.get(id);
    return node ? `${node.address}${node.shard ? ` (${node.shard})` : ""}` : id.slice(0, 12);
  };

  for (const node of state.nodes.filter((n) => !n.reachable))
    problems.push({
      kind: "unreachable",
      message: `node ${node.address}${node.shard ? ` (${node.shard})` : ""} cannot be read: ${node.error}`,
      fix: /NOAUTH|WRONGPASS/.test(node.error ?? "")
        ? "set DREDIS_PASSWORD (and DREDIS_USERNAME for an ACL user) to the nodes' credentials, then re-run"
        : "start it, or correct its address in --topology, then re-run",
    });

  const joined = joinedTest(state);
  const failedIds = new Set<string>();
  for (const viewer of state.nodes)
    for (const entry of viewer.view) if (isFailed(entry)) failedIds.add(entry.id);
  for (const id of failedIds) {
    const stray = state.failedStrays.find((e) => e.id === id);
    if (stray && stray.slots.length === 0 && !state.byId.has(id)) {
      problems.push({
        kind: "lingering-failed-node",
        message: `node ${id} (${stray.address}) is not in the topology and is marked failed; it lingers in CLUSTER NODES`,
        fix: `${FIX} (it forgets the node on every node)`,
      });
    } else {
      problems.push({
        kind: "failed-node",
        message: `node ${stray ? `${id} (${stray.address})` : name(id)} is marked failed by the cluster`,
        fix: "restart it (or let its replica take over), then re-run; dredis never forgets a node that owns slots",
      });
    }
  }

  for (const node of state.nodes)
    // A node outside the cluster is down by definition: that is reported as not-joined.
    if (node.reachable && joined(node) && node.info.cluster_state !== "ok")
      problems.push({
        kind: "cluster-state",
        message: `node ${name(node.id!)} reports cluster_state:${node.info.cluster_state}`,
        fix: FIX,
      });

  const uncovered = state.owners.flatMap((owner, slot) => (owner === undefined ? [slot] : []));
  if (uncovered.length > 0 && uncovered.length < state.owners.length)
    problems.push({
      kind: "uncovered-slots",
      message: `${uncovered.length} slots have no owner: ${formatSlots(uncovered)}`,
      fix: `${FIX} (it assigns them)`,
    });

  const open = openSlots(state);
  for (const slot of open) {
    const parts = [
      ...slot.migrating.map((m) => `migrating from ${name(m.node)} to ${name(m.to)}`),
      ...slot.importing.map((i) => `importing into ${name(i.node)} from ${name(i.from)}`),
    ];
    problems.push({
      kind: "open-slot",
      resumable: slot.resume !== undefined,
      message: `slot ${slot.slot} is open (${parts.join("; ")})${slot.resume ? ": an interrupted migration" : ""}`,
      fix: slot.resume
        ? "re-run the interrupted command (apply or rebalance finishes it), or " + FIX
        : `${FIX} (it closes the slot without losing keys)`,
    });
  }
  const openSet = new Set(open.map((o) => o.slot));
  const conflicts = state.claims.flatMap((ids, slot) => (ids.length > 1 && !openSet.has(slot) ? [slot] : []));
  if (conflicts.length > 0)
    problems.push({
      kind: "slot-conflict",
      message: `${conflicts.length} slots are claimed by more than one master: ${formatSlots(conflicts)}`,
      fix: FIX,
    });

  for (const { node, slots } of viewDifferences(state, joined, openSet))
    problems.push({
      kind: "disagreement",
      message: `node ${name(node.id!)} disagrees with the owners on ${slots.length} slots (gossip has not converged)`,
      fix: "wait a few seconds and re-run; if it persists, " + FIX,
    });

  for (const shard of state.shards) {
    for (const node of shard.nodes) {
      if (!node.reachable || !node.id) continue;
      if (!joined(node))
        problems.push({
          kind: "not-joined",
          message: `node ${node.address} (${shard.name}) is not part of the cluster`,
          fix: "run: dredis cluster apply --topology <topology> (or add-shard)",
        });
      else if (node !== shard.master && node.self?.masterId !== shard.master?.id)
        problems.push({
          kind: "replica-detached",
          message: `node ${node.address} (${shard.name}) is not a replica of its shard's master ${shard.master?.address ?? "(none)"}`,
          fix: "run: dredis cluster apply --topology <topology>",
        });
    }
  }

  for (const node of state.nodes.filter((n) => n.shard === undefined))
    problems.push({
      kind: "stray-node",
      message: `node ${node.address} (${node.id}) is in the cluster but not in the topology${
        node.self?.slots.length ? ` and owns ${node.self.slots.length} slots` : ""
      }`,
      fix: "run: dredis cluster apply --topology <topology> (drains and forgets it), or add it to the topology",
    });
  return problems;
}
