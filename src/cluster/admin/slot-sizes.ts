/**
 * Measures the slots about to move, before anything moves: keys per slot (COUNTKEYSINSLOT),
 * bytes per slot (MEMORY USAGE of every key), and the big keys among them. Big keys are what
 * stall a migration (a MIGRATE blocks both nodes while it serialises one key), so they are
 * reported up front and get a MIGRATE timeout sized to them. Every database holding keys is
 * measured (Valkey 9's cluster-databases: a slot's keys of every database move with it).
 */
import type { Redis } from "ioredis";
import type { NodePool } from "./node-pool.ts";

export interface BigKey {
  key: string;
  slot: number;
  bytes: number;
  /** Address of the node holding it. */
  node: string;
  /** The database holding it (0 unless Valkey's cluster-databases > 1). */
  db: number;
}

export interface SlotSize {
  keys: number;
  bytes: number;
}

/** Commands per pipeline round trip while measuring. */
const PIPELINE_CHUNK = 2_000;

/** Sizes the given slots on one node; keys at or above `bigKeyBytes` are returned as big keys. */
export async function measureSlots(
  pool: NodePool,
  address: string,
  slots: readonly number[],
  bigKeyBytes: number,
): Promise<{ sizes: Map<number, SlotSize>; bigKeys: BigKey[] }> {
  const client = pool.get(address);
  const sizes = new Map<number, SlotSize>(slots.map((slot) => [slot, { keys: 0, bytes: 0 }]));
  const bigKeys: BigKey[] = [];
  const dbs = await databasesWithKeys(client);
  // With keys outside database 0, every pipeline selects its database (and leaves the shared
  // connection in database 0), as the migration does.
  const select = dbs.some((db) => db !== 0);
  for (const db of dbs) {
    const run = (commands: (string | number)[][]) => pipelined(client, commands, select ? db : undefined);
    const counts = await run(slots.map((slot) => ["CLUSTER", "COUNTKEYSINSLOT", slot]));
    const withKeys: { slot: number; keys: number }[] = [];
    slots.forEach((slot, i) => {
      const keys = Number(counts[i]);
      sizes.get(slot)!.keys += keys;
      if (keys > 0) withKeys.push({ slot, keys });
    });
    const keyLists = (await run(
      withKeys.map(({ slot, keys }) => ["CLUSTER", "GETKEYSINSLOT", slot, keys]),
    )) as string[][];
    const keys = withKeys.flatMap(({ slot }, i) => keyLists[i]!.map((key) => ({ key, slot })));
    const usage = await run(keys.map(({ key }) => ["MEMORY", "USAGE", key]));
    keys.forEach(({ key, slot }, i) => {
      // null: the key expired or was deleted since GETKEYSINSLOT.
      const bytes = Number(usage[i] ?? 0);
      sizes.get(slot)!.bytes += bytes;
      if (bytes >= bigKeyBytes) bigKeys.push({ key, slot, bytes, node: address, db });
    });
  }
  return { sizes, bigKeys };
}

/** The databases holding keys on a node (INFO keyspace), or [0] when none does. */
export async function databasesWithKeys(client: Pick<Redis, "call">): Promise<number[]> {
  const keyspace = String(await client.call("INFO", "keyspace"));
  const dbs = [...keyspace.matchAll(/^db(\d+):/gm)].map((m) => Number(m[1]));
  return dbs.length > 0 ? dbs : [0];
}

/** Sends the commands in pipelines of PIPELINE_CHUNK, each in database `db` when given. */
async function pipelined(client: Redis, commands: (string | number)[][], db?: number): Promise<unknown[]> {
  const replies: unknown[] = [];
  for (let i = 0; i < commands.length; i += PIPELINE_CHUNK) {
    const pipeline = client.pipeline();
    if (db !== undefined) pipeline.call("SELECT", db);
    for (const [name, ...args] of commands.slice(i, i + PIPELINE_CHUNK)) pipeline.call(String(name), ...args);
    if (db !== undefined) pipeline.call("SELECT", 0);
    const results = (await pipeline.exec()) ?? [];
    for (const [err, reply] of db !== undefined ? results.slice(1, -1) : results) {
      if (err) throw err;
      replies.push(reply);
    }
  }
  return replies;
}

/**
 * MIGRATE's I/O timeout for a key of `bytes`: redis-cli's 60 s, or more for a big key, allowing
 * 8 MiB/s for serialising, sending and restoring it, doubled for a busy machine.
 */
export function migrateTimeoutFor(bytes: number, baseMs = 60_000): number {
  return Math.max(baseMs, Math.ceil(bytes / (8 * 1024 * 1024)) * 2_000);
}
