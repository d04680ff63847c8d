/**
 * `add-shard` and `remove-shard`: one shard at a time, for operators. `apply` does both (and more)
 * from the whole topology; these are the narrow versions.
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import type { Topology } from "../topology.ts";
import { applyTopology, type ApplyResult } from "./apply.ts";
import { copyClusterWideConfig } from "./config-sync.ts";
import { kinds, readSettled, refuseOnProblems } from "./gates.ts";
import { attachReplicas, meetNodes } from "./membership.ts";
import { withPool } from "./node-pool.ts";
import { defaults, type AdminOptions } from "./options.ts";
import { unjoinedNodes } from "./problems.ts";
import { waitForAgreement } from "./wait.ts";

function requireShard(topology: Topology, name: string): void {
  if (!topology.shards.some((s) => s.name === name))
    throw new DredisError(
      ErrorCodes.NO_SUCH_SHARD,
      `shard "${name}" is not in the topology (it has: ${topology.shards.map((s) => s.name).join(", ")})`,
    );
}

/**
 * Joins the shard's master and replicas to the cluster, with no slots (run rebalance or apply
 * next). Returns the addresses that joined.
 */
export async function addShard(
  topology: Topology,
  name: string,
  options: AdminOptions = {},
): Promise<string[]> {
  requireShard(topology, name);
  return withPool(options, async (pool) => {
    const timeout = options.agreementTimeoutMs ?? defaults.agreementTimeoutMs;
    const { state, problems } = await readSettled(pool, topology);
    const ours = (message: string) =>
      state.nodes.some((n) => n.shard === name && message.includes(n.address));
    refuseOnProblems(
      `add shard ${name}`,
      problems,
      (p) =>
        ((p.kind === "not-joined" || p.kind === "replica-detached") && ours(p.message)) ||
        kinds("stray-node")(p),
    );
    const joining = unjoinedNodes(state).filter((n) => n.shard === name);
    if (options.dryRun) return joining.map((n) => n.address);
    const anchor = state.shards.find((s) => s.master?.self?.slots.length)!.master!;
    await copyClusterWideConfig(
      pool,
      anchor.address,
      joining.map((n) => n.address),
      options,
    );
    await meetNodes(pool, anchor, joining, options);
    const met = await waitForAgreement(pool, topology, {
      timeoutMs: timeout,
      signal: options.signal,
      awaited: ["not-joined"],
      onProgress: options.onProgress,
    });
    await attachReplicas(pool, met, options);
    await waitForAgreement(pool, topology, {
      timeoutMs: timeout,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    return joining.map((n) => n.address);
  });
}

/**
 * Drains the shard's slots to the other shards (evenly), verifies the drain, then forgets its
 * nodes everywhere. Nothing is stopped: the platform deletes the shard's workload afterwards.
 */
export async function removeShard(
  topology: Topology,
  name: string,
  options: AdminOptions = {},
): Promise<ApplyResult> {
  requireShard(topology, name);
  if (topology.shards.length === 1)
    throw new DredisError(ErrorCodes.LAST_SHARD, `shard "${name}" is the only shard; a cluster needs one`);
  return applyTopology({ shards: topology.shards.filter((s) => s.name !== name) }, options);
}
