/**
 * Cluster membership: meeting new nodes, attaching replicas to their shard's master, and
 * forgetting nodes that left (only once they own nothing).
 */
import { lookup } from "node:dns/promises";
import { DredisError, ErrorCodes } from "../../errors.ts";
import type { ClusterState, NodeState } from "./cluster-state.ts";
import { splitAddress, type NodePool } from "./node-pool.ts";
import { report, type AdminOptions } from "./options.ts";

/** Makes every node in `joining` meet `anchor` (CLUSTER MEET wants an IP and the bus port). */
export async function meetNodes(
  pool: NodePool,
  anchor: NodeState,
  joining: readonly NodeState[],
  options: AdminOptions,
): Promise<void> {
  if (joining.length === 0) return;
  const { host, port } = splitAddress(anchor.address);
  const { address: ip } = await lookup(host);
  report(options, { type: "step", message: `meeting ${joining.map((n) => n.address).join(", ")}` });
  await Promise.all(
    joining.map((node) => pool.get(node.address).call("CLUSTER", "MEET", ip, port, anchor.self!.busPort)),
  );
}

/** Attaches each topology replica that is not yet a replica of its shard's current master. */
export async function attachReplicas(
  pool: NodePool,
  state: ClusterState,
  options: AdminOptions,
): Promise<void> {
  const pending = state.shards.flatMap((shard) =>
    shard.nodes
      .filter((n) => n !== shard.master && n.self?.masterId !== shard.master?.id)
      .map((node) => ({ node, master: shard.master! })),
  );
  for (const { node, master } of pending) {
    report(options, { type: "step", message: `attaching replica ${node.address} to ${master.address}` });
    const deadline = Date.now() + 30_000;
    while (true) {
      try {
        await pool.get(node.address).call("CLUSTER", "REPLICATE", master.id!);
        break;
      } catch (err) {
        // "Unknown node" until gossip has told the replica about its master: retry.
        if (Date.now() > deadline || !/Unknown node/i.test((err as Error).message))
          throw new DredisError(
            ErrorCodes.REPLICATE,
            `cannot attach ${node.address} as a replica of ${master.address}: ${(err as Error).message}` +
              (/not empty|has keys|assigned/i.test((err as Error).message)
                ? ". A new replica must be an empty node: flush it (FLUSHALL and CLUSTER RESET) first"
                : ""),
          );
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

/**
 * Removes nodes from the cluster for good: refuses if any still owns a slot or holds a key, then
 * resets each (so it stops gossiping the old id) and makes every remaining node forget it.
 */
export async function forgetNodes(
  pool: NodePool,
  state: ClusterState,
  leaving: readonly NodeState[],
  options: AdminOptions,
): Promise<void> {
  if (leaving.length === 0) return;
  for (const node of leaving) {
    const slots = state.owners.filter((owner) => owner === node.id).length;
    if (slots > 0 || (node.self?.masterId === undefined && node.keys > 0))
      throw new DredisError(
        ErrorCodes.NOT_DRAINED,
        `not removing ${node.address}: it still owns ${slots} slots and holds ${node.keys} keys. ` +
          "Its drain did not complete; re-run the same command to finish it",
      );
  }
  report(options, {
    type: "step",
    message: `removing ${leaving.map((n) => n.address).join(", ")} from the cluster`,
  });
  const ids = new Set(leaving.map((n) => n.id!));
  // HARD gives each a new id, so no gossip from it can bring the old one back to the others.
  for (const node of leaving) await pool.get(node.address).call("CLUSTER", "RESET", "HARD");
  const remaining = state.nodes.filter((n) => n.reachable && n.id && !ids.has(n.id));
  await Promise.all(
    remaining.flatMap((node) =>
      [...ids].map((id) =>
        pool
          .get(node.address)
          .call("CLUSTER", "FORGET", id)
          .catch((err: Error) => {
            if (!/Unknown node/i.test(err.message)) throw err;
          }),
      ),
    ),
  );
}

/** Forgets failed nodes the topology does not name and that own no slot, on every live node. */
export async function forgetFailedStrays(
  pool: NodePool,
  state: ClusterState,
  options: AdminOptions,
): Promise<void> {
  const gone = state.failedStrays.filter(
    (e) => e.slots.length === 0 && state.owners.every((o) => o !== e.id),
  );
  if (gone.length === 0) return;
  report(options, {
    type: "step",
    message: `forgetting failed nodes ${gone.map((e) => e.address).join(", ")}`,
  });
  await Promise.all(
    state.nodes
      .filter((n) => n.reachable)
      .flatMap((node) =>
        gone.map((entry) =>
          pool
            .get(node.address)
            .call("CLUSTER", "FORGET", entry.id)
            .catch((err: Error) => {
              if (!/Unknown node/i.test(err.message)) throw err;
            }),
        ),
      ),
  );
}
