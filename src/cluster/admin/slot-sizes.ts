/**
 * Measures the slots about to move, before anything moves: keys per slot (COUNTKEYSINSLOT),
 * bytes per slot (MEMORY USAGE of every key), and the big keys among them. Big keys are what
 * stall a migration (a MIGRATE blocks both nodes while it serialises one key), so they are
 * reported up front and get a MIGRATE timeout sized to them.
 */
import type { Redis } from "ioredis";
import type { NodePool } from "./node-pool.ts";

export interface BigKey {
  key: string;
  slot: number;
  bytes: number;
  /** Address of the node holding it. */
  node: string;
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
  const counts = await pipelined(
    client,
    slots.map((slot) => ["CLUSTER", "COUNTKEYSINSLOT", slot]),
  );
  const sizes = new Map<number, SlotSize>();
  const withKeys: number[] = [];
  slots.forEach((slot, i) => {
    const keys = Number(counts[i]);
    sizes.set(slot, { keys, bytes: 0 });
    if (keys > 0) withKeys.push(slot);
  });
  const keyLists = (await pipelined(
    client,
    withKeys.map((slot) => ["CLUSTER", "GETKEYSINSLOT", slot, sizes.get(slot)!.keys]),
  )) as string[][];
  const keys = withKeys.flatMap((slot, i) => keyLists[i]!.map((key) => ({ key, slot })));
  const usage = await pipelined(
    client,
    keys.map(({ key }) => ["MEMORY", "USAGE", key]),
  );
  const bigKeys: BigKey[] = [];
  keys.forEach(({ key, slot }, i) => {
    // null: the key expired or was deleted since GETKEYSINSLOT.
    const bytes = Number(usage[i] ?? 0);
    sizes.get(slot)!.bytes += bytes;
    if (bytes >= bigKeyBytes) bigKeys.push({ key, slot, bytes, node: address });
  });
  return { sizes, bigKeys };
}

async function pipelined(client: Redis, commands: (string | number)[][]): Promise<unknown[]> {
  const replies: unknown[] = [];
  for (let i = 0; i < commands.length; i += PIPELINE_CHUNK) {
    const pipeline = client.pipeline();
    for (const [name, ...args] of commands.slice(i, i + PIPELINE_CHUNK)) pipeline.call(String(name), ...args);
    for (const [err, reply] of (await pipeline.exec()) ?? []) {
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
