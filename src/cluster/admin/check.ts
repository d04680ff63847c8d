/**
 * `check`: every slot covered once, no slot open, all nodes agree, no failed node, every node
 * of the topology joined and every replica on its shard's master.
 */
import type { Topology } from "../topology.ts";
import { readSettled } from "./gates.ts";
import { withPool } from "./node-pool.ts";
import type { AdminOptions } from "./options.ts";
import type { Problem } from "./problems.ts";

export interface ShardReport {
  name: string;
  /** Address of the shard's current master ("(none)" if it has none). */
  master: string;
  slots: number;
  keys: number;
  /** Addresses of the nodes replicating that master. */
  replicas: string[];
}

export interface CheckReport {
  ok: boolean;
  problems: Problem[];
  shards: ShardReport[];
}

export async function checkCluster(topology: Topology, options: AdminOptions = {}): Promise<CheckReport> {
  return withPool(options, async (pool) => {
    const { state, problems } = await readSettled(pool, topology);
    const shards = state.shards.map((shard) => ({
      name: shard.name,
      master: shard.master?.address ?? "(none)",
      slots: state.owners.filter((id) => id !== undefined && id === shard.master?.id).length,
      keys: shard.master?.keys ?? 0,
      replicas: shard.nodes
        .filter((n) => n.self?.masterId !== undefined && n.self.masterId === shard.master?.id)
        .map((n) => n.address),
    }));
    return { ok: problems.length === 0, problems, shards };
  });
}
