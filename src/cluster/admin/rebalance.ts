/**
 * `rebalance`: spread the slots evenly over the topology's shards (draining masters the topology
 * does not name), online. A plan is computed first and returned as plain JSON; the run executes
 * exactly that plan. Slots an interrupted run left open are finished first.
 */
import type { Topology } from "../topology.ts";
import type { ClusterState, NodeState } from "./cluster-state.ts";
import { refuseOnProblems, readSettled } from "./gates.ts";
import { migrateSlots, type MigrationResult } from "./migrate.ts";
import { withPool, type NodePool } from "./node-pool.ts";
import { defaults, report, type AdminOptions } from "./options.ts";
import { balanceMoves, type SlotMove } from "./plan.ts";
import { openSlots, type Problem } from "./problems.ts";
import { measureSlots, type BigKey } from "./slot-sizes.ts";
import { waitForAgreement } from "./wait.ts";
import { chooseMigrationMethod, settleAtomicMigrations, type SlotMigrationMethod } from "./atomic-migrate.ts";

export interface RebalancePlan {
  /** Open slots an interrupted migration left, finished first. */
  resume: SlotMove[];
  /** Slots to move, in the order they are moved per source -> target pair. */
  moves: SlotMove[];
  /** Keys at or above the big-key threshold among the slots to move. */
  bigKeys: BigKey[];
  totals: { slots: number; keys: number; bytes: number };
  /** How `moves` travel: "atomic" (Valkey 9 MIGRATESLOTS) or "legacy" (MIGRATE); `resume` is always legacy. */
  method: SlotMigrationMethod;
}

export interface RebalanceResult {
  plan: RebalancePlan;
  /** Moves done, in completion order (empty on a dry run). */
  moved: MigrationResult;
}

/** Problems rebalance works through instead of refusing. */
export const rebalanceTolerates = (p: Problem): boolean =>
  p.kind === "stray-node" ||
  p.kind === "replica-detached" ||
  p.kind === "lingering-failed-node" ||
  (p.kind === "open-slot" && p.resumable === true);

/** Computes the plan for `state` (pure apart from measuring the slots on their nodes). */
export async function computeRebalancePlan(
  pool: NodePool,
  state: ClusterState,
  options: AdminOptions,
): Promise<RebalancePlan> {
  const ownerName = (id: string) => {
    const shard = state.shards.find((s) => s.master?.id === id);
    return shard ? shard.name : `node ${state.byId.get(id)?.address ?? id}`;
  };
  const endpoint = (id: string): NodeState => state.byId.get(id)!;
  const toMove = (slot: number, fromId: string, toId: string): SlotMove => ({
    slot,
    from: ownerName(fromId),
    to: ownerName(toId),
    fromAddress: endpoint(fromId).address,
    toAddress: endpoint(toId).address,
    fromId,
    toId,
    keys: 0,
    bytes: 0,
  });

  const resume = openSlots(state)
    .filter((open) => open.resume)
    .map((open) => toMove(open.slot, open.resume!.fromId, open.resume!.toId));
  // Plan as if the open slots were finished: they are, before any planned move starts.
  const owners = [...state.owners];
  for (const move of resume) owners[move.slot] = move.toId;

  const current = new Map<string, number[]>();
  for (const shard of state.shards) if (shard.master?.id) current.set(shard.master.id, []);
  owners.forEach((id, slot) => {
    if (id === undefined) return;
    if (!current.has(id)) current.set(id, []);
    current.get(id)!.push(slot);
  });
  const targets = state.shards.flatMap((s) => (s.master?.id ? [s.master.id] : []));
  const moves = balanceMoves({ current, targets }).map((m) => toMove(m.slot, m.from, m.to));

  const method = await chooseMigrationMethod(
    pool,
    state.nodes.filter((n) => n.reachable).map((n) => n.address),
    options,
  );
  const bigKeyBytes = options.bigKeyBytes ?? defaults.bigKeyBytes;
  const bigKeys: BigKey[] = [];
  const all = [...resume, ...moves];
  const bySource = new Map<string, SlotMove[]>();
  for (const move of all) bySource.set(move.fromAddress, [...(bySource.get(move.fromAddress) ?? []), move]);
  await Promise.all(
    [...bySource].map(async ([address, list]) => {
      const measured = await measureSlots(
        pool,
        address,
        list.map((m) => m.slot),
        bigKeyBytes,
      );
      for (const move of list) Object.assign(move, measured.sizes.get(move.slot));
      bigKeys.push(...measured.bigKeys);
    }),
  );
  for (const key of bigKeys) {
    const where = `slot ${key.slot}${key.db === 0 ? "" : `, database ${key.db}`} on ${key.node}`;
    report(options, {
      type: "warning",
      message:
        method === "atomic" && !resume.some((m) => m.slot === key.slot)
          ? `big key ${JSON.stringify(key.key)} (${key.bytes} bytes, ${where}) moves with atomic slot migration, streamed in pieces (no node blocks on it)`
          : `big key ${JSON.stringify(key.key)} (${key.bytes} bytes, ${where}) will move alone with a longer MIGRATE timeout; both nodes block while it moves`,
    });
  }
  return {
    resume,
    moves,
    bigKeys,
    totals: {
      slots: all.length,
      keys: all.reduce((sum, m) => sum + m.keys, 0),
      bytes: all.reduce((sum, m) => sum + m.bytes, 0),
    },
    method,
  };
}

/** Executes a plan: open slots first, then the moves; waits until every node agrees. */
export async function executeRebalancePlan(
  pool: NodePool,
  state: ClusterState,
  plan: RebalancePlan,
  options: AdminOptions,
): Promise<MigrationResult> {
  if (plan.resume.length + plan.moves.length === 0) return [];
  const masters = state.nodes
    .filter((n) => n.reachable && n.self?.flags.includes("master"))
    .map((n) => n.address);
  const ctx = { pool, masters, bigKeys: plan.bigKeys, options };
  const moved: MigrationResult = [];
  if (plan.resume.length > 0) {
    report(options, {
      type: "step",
      message: `finishing ${plan.resume.length} slots an interrupted run left open`,
    });
    moved.push(...(await migrateSlots(ctx, plan.resume)));
  }
  moved.push(...(await migrateSlots({ ...ctx, method: plan.method }, plan.moves)));
  await waitForAgreement(pool, state.topology, {
    timeoutMs: options.agreementTimeoutMs ?? defaults.agreementTimeoutMs,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  return moved;
}

/** Plans the rebalance (and executes it unless `dryRun`), after the gates. */
export async function rebalanceCluster(
  topology: Topology,
  options: AdminOptions = {},
): Promise<RebalanceResult> {
  return withPool(options, async (pool) => {
    if (!options.dryRun) await settleAtomicMigrations(pool, topologyAddresses(topology), options);
    const { state, problems } = await readSettled(pool, topology);
    refuseOnProblems("rebalance", problems, rebalanceTolerates);
    const plan = await computeRebalancePlan(pool, state, options);
    if (options.dryRun) return { plan, moved: [] };
    return { plan, moved: await executeRebalancePlan(pool, state, plan, options) };
  });
}

/** The rebalance plan alone (same as `rebalanceCluster` with `dryRun`). */
export function planRebalance(topology: Topology, options: AdminOptions = {}): Promise<RebalancePlan> {
  return rebalanceCluster(topology, { ...options, dryRun: true }).then((r) => r.plan);
}

/** Every node the topology names (masters and replicas). */
export function topologyAddresses(topology: Topology): string[] {
  return topology.shards.flatMap((s) => [s.master, ...s.replicas]);
}
