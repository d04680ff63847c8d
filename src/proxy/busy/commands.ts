/**
 * The commands the busy proxy runs: every command the worker may send it (`SPLITTABLE` and
 * `BROADCAST` in ../commands.ts), each with the handler that splits or broadcasts, fans out and
 * merges it. Subcommands are named as Redis names them ("script|load").
 */
import type { Protocol, ReplyValue } from "../../resp/encode.ts";
import type { FanOut } from "./fan-out.ts";
import { CLUSTER_WIDE_COMMANDS } from "./cluster-wide.ts";
import { pfcount } from "./hyperloglog.ts";
import { shardInfo, SHARD_INFO } from "./info.ts";
import { scan } from "./scan.ts";
import { declined } from "./key-split.ts";
import { sdiff, sinter, sintercard, sunion } from "./set-algebra.ts";
import { zdiff, zinter, zunion } from "./sorted-set-algebra.ts";

/** What a handler needs besides its arguments. */
export interface BusyContext {
  fanOut: FanOut;
  /** The protocol of the connection the command came on (reply shapes differ, e.g. WITHSCORES). */
  protocol: Protocol;
}

/**
 * Runs one command (argv[0] is its name; arity is already checked) and resolves with the merged
 * reply, or an ErrorReply. Never rejects for a failed part: that is an error reply.
 */
export type BusyHandler = (argv: Buffer[], context: BusyContext) => Promise<ReplyValue>;

export const BUSY_COMMANDS: ReadonlyMap<string, BusyHandler> = new Map<string, BusyHandler>([
  // Split in ./key-split.ts, before handlers are looked up; these only word what it declines.
  ["mget", declined],
  ["mset", declined],
  ["del", declined],
  ["unlink", declined],
  ["exists", declined],
  ["touch", declined],
  ["sinter", sinter],
  ["sunion", sunion],
  ["sdiff", sdiff],
  ["sintercard", sintercard],
  ["zunion", zunion],
  ["zinter", zinter],
  ["zdiff", zdiff],
  ["pfcount", pfcount],
  ["scan", scan],
  [SHARD_INFO, shardInfo],
  ...CLUSTER_WIDE_COMMANDS,
]);

/** Commands only workers send (not Redis commands, so not in the command table). */
export const INTERNAL_COMMANDS: ReadonlySet<string> = new Set([SHARD_INFO]);
