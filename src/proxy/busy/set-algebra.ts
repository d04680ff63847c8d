/**
 * SINTER, SUNION, SDIFF and SINTERCARD across slots.
 *
 * Each slot's keys are reduced on their shard with the single-slot command that is equivalent
 * there (SINTER of a slot's keys for an intersection, SUNION for a union; for SDIFF, SDIFF of the
 * first key's slot and SUNION of every other slot), so only partial results cross the network; the
 * proxy combines them. Every key is type-checked by its shard, so a key of another type anywhere
 * gives Redis's WRONGTYPE, as on a standalone Redis. Member order is unspecified, as in Redis.
 */
import { RedisErrors } from "../../errors.ts";
import { ErrorReply, SetReply, type ReplyValue } from "../../resp/encode.ts";
import { parseInteger } from "../../resp/request-parser.ts";
import type { RespValue } from "../../resp/decode.ts";
import type { BusyContext, BusyHandler } from "./handler.ts";
import { groupBySlot, partFailure, unexpectedReply, type FanOut, type Part } from "./fan-out.ts";

type Members = Map<string, Buffer>;
type Operation = "inter" | "union" | "diff";

export const sinter: BusyHandler = async (argv, { fanOut }) => {
  const members = await combine("SINTER", "inter", argv.slice(1), fanOut);
  return members instanceof ErrorReply ? members : new SetReply([...members.values()]);
};

export const sunion: BusyHandler = async (argv, { fanOut }) => {
  const members = await combine("SUNION", "union", argv.slice(1), fanOut);
  return members instanceof ErrorReply ? members : new SetReply([...members.values()]);
};

export const sdiff: BusyHandler = async (argv, { fanOut }) => {
  const members = await combine("SDIFF", "diff", argv.slice(1), fanOut);
  return members instanceof ErrorReply ? members : new SetReply([...members.values()]);
};

/** SINTERCARD numkeys key [key ...] [LIMIT limit], options checked as Redis checks them, with its texts. */
export async function sintercard(argv: Buffer[], { fanOut }: BusyContext): Promise<ReplyValue> {
  const numkeys = integerArg(argv[1]!);
  if (numkeys === null || numkeys < 1) return new ErrorReply(RedisErrors.numkeysPositive);
  if (numkeys > argv.length - 2) return new ErrorReply(RedisErrors.numkeysOverArgs);
  let limit = 0;
  for (let i = 2 + numkeys; i < argv.length; i++) {
    const moreArgs = argv.length - 1 - i;
    if (argv[i]!.toString("latin1").toLowerCase() === "limit" && moreArgs > 0) {
      const value = integerArg(argv[++i]!);
      if (value === null || value < 0) return new ErrorReply(RedisErrors.limitNegative);
      limit = value;
    } else {
      return new ErrorReply(RedisErrors.syntax);
    }
  }
  const members = await combine("SINTERCARD", "inter", argv.slice(2, 2 + numkeys), fanOut);
  if (members instanceof ErrorReply) return members;
  return limit > 0 ? Math.min(limit, members.size) : members.size;
}

async function combine(
  command: string,
  operation: Operation,
  keys: Buffer[],
  fanOut: FanOut,
): Promise<Members | ErrorReply> {
  const groups = groupBySlot(keys);
  const parts: Part[] = groups.map((group, g) => {
    const groupKeys = group.indexes.map((i) => keys[i]!);
    // Group 0 holds the first key, the one SDIFF subtracts from.
    const onShard = operation === "inter" ? "SINTER" : operation === "union" || g > 0 ? "SUNION" : "SDIFF";
    return { slot: group.slot, args: [onShard, ...groupKeys], readonly: true };
  });
  const results = await fanOut.run(parts);
  const failed = partFailure(command, parts, results);
  if (failed) return failed;
  const sets: Members[] = [];
  for (let p = 0; p < parts.length; p++) {
    const set = toMembers(results[p]!);
    if (set === null) return unexpectedReply(command, parts[p]!);
    sets.push(set);
  }
  const [first, ...rest] = sets as [Members, ...Members[]];
  switch (operation) {
    case "inter":
      for (const [id] of first) if (!rest.every((set) => set.has(id))) first.delete(id);
      return first;
    case "union":
      for (const set of rest) for (const [id, member] of set) first.set(id, member);
      return first;
    case "diff":
      for (const set of rest) for (const [id] of set) first.delete(id);
      return first;
  }
}

/** Members by a latin1 string of their bytes (a lossless key for a JS Map). */
function toMembers(reply: RespValue): Members | null {
  if (!Array.isArray(reply)) return null;
  const members: Members = new Map();
  for (const member of reply) {
    if (!Buffer.isBuffer(member)) return null;
    members.set(member.toString("latin1"), member);
  }
  return members;
}

function integerArg(arg: Buffer): number | null {
  return parseInteger(arg, 0, arg.length);
}
