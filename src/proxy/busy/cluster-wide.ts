/**
 * Keyless commands with a cluster-wide meaning (`BROADCAST` in ../commands.ts): each runs on every
 * master and the replies are merged into the one answer a standalone Redis holding all the keys
 * would give. Where the shards must agree (SCRIPT LOAD's sha, FUNCTION LOAD's library name), a
 * disagreement is an error naming the shards; an error on one shard names that shard.
 */
import { ProxyErrors, RedisErrors } from "../../errors.ts";
import { ErrorReply, SimpleString, type ReplyValue } from "../../resp/encode.ts";
import type { RespValue } from "../../resp/decode.ts";
import { parseInteger } from "../../resp/request-parser.ts";
import type { BroadcastName } from "../commands.ts";
import type { BusyHandler } from "./handler.ts";
import type { ADMIN_COMMANDS } from "./admin-commands.ts";
import type { CONFIG_COMMANDS } from "./config.ts";
import { mergeNumpat, mergeNumsub } from "../pubsub-counts.ts";
import { broadcast, disagreement, shardFailure, sum, toReply, union, type Broadcast } from "./broadcast.ts";

const OK = new SimpleString("OK");

/** Name for messages: "SCRIPT LOAD", "DBSIZE". */
function title(argv: Buffer[], withSub: boolean): string {
  const name = argv[0]!.toString("latin1").toUpperCase();
  return withSub ? `${name} ${argv[1]!.toString("latin1").toUpperCase()}` : name;
}

type Merge = (b: Broadcast, argv: Buffer[]) => ReplyValue;

/** A handler that broadcasts the command as it came and merges the replies with `merge`. */
function everyMaster(withSub: boolean, readonly: boolean, merge: Merge): BusyHandler {
  return async (argv, { fanOut }) => {
    const command = title(argv, withSub);
    const b = await broadcast(fanOut, argv, { readonly });
    if (b instanceof ErrorReply) return b;
    const failed = shardFailure(command, b);
    if (failed) return failed;
    return merge(b, argv);
  };
}

const unexpected = (command: string) => new ErrorReply(ProxyErrors.unexpectedFromShard(command));

const fromShards = (command: string, merged: RespValue | null): ReplyValue =>
  merged === null ? unexpected(command) : toReply(merged);

const summed =
  (command: string): Merge =>
  ({ results }) =>
    sum(results) ?? unexpected(command);

const allOk =
  (command: string): Merge =>
  ({ results }) =>
    results.every((r) => r instanceof SimpleString && r.value === "OK") ? OK : unexpected(command);

/** Every master must answer the same bulk string (a script's sha, a library's name). */
const agreed =
  (command: string): Merge =>
  (b) => {
    const first = b.results[0];
    if (!Buffer.isBuffer(first)) return unexpected(command);
    return b.results.every((r) => Buffer.isBuffer(r) && r.equals(first)) ? first : disagreement(command, b);
  };

const unionOf =
  (command: string): Merge =>
  ({ results }) =>
    union(results) ?? unexpected(command);

/** SCRIPT EXISTS: 1 only where every master has the script (EVALSHA then runs on any shard). */
const everywhere: Merge = ({ results }) => {
  const [first, ...rest] = results;
  if (!Array.isArray(first) || !rest.every((r) => Array.isArray(r) && r.length === first.length))
    return unexpected("SCRIPT EXISTS");
  return first.map((_, i) => (results.every((r) => (r as RespValue[])[i] === 1) ? 1 : 0));
};

/** PUBSUB NUMSUB / SHARDNUMSUB: [channel, count, ...] with the counts summed per channel. */
const numsub =
  (command: string): Merge =>
  ({ results }) => {
    const [first] = results;
    if (!Array.isArray(first)) return unexpected(command);
    const out: ReplyValue[] = first.map(toReply);
    for (let i = 1; i < out.length; i += 2) {
      const counts = results.map((r) => (Array.isArray(r) ? (r[i] ?? null) : null));
      out[i] = sum(counts) ?? 0;
    }
    return out;
  };

/** RANDOMKEY: a random key of a master chosen in proportion to its key count, so every key is as likely. */
const randomkey: BusyHandler = async (_argv, { fanOut }) => {
  const sizes = await broadcast(fanOut, ["DBSIZE"], { readonly: true });
  if (sizes instanceof ErrorReply) return sizes;
  const failed = shardFailure("RANDOMKEY", sizes);
  if (failed) return failed;
  const counts = sizes.results.map((r) => (typeof r === "number" ? r : 0));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let pick = Math.floor(Math.random() * total);
  const index = counts.findIndex((c) => (pick -= c) < 0);
  const [reply] = await fanOut.run([
    { slot: sizes.masters[index]!.slot, args: ["RANDOMKEY"], readonly: true },
  ]);
  // The master emptied meanwhile: as Redis does for an empty database.
  return toReply(reply ?? null);
};

/** WAIT numreplicas timeout: every master waits (each on its own connection); the minimum is the answer. */
const wait: BusyHandler = async (argv, { fanOut }) => {
  const b = await broadcast(fanOut, argv, { readonly: true, dedicated: true });
  if (b instanceof ErrorReply) return b;
  const failed = shardFailure("WAIT", b);
  if (failed) return failed;
  if (!b.results.every((r) => typeof r === "number")) return unexpected("WAIT");
  return Math.min(...(b.results as number[]));
};

/** SLOWLOG GET [count]: every shard's newest entries, newest first across shards, `count` of them. */
const slowlogGet: BusyHandler = async (argv, context) => {
  let count = 10;
  if (argv.length > 2) {
    const parsed = parseInteger(argv[2]!, 0, argv[2]!.length);
    if (parsed === null || parsed < -1) return new ErrorReply(RedisErrors.countAtLeastMinusOne);
    count = parsed === -1 ? Infinity : parsed;
  }
  return everyMaster(true, true, ({ results }) => {
    const entries: RespValue[][] = [];
    for (const r of results) {
      if (!Array.isArray(r)) return unexpected("SLOWLOG GET");
      for (const entry of r) if (Array.isArray(entry)) entries.push(entry);
    }
    // [id, unix time, microseconds, args, addr, name]: newest first, then the higher id.
    entries.sort((a, b) => Number(b[1]) - Number(a[1]) || Number(b[0]) - Number(a[0]));
    return entries.slice(0, count).map(toReply);
  })(argv, context);
};

/**
 * LATENCY LATEST: one row per event, the most recent spike of any shard and the worst ever
 * (Valkey adds the total and the count of spikes: summed).
 */
const latencyLatest: Merge = ({ results }) => {
  const events = new Map<string, RespValue[]>();
  for (const r of results) {
    if (!Array.isArray(r)) return unexpected("LATENCY LATEST");
    for (const row of r) {
      if (!Array.isArray(row) || !Buffer.isBuffer(row[0])) continue;
      const name = row[0].toString("latin1");
      const seen = events.get(name);
      if (seen === undefined) events.set(name, [...row]);
      else {
        if (Number(row[1]) > Number(seen[1])) [seen[1], seen[2]] = [row[1]!, row[2]!];
        seen[3] = Math.max(Number(seen[3]), Number(row[3]));
        for (let i = 4; i < seen.length; i++) seen[i] = Number(seen[i]) + Number(row[i]);
      }
    }
  }
  return [...events.values()].map(toReply);
};

/** LATENCY HISTORY event: every shard's samples, oldest first. */
const latencyHistory: Merge = ({ results }) => {
  const samples: RespValue[][] = [];
  for (const r of results) {
    if (!Array.isArray(r)) return unexpected("LATENCY HISTORY");
    for (const s of r) if (Array.isArray(s)) samples.push(s);
  }
  samples.sort((a, b) => Number(a[0]) - Number(b[0]));
  return samples.map(toReply);
};

/** FLUSHALL / FLUSHDB [ASYNC|SYNC]: every master; +OK once all did. */
const flush = (name: string) => everyMaster(false, false, allOk(name));

export const CLUSTER_WIDE_COMMANDS: Record<
  Exclude<BroadcastName, "scan" | keyof typeof CONFIG_COMMANDS | keyof typeof ADMIN_COMMANDS>,
  BusyHandler
> = {
  dbsize: everyMaster(false, true, summed("DBSIZE")),
  keys: everyMaster(false, true, unionOf("KEYS")),
  randomkey,
  flushall: flush("FLUSHALL"),
  flushdb: flush("FLUSHDB"),
  wait,
  "script|load": everyMaster(true, false, agreed("SCRIPT LOAD")),
  "script|exists": everyMaster(true, true, everywhere),
  "script|flush": everyMaster(true, false, allOk("SCRIPT FLUSH")),
  "function|load": everyMaster(true, false, agreed("FUNCTION LOAD")),
  "function|delete": everyMaster(true, false, allOk("FUNCTION DELETE")),
  "function|flush": everyMaster(true, false, allOk("FUNCTION FLUSH")),
  "function|restore": everyMaster(true, false, allOk("FUNCTION RESTORE")),
  "slowlog|get": slowlogGet,
  "slowlog|len": everyMaster(true, true, summed("SLOWLOG LEN")),
  "slowlog|reset": everyMaster(true, false, allOk("SLOWLOG RESET")),
  "latency|latest": everyMaster(true, true, latencyLatest),
  "latency|history": everyMaster(true, true, latencyHistory),
  "latency|reset": everyMaster(true, false, summed("LATENCY RESET")),
  "pubsub|channels": everyMaster(true, true, unionOf("PUBSUB CHANNELS")),
  // Pub/Sub area: merged as ../pubsub.ts places subscriptions (../pubsub-counts.ts).
  "pubsub|numsub": everyMaster(true, true, ({ results }) =>
    fromShards("PUBSUB NUMSUB", mergeNumsub(results)),
  ),
  "pubsub|numpat": everyMaster(true, true, ({ results }) =>
    fromShards("PUBSUB NUMPAT", mergeNumpat(results)),
  ),
  "pubsub|shardchannels": everyMaster(true, true, unionOf("PUBSUB SHARDCHANNELS")),
  "pubsub|shardnumsub": everyMaster(true, true, numsub("PUBSUB SHARDNUMSUB")),
};
