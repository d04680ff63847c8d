/**
 * The key-by-key slot move on Valkey 8+: `CLUSTER SETSLOT` there is replicated and the master
 * waits for its replicas to acknowledge it before it applies the change (and answers `NOREPLICAS`
 * when they do not in time). A replica that is still in its first full sync (a new shard's, just
 * attached) cannot acknowledge: the slot moves then fail with NOREPLICAS, or the SETSLOTs the
 * replica received while syncing leave it with slots open that its master has closed. So before
 * moving slots on such an engine, every master taking part must have all its replicas in sync.
 */
import type { Redis } from "ioredis";
import { DredisError, ErrorCodes } from "../../errors.ts";
import { nodeEngine, type NodeEngine } from "../engine.ts";
import { isFailed, parseClusterNodes } from "./cluster-nodes.ts";
import type { NodePool } from "./node-pool.ts";
import { report, type AdminOptions } from "./options.ts";

/** How long the masters' replicas may take to finish syncing before the move is refused. */
export const REPLICA_SYNC_TIMEOUT_MS = 300_000;
const POLL_MS = 200;

/** Whether the engine's CLUSTER SETSLOT waits for the node's replicas (Valkey 8.0 and later). */
export const setSlotWaitsForReplicas = (node: NodeEngine): boolean =>
  node.engine === "valkey" && node.semver[0] >= 8;

/** What keeps a master from acknowledging a SETSLOT: its replicas not (yet) in sync; empty when none. */
export async function replicasNotInSync(client: Pick<Redis, "call">): Promise<string[]> {
  const [nodesText, infoText] = await Promise.all([
    client.call("CLUSTER", "NODES"),
    client.call("INFO", "replication"),
  ]);
  const view = parseClusterNodes(String(nodesText));
  const myself = view.find((e) => e.flags.includes("myself"));
  if (!myself || myself.masterId !== undefined) return [];
  // The replicas the master waits for: those it knows and does not consider failed.
  const replicas = view.filter((e) => e.masterId === myself.id && !isFailed(e));
  const online = new Set<string>();
  for (const match of String(infoText).matchAll(/^slave\d+:(.*)$/gm)) {
    const fields = new Map(match[1]!.split(",").map((kv) => kv.split("=") as [string, string]));
    if (fields.get("state") === "online") online.add(`${fields.get("ip")}:${fields.get("port")}`);
  }
  return replicas
    .filter((r) => !online.has(r.address))
    .map((r) => `${r.address} (replica of ${myself.address})`);
}

/**
 * Resolves once every master at `addresses` whose engine waits for replicas on SETSLOT has all its
 * replicas in sync (online in its INFO replication); throws a DredisError naming the replicas
 * still behind after `timeoutMs`.
 */
export async function waitForReplicasInSync(
  pool: NodePool,
  addresses: readonly string[],
  options: AdminOptions,
  timeoutMs = REPLICA_SYNC_TIMEOUT_MS,
): Promise<void> {
  // A node that does not answer is left to the migration, which reports it in its own words.
  const engines = await Promise.all(addresses.map((a) => nodeEngine(pool.get(a)).catch(() => undefined)));
  const masters = addresses.filter((_, i) => engines[i] !== undefined && setSlotWaitsForReplicas(engines[i]));
  if (masters.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  let reported = false;
  for (;;) {
    const behind = (await Promise.all(masters.map((a) => replicasNotInSync(pool.get(a))))).flat();
    if (behind.length === 0) return;
    if (Date.now() >= deadline)
      throw replicasBehindError(behind, `still not in sync after ${Math.round(timeoutMs / 1000)} s`);
    if (!reported) {
      reported = true;
      report(options, {
        type: "step",
        message: `waiting for replicas to finish syncing before moving slots key by key (Valkey's CLUSTER SETSLOT waits for them): ${behind.join(", ")}`,
      });
    }
    options.signal?.throwIfAborted();
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** `how`: what went wrong with them, e.g. "still not in sync after 300 s". */
export function replicasBehindError(behind: readonly string[], how: string): DredisError {
  return new DredisError(
    ErrorCodes.MIGRATE,
    `replicas ${how}: ${behind.join(", ")}. ` +
      `On Valkey 8+ CLUSTER SETSLOT waits for every replica of the master and fails with NOREPLICAS ` +
      `while one is syncing; the slots being moved stay open and are finished by a re-run. Check each replica (INFO replication ` +
      `on it and its master, its log), or remove it from the topology, then re-run to resume`,
  );
}
