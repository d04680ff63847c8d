/**
 * PUBSUB NUMSUB and NUMPAT merged over the masters the way ./pubsub.ts places subscriptions: a
 * channel lives on one master, so its counts add up; a pattern and a keyspace channel live on
 * every master, so each master already counts every subscriber the proxies carry, and the
 * largest count is the whole fleet's (a sum would count each subscriber once per master).
 */
import type { RespValue } from "../resp/decode.ts";

/** A channel whose messages are a node's own keyspace events (never sent over the cluster bus). */
export function isKeyspaceChannel(name: string): boolean {
  return name.startsWith("__keyspace@") || name.startsWith("__keyevent@");
}

/** PUBSUB NUMPAT: the patterns of the master that has the most (each carries every proxy's). */
export function mergeNumpat(results: RespValue[]): number | null {
  if (!results.every((r) => typeof r === "number")) return null;
  return Math.max(0, ...(results as number[]));
}

/** PUBSUB NUMSUB: [channel, count, ...] with the counts summed per channel, or the largest for keyspace channels. */
export function mergeNumsub(results: RespValue[]): RespValue[] | null {
  const [first] = results;
  if (!Array.isArray(first) || !results.every((r) => Array.isArray(r) && r.length === first.length))
    return null;
  const out = [...first];
  for (let i = 1; i < out.length; i += 2) {
    const counts = results.map((r) => (r as RespValue[])[i]);
    if (!counts.every((c) => typeof c === "number")) return null;
    const name = first[i - 1];
    const everywhere = Buffer.isBuffer(name) && isKeyspaceChannel(name.toString("latin1"));
    out[i] = everywhere ? Math.max(...(counts as number[])) : (counts as number[]).reduce((a, b) => a + b, 0);
  }
  return out;
}
