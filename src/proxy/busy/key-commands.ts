/**
 * MGET, MSET, DEL, UNLINK, EXISTS and TOUCH across slots: one part per slot, replies merged.
 *
 * Each part runs the same command on that slot's keys, so a part means on its shard what the
 * whole command means on a standalone Redis (duplicates included: `EXISTS a a` counts twice).
 */
import { RedisErrors } from "../../errors.ts";
import { ErrorReply, SimpleString, type ReplyValue } from "../../resp/encode.ts";
import type { BusyContext, BusyHandler } from "./commands.ts";
import { groupBySlot, partFailure, unexpectedReply, type Part } from "./fan-out.ts";

/** MGET: values in the caller's key order. */
export async function mget(argv: Buffer[], { fanOut }: BusyContext): Promise<ReplyValue> {
  const keys = argv.slice(1);
  const groups = groupBySlot(keys);
  const parts: Part[] = groups.map((group) => ({
    slot: group.slot,
    args: ["MGET", ...group.indexes.map((i) => keys[i]!)],
    readonly: true,
  }));
  const results = await fanOut.run(parts);
  const failed = partFailure("MGET", parts, results);
  if (failed) return failed;
  const values = new Array<ReplyValue>(keys.length);
  for (let p = 0; p < groups.length; p++) {
    const result = results[p];
    const indexes = groups[p]!.indexes;
    if (!Array.isArray(result) || result.length !== indexes.length) return unexpectedReply("MGET", parts[p]!);
    for (let j = 0; j < indexes.length; j++) {
      const value = result[j];
      if (value !== null && !Buffer.isBuffer(value)) return unexpectedReply("MGET", parts[p]!);
      values[indexes[j]!] = value ?? null;
    }
  }
  return values;
}

/**
 * MSET: +OK once every part succeeded. Not atomic across slots (each slot's part is): a reader may
 * see some slots written before others, which is why MSETNX, whose answer depends on atomicity,
 * is refused rather than split.
 */
export async function mset(argv: Buffer[], { fanOut }: BusyContext): Promise<ReplyValue> {
  if ((argv.length - 1) % 2 !== 0) return new ErrorReply(RedisErrors.wrongArity("mset"));
  const keys: Buffer[] = [];
  for (let i = 1; i < argv.length; i += 2) keys.push(argv[i]!);
  const parts: Part[] = groupBySlot(keys).map((group) => {
    const args: Buffer[] = [argv[0]!];
    for (const k of group.indexes) args.push(argv[1 + k * 2]!, argv[2 + k * 2]!);
    return { slot: group.slot, args, readonly: false };
  });
  const results = await fanOut.run(parts);
  const failed = partFailure("MSET", parts, results);
  if (failed) return failed;
  for (let p = 0; p < parts.length; p++) {
    const result = results[p];
    if (!(result instanceof SimpleString) || result.value !== "OK") return unexpectedReply("MSET", parts[p]!);
  }
  return new SimpleString("OK");
}

/** DEL, UNLINK, EXISTS, TOUCH: the sum of the parts' counts. */
export function summed(command: string, readonly: boolean): BusyHandler {
  return async (argv, { fanOut }) => {
    const keys = argv.slice(1);
    const parts: Part[] = groupBySlot(keys).map((group) => ({
      slot: group.slot,
      args: [command, ...group.indexes.map((i) => keys[i]!)],
      readonly,
    }));
    const results = await fanOut.run(parts);
    const failed = partFailure(command, parts, results);
    if (failed) return failed;
    let total = 0;
    for (let p = 0; p < parts.length; p++) {
      const count = results[p];
      if (typeof count !== "number") return unexpectedReply(command, parts[p]!);
      total += count;
    }
    return total;
  };
}
