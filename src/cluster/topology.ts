/**
 * The desired cluster topology, as the caller states it. Cluster administration always works
 * from this, never from `CLUSTER NODES` alone (failed entries linger there).
 *
 * The Pulumi components render it (JSON) into the in-network migration workload, the local
 * platform writes it for its own processes, and `dredis cluster ... --topology` reads it.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { DredisError, ErrorCodes } from "../errors.ts";

const address = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^\s:]+):\d{1,5}$/, 'expected "host:port", for example "redis-shard-0-0:6379"');

export const topologySchema = z
  .object({
    shards: z
      .array(
        z
          .object({
            /** Stable shard name, e.g. "shard-0". */
            name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "expected lower-case letters, digits and '-'"),
            /** The node that starts as this shard's master. */
            master: address,
            /** Its replicas. */
            replicas: z.array(address).default([]),
          })
          .strict(),
      )
      .min(1, "at least one shard is needed"),
  })
  .strict()
  .superRefine((topology, ctx) => {
    const seen = new Set<string>();
    for (const [i, shard] of topology.shards.entries()) {
      for (const node of [shard.master, ...shard.replicas]) {
        if (seen.has(node))
          ctx.addIssue({ code: "custom", path: ["shards", i], message: `node ${node} appears twice` });
        seen.add(node);
      }
    }
    const names = topology.shards.map((s) => s.name);
    if (new Set(names).size !== names.length)
      ctx.addIssue({ code: "custom", path: ["shards"], message: "shard names must be unique" });
  });

export type Topology = z.output<typeof topologySchema>;
export type ShardSpec = Topology["shards"][number];

export function parseTopology(input: unknown, source = "topology"): Topology {
  const result = topologySchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new DredisError(ErrorCodes.TOPOLOGY, `invalid ${source}:\n${problems.join("\n")}`);
}

/** Reads a topology from inline JSON (starts with "{") or from a JSON file path. */
export async function loadTopology(jsonOrPath: string): Promise<Topology> {
  const text = jsonOrPath.trimStart().startsWith("{") ? jsonOrPath : await readFile(jsonOrPath, "utf8");
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new DredisError(ErrorCodes.TOPOLOGY, `topology is not valid JSON: ${(err as Error).message}`);
  }
  return parseTopology(data);
}
