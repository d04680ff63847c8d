/**
 * INFO through the proxy: the worker writes its own sections (Server, Clients, Cluster: the
 * proxy's view) and sends every section asked for here as `dredis.info name lines name lines ...`;
 * the busy proxy fills the shards' sections with the masters' figures, merged so that the text
 * reads as one standalone Redis holding every key would print it:
 *
 * - counters and sizes are summed (used_memory, keyspace_hits, total_commands_processed, CPU
 *   seconds, instantaneous_ops_per_sec, ...), `*_human` recomputed from the summed bytes; peaks
 *   are summed too, so that a peak is never below the current figure;
 * - flags, durations and ratios take the worst shard (the maximum: loading, *_in_progress,
 *   mem_fragmentation_ratio, latest_fork_usec, ...), `*_status` the first that is not ok, and
 *   rdb_last_save_time the oldest (LASTSAVE's meaning: every change before it is saved);
 * - Commandstats and Errorstats are summed per command and per error (usec_per_call recomputed);
 *   Latencystats take each percentile's maximum (percentiles do not add up);
 * - Replication, where a sum would lie, has one line per shard (its master, replicas and offset);
 * - Keyspace sums keys and expires per database, avg_ttl weighted by expires;
 * - text fields (maxmemory_policy, mem_allocator) are the first master's.
 */
import { ErrorReply } from "../../resp/encode.ts";
import { renderInfo, type InfoSection } from "../context.ts";
import { SHARD_SECTIONS } from "../info-sections.ts";
import type { BusyHandler } from "./handler.ts";
import { broadcast, shardFailure, type Master } from "./broadcast.ts";

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
      lines.push(
        ...mergeSection(
          name,
          perShard.map((shard) => shard.get(name) ?? []),
          b.masters,
        ),
      );
    }
  }
  return renderInfo(sections);
};

function mergeSection(name: string, shards: string[][], masters: readonly Master[]): string[] {
  switch (name) {
    case "keyspace":
      return keyspace(shards);
    case "replication":
      return replication(shards, masters);
    case "modules":
      return [...new Set(shards.flat())];
    case "commandstats":
    case "errorstats":
      return perKey(shards, "sum");
    case "latencystats":
      return perKey(shards, "max");
    default:
      return mergedFields(shards);
  }
}

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

/** `field:value` lines of every shard, in the first shard's field order (later fields appended). */
function fieldsOf(shards: string[][]): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const lines of shards) {
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const field = line.slice(0, colon);
      const values = fields.get(field) ?? [];
      values.push(line.slice(colon + 1));
      fields.set(field, values);
    }
  }
  return fields;
}

/** Flags, durations, sizes of one moment and ratios: the worst shard's, not a sum. */
const WORST =
  /(_in_progress|_scheduled|_enabled|_running|_time_sec|_age|_ratio|_perc|_cow_size|_cow_peak)$|^(loading|async_loading|latest_fork_usec|total_system_memory|current_eviction_exceeded_time)$/;
/** Points in time where the oldest is the true one for the whole cluster. */
const OLDEST = /^rdb_last_save_time$/;
const NUMBER = /^-?\d+(\.\d+)?%?$/;

function mergedFields(shards: string[][]): string[] {
  const fields = fieldsOf(shards);
  const merged = new Map<string, string>();
  for (const [field, values] of fields) {
    if (field.endsWith("_human")) continue;
    merged.set(field, mergeValues(field, values));
  }
  const out: string[] = [];
  for (const field of fields.keys()) {
    if (field.endsWith("_human")) {
      const bytes = merged.get(field.slice(0, -"_human".length));
      if (bytes !== undefined && /^\d+$/.test(bytes)) out.push(`${field}:${bytesToHuman(Number(bytes))}`);
    } else out.push(`${field}:${merged.get(field)!}`);
  }
  return out;
}

function mergeValues(field: string, values: string[]): string {
  if (field.endsWith("_status")) return values.find((v) => v !== "ok") ?? "ok";
  if (!values.every((v) => NUMBER.test(v))) return values[0]!;
  const numbers = values.map((v) => parseFloat(v));
  const total = OLDEST.test(field)
    ? Math.min(...numbers)
    : WORST.test(field)
      ? Math.max(...numbers)
      : numbers.reduce((a, b) => a + b, 0);
  return formatLike(values[0]!, total);
}

/** A number written as `sample` is (same decimals, same % sign). */
function formatLike(sample: string, value: number): string {
  const percent = sample.endsWith("%") ? "%" : "";
  const dot = sample.indexOf(".");
  const decimals = dot < 0 ? 0 : sample.length - dot - 1 - percent.length;
  return `${value.toFixed(decimals)}${percent}`;
}

/**
 * `name:k=v,k=v` lines (Commandstats, Errorstats, Latencystats) merged per name: each figure
 * summed or its maximum taken; usec_per_call is recomputed from the summed usec and calls.
 */
function perKey(shards: string[][], how: "sum" | "max"): string[] {
  const merged = new Map<string, Map<string, string[]>>();
  for (const lines of shards) {
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const figures = merged.get(line.slice(0, colon)) ?? new Map<string, string[]>();
      for (const pair of line.slice(colon + 1).split(",")) {
        const eq = pair.indexOf("=");
        const values = figures.get(pair.slice(0, eq)) ?? [];
        values.push(pair.slice(eq + 1));
        figures.set(pair.slice(0, eq), values);
      }
      merged.set(line.slice(0, colon), figures);
    }
  }
  return [...merged].map(([name, figures]) => {
    const totals = new Map<string, string>();
    for (const [key, values] of figures) {
      const numbers = values.map((v) => parseFloat(v));
      const total = how === "max" ? Math.max(...numbers) : numbers.reduce((a, b) => a + b, 0);
      totals.set(key, formatLike(values[0]!, total));
    }
    if (totals.has("usec_per_call")) {
      const calls = Number(totals.get("calls"));
      totals.set("usec_per_call", (calls === 0 ? 0 : Number(totals.get("usec")) / calls).toFixed(2));
    }
    return `${name}:${[...totals].map(([k, v]) => `${k}=${v}`).join(",")}`;
  });
}

/**
 * The proxy is a master to its clients; each shard's replication is listed on its own lines
 * (summed offsets or replica counts would describe no node):
 * `shard0:master=host:port,connected_slaves=1,master_repl_offset=..,master_failover_state=..`
 * and `shard0_slave0:ip=..,port=..,state=online,offset=..,lag=0` as Redis words a replica.
 */
function replication(shards: string[][], masters: readonly Master[]): string[] {
  const out = ["role:master", `shards:${shards.length}`];
  shards.forEach((lines, i) => {
    const fields = fieldsOf([lines]);
    const value = (field: string) => fields.get(field)?.[0] ?? "";
    out.push(
      `shard${i}:master=${masters[i]!.address},connected_slaves=${value("connected_slaves")},` +
        `master_repl_offset=${value("master_repl_offset")},master_failover_state=${value("master_failover_state")}`,
    );
    for (const [field, values] of fields)
      if (/^slave\d+$/.test(field)) out.push(`shard${i}_${field}:${values[0]!}`);
  });
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
