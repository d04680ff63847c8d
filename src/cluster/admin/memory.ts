/**
 * Resizes every node's memory in place: CONFIG SET maxmemory, then CONFIG REWRITE so a restart
 * keeps it. Refused when a node already holds more than the new size (shrinking below the data
 * would start evictions or OOM errors, not free anything).
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import type { Topology } from "../topology.ts";
import { GATE_REFUSED } from "./gates.ts";
import { NodePool } from "./node-pool.ts";
import { report, type AdminOptions } from "./options.ts";

export interface ResizeResult {
  maxmemory: number;
  /** Each node's used memory before the change, in bytes. */
  used: Record<string, number>;
}

/** Parses "268435456", "256mb", "1gb", "512kb" (units in 1024s, as redis.conf reads them). */
export function parseMemorySize(text: string): number {
  const match = /^(\d+)\s*(b|k|kb|m|mb|g|gb)?$/i.exec(text.trim());
  if (!match) {
    throw new DredisError(
      ErrorCodes.MEMORY_SIZE,
      `expected a memory size like "256mb", "1gb" or a number of bytes, got "${text}"`,
    );
  }
  const unit = (match[2] ?? "b").toLowerCase()[0];
  const factor = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return Number(match[1]) * factor;
}

export async function resizeMemory(
  topology: Topology,
  maxmemory: number,
  options: AdminOptions = {},
): Promise<ResizeResult> {
  const pool = new NodePool(options);
  try {
    const nodes = topology.shards.flatMap((s) => [s.master, ...s.replicas]);
    const used: Record<string, number> = {};
    for (const node of nodes) {
      const info = String(await pool.get(node).call("INFO", "memory"));
      used[node] = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    }
    const tooFull = nodes.filter((n) => used[n]! > maxmemory);
    if (maxmemory > 0 && tooFull.length > 0) {
      const lines = tooFull.map(
        (n) => `  - ${n} uses ${mb(used[n]!)}, more than the new maxmemory ${mb(maxmemory)}`,
      );
      throw new DredisError(
        GATE_REFUSED,
        `refusing to resize memory: it would be below what shards already hold:\n${lines.join("\n")}\n` +
          "    fix: choose a larger size, or add shards first so each holds less",
      );
    }
    if (options.dryRun) return { maxmemory, used };
    for (const node of nodes) {
      const client = pool.get(node);
      await client.call("CONFIG", "SET", "maxmemory", String(maxmemory));
      // A node started without a config file cannot rewrite one; the live value still holds.
      await client.call("CONFIG", "REWRITE").catch((err: Error) => {
        report(options, {
          type: "warning",
          message: `${node}: CONFIG REWRITE failed (${err.message}); maxmemory is set until restart`,
        });
      });
    }
    report(options, { type: "step", message: `maxmemory set to ${mb(maxmemory)} on ${nodes.length} nodes` });
    return { maxmemory, used };
  } finally {
    await pool.close();
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
