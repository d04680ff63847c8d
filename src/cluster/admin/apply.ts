/**
 * `apply`: make the cluster match the topology, in one idempotent command. Creates the cluster
 * when nothing is assigned yet; otherwise joins missing nodes, attaches replicas, rebalances the
 * slots evenly over the topology's shards (draining masters it no longer names), forgets the
 * nodes that left, and checks. On a cluster that already matches it changes nothing.
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import type { Topology } from "../topology.ts";
import type { ClusterState } from "./cluster-state.ts";
import {
  createAssignment,
  createFromState,
  isCreatable,
  refuseUnlessCreatable,
  warnSameHostReplicas,
  type SlotAssignment,
} from "./create.ts";
import { copyClusterWideConfig } from "./config-sync.ts";
import { readSettled, refuseOnProblems } from "./gates.ts";
import { attachReplicas, forgetFailedStrays, forgetNodes, meetNodes } from "./membership.ts";
import type { MigrationResult } from "./migrate.ts";
import { withPool, type NodePool } from "./node-pool.ts";
import { defaults, report, type AdminOptions } from "./options.ts";
import { findProblems, unjoinedNodes } from "./problems.ts";
import {
  computeRebalancePlan,
  executeRebalancePlan,
  rebalanceTolerates,
  topologyAddresses,
  type RebalancePlan,
} from "./rebalance.ts";
import { settleAtomicMigrations } from "./atomic-migrate.ts";
import { waitForAgreement } from "./wait.ts";

export interface ApplyPlan {
  /** Slot ranges per shard when the cluster is created; empty otherwise. */
  create: SlotAssignment[];
  /** Nodes that will meet the cluster. */
  join: string[];
  /** Replicas attached to their shard's master. */
  attach: { replica: string; master: string }[];
  /** Slot moves (none when creating: create spreads the slots evenly at once). */
  rebalance: RebalancePlan;
  /** Nodes the topology no longer names: drained by the moves above, then forgotten. */
  remove: string[];
  /** Failed nodes outside the topology that are forgotten. */
  forgetFailed: string[];
  /** False when the cluster already matches the topology. */
  changes: boolean;
}

export interface ApplyResult {
  plan: ApplyPlan;
  moved: MigrationResult;
}

const emptyRebalance = (): RebalancePlan => ({
  resume: [],
  moves: [],
  bigKeys: [],
  totals: { slots: 0, keys: 0, bytes: 0 },
  method: "legacy",
});

export async function applyTopology(topology: Topology, options: AdminOptions = {}): Promise<ApplyResult> {
  return withPool(options, async (pool) => {
    const timeout = options.agreementTimeoutMs ?? defaults.agreementTimeoutMs;
    // Atomic migrations a killed run started go on without it: let them end before planning.
    if (!options.dryRun) await settleAtomicMigrations(pool, topologyAddresses(topology), options);
    const { state, problems } = await readSettled(pool, topology);

    if (isCreatable(state)) {
      refuseUnlessCreatable(state, problems);
      warnSameHostReplicas(topology, options);
      const plan: ApplyPlan = {
        ...describeMembership(state),
        create: createAssignment(topology),
        rebalance: emptyRebalance(),
        changes: true,
      };
      if (!options.dryRun) await createFromState(pool, state, options);
      return { plan, moved: [] };
    }

    refuseOnProblems("apply the topology", problems, (p) => p.kind === "not-joined" || rebalanceTolerates(p));
    const rebalance = await computeRebalancePlan(pool, state, options);
    const membership = describeMembership(state);
    const plan: ApplyPlan = {
      ...membership,
      create: [],
      rebalance,
      changes:
        membership.join.length +
          membership.attach.length +
          membership.remove.length +
          membership.forgetFailed.length +
          rebalance.totals.slots >
        0,
    };
    if (options.dryRun || !plan.changes) return { plan, moved: [] };

    let current = state;
    if (plan.join.length > 0) {
      const anchor = state.shards.find((s) => s.master?.self?.slots.length)!.master!;
      await copyClusterWideConfig(pool, anchor.address, plan.join, options);
      await meetNodes(
        pool,
        anchor,
        state.nodes.filter((n) => plan.join.includes(n.address)),
        options,
      );
      current = await waitForAgreement(pool, topology, {
        timeoutMs: timeout,
        signal: options.signal,
        awaited: ["not-joined"],
        onProgress: options.onProgress,
      });
    }
    if (plan.join.length + plan.attach.length > 0) {
      await attachReplicas(pool, current, options);
      // A node that just joined answers CLUSTERDOWN until it has seen the whole slot map.
      current = await waitForAgreement(pool, topology, {
        timeoutMs: timeout,
        signal: options.signal,
        onProgress: options.onProgress,
      });
    }
    const moved = await executeRebalancePlan(pool, current, rebalance, options);
    await removeLeftovers(pool, topology, options);
    const after = await waitForAgreement(pool, topology, {
      timeoutMs: timeout,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    const left = findProblems(after);
    if (left.length > 0)
      throw new DredisError(
        ErrorCodes.APPLY_INCOMPLETE,
        `the cluster still differs from the topology:\n${left.map((p) => `  - ${p.message}\n    fix: ${p.fix}`).join("\n")}`,
      );
    report(options, { type: "step", message: "the cluster matches the topology" });
    return { plan, moved };
  });
}

/** Forgets nodes the topology does not name, once drained, and failed ones lingering. */
async function removeLeftovers(pool: NodePool, topology: Topology, options: AdminOptions): Promise<void> {
  const state = await waitForAgreement(pool, topology, {
    timeoutMs: options.agreementTimeoutMs ?? defaults.agreementTimeoutMs,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  await forgetNodes(
    pool,
    state,
    state.nodes.filter((n) => n.shard === undefined),
    options,
  );
  await forgetFailedStrays(pool, state, options);
}

function describeMembership(
  state: ClusterState,
): Pick<ApplyPlan, "join" | "attach" | "remove" | "forgetFailed"> {
  const join = unjoinedNodes(state).map((n) => n.address);
  const attach = state.shards.flatMap((shard) =>
    shard.nodes
      .filter((n) => n !== shard.master && n.self?.masterId !== shard.master?.id)
      .map((n) => ({ replica: n.address, master: shard.master?.address ?? "(none)" })),
  );
  return {
    join,
    attach,
    remove: state.nodes.filter((n) => n.shard === undefined).map((n) => n.address),
    forgetFailed: state.failedStrays.filter((e) => e.slots.length === 0).map((e) => `${e.id} ${e.address}`),
  };
}
