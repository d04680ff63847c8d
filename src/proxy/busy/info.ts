/**
 * INFO through the proxy: the worker renders its own sections (Server, Clients, ...: the proxy's
 * view) and sends them here as `dredis.info name lines name lines ...`; the busy proxy fills in
 * Memory, Stats and Keyspace with the shards' figures summed, and renders the whole text.
 *
 * Summing rules: integer fields are summed (used_memory, keyspace_hits, total_commands_processed,
 * ...), `*_human` fields are recomputed from the summed byte counts, text fields (maxmemory_policy,
 * mem_allocator) are the first shard's, and ratios and other fractional figures are left out
 * (a sum of ratios means nothing). Keyspace sums keys and expires; avg_ttl is weighted by expires.
 */
import { ErrorReply } from "../../resp/encode.ts";
import { renderInfo, type InfoSection } from "../context.ts";
import type { BusyHandler } from "./handler.ts";
import { broadcast, shardFailure } from "./broadcast.ts";

/** Sections whose figures come from the shards. */
const SHARD_SECTIONS = new Set(["memory", "stats", "keyspace"]);

export const shardInfo: BusyHandler = async (argv, { fanOut }) => {
  const sections: InfoSection[] = [];
  for (let i = 1; i + 1 < argv.length; i += 2) {
    const body = argv[i + 1]!.toString("utf8");
    sections.push([argv[i]!.toString("latin1"), body === "" ? [] : body.split("\r\n")]);
  }
  const wanted = sections.filter(([name]) => SHARD_SECTIONS.has(name)).map(([name]) => name);
  if (wanted.length > 0) {
    const b = await broadcast(fanOut, ["INFO", ...wanted], { readonly: true });
    if (b instanceof ErrorReply) return b;
    const failed = shardFailure("INFO", b);
    if (failed) return failed;
    const perShard = b.results.map((r) => parseInfo(Buffer.isBuffer(r) ? r.toString("utf8") : ""));
    for (const [name, lines] of sections) {
      if (!SHARD_SECTIONS.has(name)) continue;
      const shardLines = perShard.map((shard) => shard.get(name) ?? []);
      lines.push(...(name === "keyspace" ? keyspace(shardLines) : summedFields(shardLines)));
    }
  }
  return renderInfo(sections);
};

/** Section name (lower case) to its lines. */
function parseInfo(text: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split("\r\n")) {
    if (line.startsWith("# ")) sections.set(line.slice(2).toLowerCase(), (current = []));
    else if (line !== "" && current !== undefined) current.push(line);
  }
  return sections;
}

function summedFields(shards: string[][]): string[] {
  const order: string[] = [];
  const totals = new Map<string, number | string>();
  for (const lines of shards) {
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const field = line.slice(0, colon);
      const value = line.slice(colon + 1);
      const seen = totals.get(field);
      if (seen === undefined) order.push(field);
      if (/^-?\d+$/.test(value)) totals.set(field, (typeof seen === "number" ? seen : 0) + Number(value));
      else if (seen === undefined) totals.set(field, value);
    }
  }
  const out: string[] = [];
  for (const field of order) {
    const value = totals.get(field)!;
    if (field.endsWith("_human")) {
      const bytes = totals.get(field.slice(0, -"_human".length));
      if (typeof bytes === "number") out.push(`${field}:${bytesToHuman(bytes)}`);
    } else if (typeof value === "number" || !/^-?[\d.]+%?$/.test(value)) out.push(`${field}:${value}`);
  }
  return out;
}

/** db0:keys=..,expires=..,avg_ttl=.. summed over the shards (a database with no keys is not listed). */
function keyspace(shards: string[][]): string[] {
  const dbs = new Map<string, { keys: number; expires: number; ttlSum: number }>();
  for (const lines of shards) {
    for (const line of lines) {
      const match = /^(db\d+):keys=(\d+),expires=(\d+),avg_ttl=(\d+)/.exec(line);
      if (match === null) continue;
      const db = dbs.get(match[1]!) ?? { keys: 0, expires: 0, ttlSum: 0 };
      db.keys += Number(match[2]);
      db.expires += Number(match[3]);
      db.ttlSum += Number(match[4]) * Number(match[3]);
      dbs.set(match[1]!, db);
    }
  }
  return [...dbs]
    .filter(([, db]) => db.keys > 0)
    .map(
      ([name, db]) =>
        `${name}:keys=${db.keys},expires=${db.expires},avg_ttl=${db.expires === 0 ? 0 : Math.round(db.ttlSum / db.expires)}`,
    );
}

/** Redis's bytesToHuman: B, K, M, G, T, P with two decimals. */
function bytesToHuman(bytes: number): string {
  const units = ["B", "K", "M", "G", "T", "P"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes}B` : `${value.toFixed(2)}${units[unit]}`;
}
