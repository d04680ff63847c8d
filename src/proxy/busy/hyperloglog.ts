/**
 * PFCOUNT of several keys across slots: the cardinality of their UNION, as Redis defines it.
 *
 * HLL registers cannot be merged by adding counts, and DUMP payloads are not usable here, so:
 *   1. GET every key (an HLL is a string; GET gives WRONGTYPE for other types, as PFCOUNT does),
 *      and check each value is an HLL as Redis's isHLLObjectOrReply does, in key order;
 *   2. on ONE shard, run a Lua script under a fresh hash tag (`{dredis-tmp:<random>}`) that SETs
 *      the values under two temp keys of that tag, PFMERGEs them one by one into the first,
 *      PFCOUNTs it and DELetes both. PFMERGE takes the register-wise maximum, which is exactly
 *      the union PFCOUNT computes, so the count equals a standalone Redis's.
 * The script makes step 2 atomic: the temp keys never outlive it, even if the busy proxy dies.
 */
import { randomBytes } from "node:crypto";
import { RedisErrors } from "../../errors.ts";
import { keySlot } from "../../cluster/key-slot.ts";
import { ErrorReply, type ReplyValue } from "../../resp/encode.ts";
import type { BusyContext } from "./handler.ts";
import { partFailure, unexpectedReply, type Part } from "./fan-out.ts";

const MERGE_AND_COUNT = `
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #ARGV do
  redis.call('SET', KEYS[2], ARGV[i])
  local merged = redis.pcall('PFMERGE', KEYS[1], KEYS[2])
  if type(merged) == 'table' and merged.err then
    redis.call('DEL', KEYS[1], KEYS[2])
    return merged
  end
end
local count = redis.pcall('PFCOUNT', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return count
`;

const NOT_HLL = new ErrorReply(RedisErrors.notHyperLogLog);
/** Header: "HYLL", encoding byte, 3 unused bytes, 8 bytes of cached cardinality. */
const HLL_HEADER_BYTES = 16;
const HLL_DENSE = 0;
const HLL_SPARSE = 1;
/** A dense HLL is its header and 16384 6-bit registers. */
const HLL_DENSE_BYTES = HLL_HEADER_BYTES + (16384 * 6) / 8;
/** Errors Redis's PFCOUNT itself returns, passed on as they are. */
const REDIS_PFCOUNT_ERRORS = ["WRONGTYPE", "INVALIDOBJ"];

export async function pfcount(argv: Buffer[], { fanOut }: BusyContext): Promise<ReplyValue> {
  const keys = argv.slice(1);
  const reads: Part[] = keys.map((key) => ({ slot: keySlot(key), args: ["GET", key], readonly: true }));
  const values = await fanOut.run(reads);
  const failed = partFailure("PFCOUNT", reads, values);
  if (failed) return failed;
  const hlls: Buffer[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null) continue; // a missing key is an empty HLL
    if (!Buffer.isBuffer(value)) return unexpectedReply("PFCOUNT", reads[i]!);
    if (!isHll(value)) return NOT_HLL;
    hlls.push(value);
  }
  if (hlls.length === 0) return 0;

  const tag = `{dredis-tmp:${randomBytes(8).toString("hex")}}`;
  const merge: Part = {
    slot: keySlot(Buffer.from(tag)),
    args: ["EVAL", MERGE_AND_COUNT, "2", `${tag}:merged`, `${tag}:next`, ...hlls],
    readonly: false,
  };
  const [count] = await fanOut.run([merge]);
  const mergeFailed = partFailure("PFCOUNT", [merge], [count!], REDIS_PFCOUNT_ERRORS);
  if (mergeFailed) return mergeFailed;
  return typeof count === "number" ? count : unexpectedReply("PFCOUNT", merge);
}

/** Redis's isHLLObjectOrReply, on the value's bytes. */
function isHll(value: Buffer): boolean {
  if (value.length < HLL_HEADER_BYTES) return false;
  if (value.toString("latin1", 0, 4) !== "HYLL") return false;
  const encoding = value[4]!;
  if (encoding !== HLL_DENSE && encoding !== HLL_SPARSE) return false;
  return encoding !== HLL_DENSE || value.length === HLL_DENSE_BYTES;
}
