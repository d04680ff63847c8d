/**
 * `create`: turn empty cluster-mode nodes into one cluster: each shard's master gets an even,
 * contiguous slot range, every node meets, replicas attach to their shard's master, and it
 * returns once every node agrees. Re-running an interrupted create continues it.
 */
import { DredisError } from "../../errors.ts";
import type { Topology } from "../topology.ts";
import { formatSlots, type ClusterState } from "./cluster-state.ts";
import { GATE_REFUSED, kinds, readSettled, refuseOnProblems } from "./gates.ts";
import { attachReplicas, meetNodes } from "./membership.ts";
import { withPool, type NodePool } from "./node-pool.ts";
import { defaults, report, type AdminOptions } from "./options.ts";
import { evenQuotas } from "./plan.ts";
import { waitForAgreement } from "./wait.ts";

export interface SlotAssignment {
  shard: string;
  master: string;
  /** "first-last" */
  slots: string;
  first: number;
  last: number;
}

/** Contiguous even ranges in topology order (the first shards take the remainder). */
export function createAssignment(topology: Topology): SlotAssignment[] {
  const quotas = evenQuotas(topology.shards.map((s) => s.name));
  let first = 0;
  return topology.shards.map((shard) => {
    const last = first + quotas.get(shard.name)! - 1;
    const assignment = { shard: shard.name, master: shard.master, slots: `${first}-${last}`, first, last };
    first = last + 1;
    return assignment;
  });
}

/**
 * True when the cluster is (still) being created: no key anywhere, and every slot that is
 * assigned sits where `createAssignment` puts it (so an interrupted create is continued).
 */
export function isCreatable(state: ClusterState): boolean {
  // Unreadable nodes look empty: never take that for a cluster still to be created.
  if (state.nodes.some((n) => !n.reachable)) return false;
  if (state.owners.every((o) => o !== undefined)) return false;
  if (state.nodes.some((n) => n.keys > 0)) return false;
  const byAddress = new Map(state.nodes.map((n) => [n.address, n.id]));
  return createAssignment(state.topology).every(({ master, first, last }) => {
    for (let slot = first; slot <= last; slot++) {
      const owner = state.owners[slot];
      if (owner !== undefined && owner !== byAddress.get(master)) return false;
    }
    return true;
  });
}

/** Assigns, meets, attaches and waits; `state` must be creatable. */
export async function createFromState(
  pool: NodePool,
  state: ClusterState,
  options: AdminOptions,
): Promise<void> {
  const timeout = options.agreementTimeoutMs ?? defaults.agreementTimeoutMs;
  const assignment = createAssignment(state.topology);
  for (const { master, first, last, shard } of assignment) {
    const node = state.nodes.find((n) => n.address === master)!;
    const missing: number[] = [];
    for (let slot = first; slot <= last; slot++) if (state.owners[slot] === undefined) missing.push(slot);
    if (missing.length === 0) continue;
    report(options, {
      type: "step",
      message: `assigning slots ${formatSlots(missing)} to ${shard} (${master})`,
    });
    const client = pool.get(master);
    for (const range of formatSlots(missing).split(",")) {
      const [a, b = a] = range.split("-");
      await client.call("CLUSTER", "ADDSLOTSRANGE", a!, b!);
    }
    node.self!.slots.push(...missing);
  }
  const anchor = state.nodes.find((n) => n.address === assignment[0]!.master)!;
  const strangers = state.nodes.filter((n) => n !== anchor && !n.view.some((e) => e.id === anchor.id));
  await meetNodes(pool, anchor, strangers, options);
  const met = await waitForAgreement(pool, state.topology, {
    timeoutMs: timeout,
    signal: options.signal,
    awaited: ["not-joined"],
    onProgress: options.onProgress,
  });
  await attachReplicas(pool, met, options);
  await waitForAgreement(pool, state.topology, {
    timeoutMs: timeout,
    signal: options.signal,
    onProgress: options.onProgress,
  });
}

/** Refuses unless every node is reachable, empty, and no slot sits elsewhere than create would put it. */
export function refuseUnlessCreatable(
  state: ClusterState,
  problems: Parameters<typeof refuseOnProblems>[1],
): void {
  refuseOnProblems(
    "create the cluster",
    problems,
    kinds("cluster-state", "not-joined", "replica-detached", "uncovered-slots", "disagreement"),
  );
  if (!isCreatable(state)) {
    const full = state.nodes.filter((n) => n.keys > 0).map((n) => `${n.address} holds ${n.keys} keys`);
    throw new DredisError(
      GATE_REFUSED,
      `refusing to create the cluster: ${full.length ? full.join(", ") : "slots are already assigned differently"}. ` +
        "create needs empty nodes; to change an existing cluster run: dredis cluster apply --topology <topology>",
    );
  }
}

/** Creates the cluster the topology describes from empty cluster-mode nodes. */
export async function createCluster(
  topology: Topology,
  options: AdminOptions = {},
): Promise<SlotAssignment[]> {
  return withPool(options, async (pool) => {
    const { state, problems } = await readSettled(pool, topology, 0);
    refuseUnlessCreatable(state, problems);
    warnSameHostReplicas(topology, options);
    if (!options.dryRun) await createFromState(pool, state, options);
    return createAssignment(topology);
  });
}

/** A replica on its master's host dies with it; the topology decides placement, so warn only. */
export function warnSameHostReplicas(topology: Topology, options: AdminOptions): void {
  const host = (address: string) => address.slice(0, address.lastIndexOf(":"));
  const hosts = new Set(topology.shards.map((s) => host(s.master)));
  // All on one host (a local or test cluster): nothing better is possible.
  if (hosts.size <= 1) return;
  for (const shard of topology.shards)
    for (const replica of shard.replicas)
      if (host(replica) === host(shard.master))
        report(options, {
          type: "warning",
          message: `${shard.name}: replica ${replica} is on the same host as its master ${shard.master}; place it on another host`,
        });
}
