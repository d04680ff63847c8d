/**
 * Administrative commands a standalone Redis answers about itself, answered for the whole cluster
 * by running them on every master and merging (`BROADCAST` in ../commands.ts):
 *
 * - SCRIPT KILL / FUNCTION KILL stop the script wherever one runs: +OK when a master stopped one,
 *   else the masters' refusal (UNKILLABLE before NOTBUSY, as it says more);
 * - FUNCTION STATS: the script running on any master, and the engines' counts (functions are
 *   loaded on every master, so the first master's);
 * - CLIENT PAUSE / UNPAUSE, MEMORY PURGE, SAVE, BGSAVE, BGREWRITEAOF: every master, and the
 *   answer they all give;
 * - LASTSAVE: the oldest of the masters' (every change before it is on disk);
 * - WAITAOF: each count the smallest over the masters (what every shard reached);
 * - LATENCY DOCTOR / GRAPH, MEMORY DOCTOR / MALLOC-STATS: each master's text under a line naming it;
 * - LATENCY HISTOGRAM: calls and cumulative bucket counts summed per command;
 * - MEMORY STATS: sizes summed, ratios the worst master's, per database figures summed.
 */
import { ProxyErrors } from "../../errors.ts";
import { RespMap, type RespValue } from "../../resp/decode.ts";
import {
  DoubleReply,
  ErrorReply,
  MapReply,
  SimpleString,
  VerbatimString,
  type ReplyValue,
} from "../../resp/encode.ts";
import type { BusyHandler } from "./handler.ts";
import { broadcast, shardFailure, toReply, type Broadcast } from "./broadcast.ts";

type Merge = (b: Broadcast) => ReplyValue;

const unexpected = (command: string) => new ErrorReply(ProxyErrors.unexpectedFromShard(command));

/**
 * Broadcasts the command as it came; every master's error alike is Redis's own answer, else it
 * names the shard. `dedicated`: each master on a connection of its own (WAITAOF blocks).
 */
function onMasters(command: string, merge: Merge, readonly = true, dedicated = false): BusyHandler {
  return async (argv, { fanOut }) => {
    const b = await broadcast(fanOut, argv, { readonly, dedicated });
    if (b instanceof ErrorReply) return b;
    const failed = shardFailure(command, b);
    if (failed) return failed;
    return merge(b);
  };
}

/** Every master gave the same simple reply (+OK, +Background saving started): that reply. */
const alike =
  (command: string): Merge =>
  ({ results }) => {
    const first = results[0];
    if (!(first instanceof SimpleString)) return unexpected(command);
    return results.every((r) => r instanceof SimpleString && r.value === first.value)
      ? first
      : unexpected(command);
  };

/** SCRIPT KILL / FUNCTION KILL: errors are answers here (NOTBUSY), so they are merged, not failures. */
const kill =
  (command: string): BusyHandler =>
  async (argv, { fanOut }) => {
    const b = await broadcast(fanOut, argv, { readonly: false });
    if (b instanceof ErrorReply) return b;
    if (b.results.some((r) => r instanceof SimpleString && r.value === "OK")) return new SimpleString("OK");
    const errors = b.results.filter((r): r is ErrorReply => r instanceof ErrorReply);
    if (errors.length < b.results.length) return unexpected(command);
    return errors.find((e) => !e.message.startsWith("NOTBUSY")) ?? errors[0]!;
  };

/** A RESP2 [key, value, ...] array (a map under RESP3) as its pairs; null for any other reply. */
function pairs(flat: RespValue | undefined): [RespValue, RespValue][] | null {
  const items = flat instanceof RespMap ? flat.entries.flat() : flat;
  if (!Array.isArray(items) || items.length % 2 !== 0) return null;
  const out: [RespValue, RespValue][] = [];
  for (let i = 0; i < items.length; i += 2) out.push([items[i]!, items[i + 1]!]);
  return out;
}

const field = (p: [RespValue, RespValue][], name: string) => p.find(([k]) => String(k) === name)?.[1];

/** A [key, value, ...] reply as the map Redis sends under RESP3 (values as they are). */
function mapOf(value: RespValue): ReplyValue {
  const p = pairs(value);
  return p === null ? toReply(value) : new MapReply(p.map(([k, v]) => [toReply(k), toReply(v)]));
}

/** FUNCTION STATS: `running_script` of the master running one (or null), `engines` of the first. */
const functionStats: Merge = ({ results }) => {
  const stats = results.map(pairs);
  if (stats.some((s) => s === null)) return unexpected("FUNCTION STATS");
  const running = stats.map((p) => field(p!, "running_script")).find((v) => v !== null && v !== undefined);
  const engines = pairs(field(stats[0]!, "engines")) ?? [];
  return new MapReply([
    ["running_script", running === undefined ? null : mapOf(running)],
    ["engines", new MapReply(engines.map(([name, figures]) => [toReply(name), mapOf(figures)]))],
  ]);
};

/** LASTSAVE: the oldest master's save (every change made before it is saved on its shard). */
const lastsave: Merge = ({ results }) =>
  results.every((r) => typeof r === "number") ? Math.min(...(results as number[])) : unexpected("LASTSAVE");

/** WAITAOF: [local, replicas] fsynced, each the smallest over the masters. */
const waitaof: Merge = ({ results }) => {
  if (!results.every((r) => Array.isArray(r) && r.length === 2 && r.every((n) => typeof n === "number")))
    return unexpected("WAITAOF");
  const pairs = results as number[][];
  return [Math.min(...pairs.map((p) => p[0]!)), Math.min(...pairs.map((p) => p[1]!))];
};

/**
 * Per-master text reports (doctor, graphs, allocator stats): one master's as it is, several each
 * under a `shard host:port` line. Masters that answered an error are left out when another
 * answered (LATENCY GRAPH of an event only some masters saw).
 */
const texts =
  (command: string): BusyHandler =>
  async (argv, { fanOut }) => {
    const b = await broadcast(fanOut, argv, { readonly: true });
    if (b instanceof ErrorReply) return b;
    const answered = b.results.flatMap((r, i) =>
      Buffer.isBuffer(r) ? [{ address: b.masters[i]!.address, text: r.toString("utf8") }] : [],
    );
    if (answered.length === 0) return shardFailure(command, b) ?? unexpected(command);
    if (b.results.length === 1) return new VerbatimString(answered[0]!.text);
    return new VerbatimString(answered.map(({ address, text }) => `shard ${address}:\n${text}`).join("\n"));
  };

/**
 * LATENCY HISTOGRAM [command ...]: per command, calls summed and the cumulative bucket counts of
 * every master added up (a master's count at a bucket is its count at its highest bucket below).
 */
const latencyHistogram: Merge = ({ results }) => {
  const commands = new Map<string, { calls: number; shards: [number, number][][] }>();
  for (const r of results) {
    const perCommand = pairs(r);
    if (perCommand === null) return unexpected("LATENCY HISTOGRAM");
    for (const [name, figures] of perCommand) {
      const fields = pairs(figures);
      const calls = fields === null ? undefined : field(fields, "calls");
      const histogram = fields === null ? null : pairs(field(fields, "histogram_usec"));
      if (typeof calls !== "number" || histogram === null) return unexpected("LATENCY HISTOGRAM");
      const entry = commands.get(String(name)) ?? { calls: 0, shards: [] };
      entry.calls += calls;
      entry.shards.push(histogram.map(([bucket, count]) => [Number(bucket), Number(count)]));
      commands.set(String(name), entry);
    }
  }
  return new MapReply(
    [...commands].map(([name, { calls, shards }]) => {
      const bounds = [...new Set(shards.flatMap((s) => s.map(([bucket]) => bucket)))].sort((a, b) => a - b);
      const merged: [ReplyValue, ReplyValue][] = [];
      let previous = 0;
      for (const bound of bounds) {
        const count = shards.reduce((n, s) => n + (s.findLast(([b]) => b <= bound)?.[1] ?? 0), 0);
        if (count > previous) merged.push([bound, count]);
        previous = count;
      }
      return [
        name,
        new MapReply([
          ["calls", calls],
          ["histogram_usec", new MapReply(merged)],
        ]),
      ];
    }),
  );
};

/** MEMORY STATS: figures that are ratios or percentages (floats) take the worst master's. */
const memoryStats: Merge = ({ results }) => {
  const all = results.map(pairs);
  if (all.some((m) => m === null)) return unexpected("MEMORY STATS");
  const merged = combine(all as [RespValue, RespValue][][]);
  // Bytes per key from the summed figures: a maximum or a sum of per-shard averages would mislead.
  const get = (key: string) => merged.entries.find(([k]) => k === key);
  const keys = get("keys.count")?.[1];
  const total = get("total.allocated")?.[1];
  const startup = get("startup.allocated")?.[1];
  const perKey = get("keys.bytes-per-key");
  if (perKey && typeof keys === "number" && typeof total === "number" && typeof startup === "number")
    perKey[1] = keys === 0 ? 0 : Math.floor((total - startup) / keys);
  return merged;
};

/** Several masters' MEMORY STATS maps as one: integers summed, doubles the maximum, maps merged alike. */
function combine(maps: [RespValue, RespValue][][]): MapReply {
  // A key only some masters list (db.N of a database they hold keys of) keeps its place.
  const keys: string[] = [];
  for (const map of maps)
    map.forEach(([k], i) => {
      const key = String(k);
      if (!keys.includes(key)) keys.splice(i === 0 ? 0 : keys.indexOf(String(map[i - 1]![0])) + 1, 0, key);
    });
  return new MapReply(
    keys.map((key) => {
      const values = maps.flatMap((m) => m.filter(([k]) => String(k) === key).map(([, v]) => v));
      return [key, mergeFigure(values)];
    }),
  );
}

function mergeFigure(values: RespValue[]): ReplyValue {
  if (values.every((v) => typeof v === "number")) return (values as number[]).reduce((a, b) => a + b, 0);
  const numbers = values.map((v) => (Buffer.isBuffer(v) ? Number(v.toString("latin1")) : NaN));
  if (numbers.every((n) => !Number.isNaN(n))) return new DoubleReply(Math.max(...numbers));
  const nested = values.map(pairs);
  if (nested.every((n) => n !== null)) return combine(nested as [RespValue, RespValue][][]);
  return toReply(values[0] ?? null);
}

/**
 * `dredis.unblock node local-address reason` (from a worker's CLIENT UNBLOCK, ../client-unblock.ts):
 * the node's id for the proxy's connection whose end is `local-address`, then CLIENT UNBLOCK there.
 */
export const unblockOnNode: BusyHandler = async (argv, { fanOut }) => {
  const [node, local, reason] = argv.slice(1).map((a) => a.toString("latin1"));
  const on = (args: string[], readonly: boolean) =>
    fanOut.run([{ slot: -1, target: node!, args, readonly }]).then(([reply]) => reply!);
  const list = await on(["CLIENT", "LIST", "TYPE", "normal"], true);
  if (!Buffer.isBuffer(list)) return list instanceof ErrorReply ? list : unexpected("CLIENT UNBLOCK");
  const line = list
    .toString("latin1")
    .split("\n")
    .find((l) => l.includes(` addr=${local} `));
  const id = line === undefined ? undefined : /^id=(\d+) /.exec(line)?.[1];
  // The command was answered meanwhile and its connection closed: nothing is blocked any more.
  if (id === undefined) return 0;
  return toReply(await on(["CLIENT", "UNBLOCK", id, reason!], false));
};

export const ADMIN_COMMANDS = {
  "script|kill": kill("SCRIPT KILL"),
  "function|kill": kill("FUNCTION KILL"),
  "function|stats": onMasters("FUNCTION STATS", functionStats),
  "client|pause": onMasters("CLIENT PAUSE", alike("CLIENT PAUSE"), false),
  "client|unpause": onMasters("CLIENT UNPAUSE", alike("CLIENT UNPAUSE"), false),
  "memory|purge": onMasters("MEMORY PURGE", alike("MEMORY PURGE"), false),
  save: onMasters("SAVE", alike("SAVE"), false),
  bgsave: onMasters("BGSAVE", alike("BGSAVE"), false),
  bgrewriteaof: onMasters("BGREWRITEAOF", alike("BGREWRITEAOF"), false),
  lastsave: onMasters("LASTSAVE", lastsave),
  waitaof: onMasters("WAITAOF", waitaof, true, true),
  "latency|doctor": texts("LATENCY DOCTOR"),
  "latency|graph": texts("LATENCY GRAPH"),
  "memory|doctor": texts("MEMORY DOCTOR"),
  "memory|malloc-stats": texts("MEMORY MALLOC-STATS"),
  "latency|histogram": onMasters("LATENCY HISTOGRAM", latencyHistogram),
  "memory|stats": onMasters("MEMORY STATS", memoryStats),
} satisfies Record<string, BusyHandler>;
