/**
 * `fix`: repair what an interrupted run (ours or redis-cli's) or a crash left, without losing a
 * key: finish interrupted migrations, close other open slots and settle slots claimed twice
 * (keys go to the owner), assign slots nobody owns, forget failed nodes outside the topology.
 * A dead node of the topology cannot be fixed from here: fix refuses and says so.
 */
import type { Topology } from "../topology.ts";
import type { ClusterState, NodeState } from "./cluster-state.ts";
import { readSettled, refuseOnProblems } from "./gates.ts";
import { forgetFailedStrays } from "./membership.ts";
import { migrateSlots } from "./migrate.ts";
import { withPool, type NodePool } from "./node-pool.ts";
import { defaults, report, type AdminOptions } from "./options.ts";
import type { SlotMove } from "./plan.ts";
import { findProblems, openSlots, type Problem } from "./problems.ts";
import { waitForAgreement } from "./wait.ts";

export interface FixPlan {
  /** Interrupted migrations, finished towards their target. */
  finish: SlotMove[];
  /** Other open or doubly claimed slots: keys of `holders` move to `owner`, then the slot is closed. */
  close: { slot: number; owner: string; holders: string[] }[];
  /** Unowned slots, assigned to `owner` (the node holding keys in them, else the emptiest shard). */
  assign: { slot: number; owner: string }[];
  /** Failed nodes outside the topology, forgotten everywhere. */
  forget: string[];
}

export interface FixResult {
  plan: FixPlan;
  /** Problems left after the fix (empty when the cluster is healthy). */
  problems: Problem[];
}

export async function fixCluster(topology: Topology, options: AdminOptions = {}): Promise<FixResult> {
  return withPool(options, async (pool) => {
    const { state, problems } = await readSettled(pool, topology);
    refuseOnProblems(
      "fix the cluster",
      problems,
      (p) => p.kind !== "unreachable" && p.kind !== "failed-node",
    );
    const plan = await planFix(pool, state);
    if (options.dryRun) return { plan, problems };

    await forgetFailedStrays(pool, state, options);
    const masters = state.nodes
      .filter((n) => n.reachable && n.self?.flags.includes("master"))
      .map((n) => n.address);
    const ctx = { pool, masters, bigKeys: [], options };
    if (plan.finish.length > 0) {
      report(options, {
        type: "step",
        message: `finishing ${plan.finish.length} interrupted slot migrations`,
      });
      await migrateSlots(ctx, plan.finish);
    }
    for (const { slot, owner } of plan.assign) {
      report(options, { type: "step", message: `assigning unowned slot ${slot} to ${owner}` });
      await pool.get(owner).call("CLUSTER", "ADDSLOTS", slot);
      // Views that still name a previous owner would otherwise wait for gossip to correct them.
      const ownerId = node(state, owner).id!;
      for (const address of masters.filter((a) => a !== owner))
        await pool
          .get(address)
          .call("CLUSTER", "SETSLOT", slot, "NODE", ownerId)
          .catch(() => {});
    }
    for (const { slot, owner, holders } of plan.close) {
      report(options, { type: "step", message: `closing slot ${slot} on its owner ${owner}` });
      const ownerId = node(state, owner).id!;
      const moves = holders.map((h) => ({
        slot,
        from: h,
        to: owner,
        fromAddress: h,
        toAddress: owner,
        fromId: node(state, h).id!,
        toId: ownerId,
        keys: 0,
        bytes: 0,
      }));
      if (moves.length > 0) await migrateSlots(ctx, moves);
      await Promise.all(
        state.nodes
          // Primaries only: a Valkey replica refuses SETSLOT, and takes its primary's STABLE by replication.
          .filter(
            (n) =>
              n.self?.flags.includes("master") && (n.self.migrating.has(slot) || n.self.importing.has(slot)),
          )
          .map((n) => pool.get(n.address).call("CLUSTER", "SETSLOT", slot, "STABLE")),
      );
      for (const address of [owner, ...masters.filter((a) => a !== owner)])
        await pool
          .get(address)
          .call("CLUSTER", "SETSLOT", slot, "NODE", ownerId)
          .catch(() => {});
    }
    const after = await waitForAgreement(pool, topology, {
      timeoutMs: options.agreementTimeoutMs ?? defaults.agreementTimeoutMs,
      signal: options.signal,
      awaited: ["disagreement", "cluster-state", "open-slot"],
      onProgress: options.onProgress,
    });
    return { plan, problems: findProblems(after) };
  });
}

function node(state: ClusterState, address: string): NodeState {
  return state.nodes.find((n) => n.address === address)!;
}

async function planFix(pool: NodePool, state: ClusterState): Promise<FixPlan> {
  const open = openSlots(state);
  const finish: SlotMove[] = open
    .filter((o) => o.resume)
    .map((o) => {
      const from = state.byId.get(o.resume!.fromId)!;
      const to = state.byId.get(o.resume!.toId)!;
      return {
        slot: o.slot,
        from: from.shard ?? from.address,
        to: to.shard ?? to.address,
        fromAddress: from.address,
        toAddress: to.address,
        fromId: from.id!,
        toId: to.id!,
        keys: 0,
        bytes: 0,
      };
    });
  const masters = state.nodes.filter((n) => n.reachable && n.self?.flags.includes("master"));
  const unowned = state.owners.flatMap((o, slot) => (o === undefined ? [slot] : []));
  const troubled = [
    ...open.filter((o) => !o.resume).map((o) => o.slot),
    ...state.claims.flatMap((c, slot) => (c.length > 1 && !open.some((o) => o.slot === slot) ? [slot] : [])),
  ];
  const counts = await countKeys(pool, masters, [...troubled, ...unowned]);
  const keysOn = (n: NodeState, slot: number) => counts.get(n.address)?.get(slot) ?? 0;

  const close = troubled.map((slot) => {
    const claimers = masters.filter((m) => state.claims[slot]!.includes(m.id!));
    const candidates = claimers.length > 0 ? claimers : masters;
    // The claimer holding the most keys keeps the slot: the fewest keys have to move.
    const owner = [...candidates].sort((a, b) => keysOn(b, slot) - keysOn(a, slot))[0]!;
    const holders = masters.filter((m) => m !== owner && keysOn(m, slot) > 0).map((m) => m.address);
    return { slot, owner: owner.address, holders };
  });

  const slotCount = new Map(masters.map((m) => [m.address, m.self!.slots.length]));
  const shardMasters = state.shards.flatMap((s) => (s.master ? [s.master] : []));
  const assign = unowned.map((slot) => {
    const holder = [...masters].sort((a, b) => keysOn(b, slot) - keysOn(a, slot))[0];
    const owner =
      holder && keysOn(holder, slot) > 0
        ? holder
        : [...shardMasters].sort((a, b) => slotCount.get(a.address)! - slotCount.get(b.address)!)[0]!;
    slotCount.set(owner.address, slotCount.get(owner.address)! + 1);
    const holders = masters.filter((m) => m !== owner && keysOn(m, slot) > 0).map((m) => m.address);
    if (holders.length > 0) close.push({ slot, owner: owner.address, holders });
    return { slot, owner: owner.address };
  });

  const forget = state.failedStrays.filter((e) => e.slots.length === 0).map((e) => `${e.id} ${e.address}`);
  return { finish, close, assign, forget };
}

async function countKeys(
  pool: NodePool,
  masters: NodeState[],
  slots: number[],
): Promise<Map<string, Map<number, number>>> {
  const result = new Map<string, Map<number, number>>();
  if (slots.length === 0) return result;
  await Promise.all(
    masters.map(async (m) => {
      const pipeline = pool.get(m.address).pipeline();
      for (const slot of slots) pipeline.call("CLUSTER", "COUNTKEYSINSLOT", slot);
      const replies = (await pipeline.exec()) ?? [];
      result.set(m.address, new Map(slots.map((slot, i) => [slot, Number(replies[i]?.[1] ?? 0)])));
    }),
  );
  return result;
}
