/**
 * Which server a shard node runs, from its `INFO server`: Redis, or Valkey (which also reports a
 * `redis_version`, frozen at 7.2.4, so `server_name`/`valkey_version` must be read first). Admin
 * code asks this before it uses what only one engine has (Valkey 9's atomic slot migration).
 */
import type { Redis } from "ioredis";

export type Engine = "redis" | "valkey";
export const ENGINES = ["redis", "valkey"] as const satisfies readonly Engine[];

export interface NodeEngine {
  engine: Engine;
  /** The engine's own version ("9.1.2" for Valkey, "7.0.15" for Redis). */
  version: string;
  /** [major, minor, patch], for comparisons. */
  semver: [number, number, number];
}

/** Reads the engine from the text of `INFO server` (or a whole `INFO`). */
export function parseServerEngine(info: string): NodeEngine {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const valkey = fields.get("server_name") === "valkey" || fields.has("valkey_version");
  const version = valkey ? fields.get("valkey_version") : fields.get("redis_version");
  if (version === undefined)
    throw new Error(
      `INFO server names no ${valkey ? "valkey_version" : "redis_version"}; is this a Redis or Valkey server?`,
    );
  const [major = 0, minor = 0, patch = 0] = version.split(".").map((part) => Number.parseInt(part, 10) || 0);
  return { engine: valkey ? "valkey" : "redis", version, semver: [major, minor, patch] };
}

/** The engine of the node behind a connection. */
export async function nodeEngine(client: Pick<Redis, "info">): Promise<NodeEngine> {
  return parseServerEngine(await client.info("server"));
}

/** Whether a node has Valkey 9's atomic slot migration (`CLUSTER MIGRATESLOTS`). */
export function hasAtomicSlotMigration(node: NodeEngine): boolean {
  return node.engine === "valkey" && node.semver[0] >= 9;
}

/** The engines of many nodes ("host:port" -> engine), asked in parallel through `connect` (e.g. `pool.get`). */
export async function clusterEngines(
  addresses: readonly string[],
  connect: (address: string) => Pick<Redis, "info">,
): Promise<Map<string, NodeEngine>> {
  const entries = await Promise.all(
    addresses.map(async (address) => [address, await nodeEngine(connect(address))] as const),
  );
  return new Map(entries);
}
