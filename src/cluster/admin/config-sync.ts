/**
 * Nodes that join the cluster take the cluster-wide parameters (src/cluster/cluster-config.ts)
 * from a node already in it, so a `CONFIG SET notify-keyspace-events ...` or an encoding tuned
 * through the proxy also holds on shards added afterwards. Called by `apply` and `add-shard`
 * when they meet new nodes, before those nodes get slots.
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import { CLUSTER_WIDE_PARAMETERS } from "../cluster-config.ts";
import type { NodePool } from "./node-pool.ts";
import { report, type AdminOptions } from "./options.ts";

/**
 * Copies every cluster-wide parameter's value from `from` to each of `to` (CONFIG SET, then
 * CONFIG REWRITE so it survives a restart of the new node).
 */
export async function copyClusterWideConfig(
  pool: NodePool,
  from: string,
  to: readonly string[],
  options: AdminOptions,
): Promise<void> {
  if (to.length === 0) return;
  // Names this Redis does not have (newer versions' parameters) are simply not listed.
  const listed = (await pool.get(from).call("CONFIG", "GET", ...CLUSTER_WIDE_PARAMETERS)) as string[];
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < listed.length; i += 2) values.set(listed[i]!, listed[i + 1]!);
  // An alias and its parameter (list-max-ziplist-size, list-max-listpack-size) hold one value: set it once.
  const pairs = CLUSTER_WIDE_PARAMETERS.filter((name) => values.has(name) && !isAlias(name)).flatMap(
    (name) => [name, values.get(name)!],
  );
  report(options, {
    type: "step",
    message: `copying the cluster-wide settings of ${from} to ${to.join(", ")}`,
  });
  await Promise.all(
    to.map(async (address) => {
      const node = pool.get(address);
      try {
        await node.call("CONFIG", "SET", ...pairs);
      } catch (err) {
        throw new DredisError(
          ErrorCodes.SETTING,
          `cannot copy the cluster-wide settings of ${from} to ${address}: ${(err as Error).message}`,
        );
      }
      await node.call("CONFIG", "REWRITE").catch((err: Error) =>
        report(options, {
          type: "warning",
          message: `${address} took the cluster-wide settings but cannot keep them over a restart: ${err.message}`,
        }),
      );
    }),
  );
}

/** Old names Redis keeps as aliases of the listpack-era ones. */
function isAlias(name: string): boolean {
  return name.includes("-ziplist-") || name === "slave-lazy-flush";
}
