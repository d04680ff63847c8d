/**
 * ZUNION, ZINTER and ZDIFF across slots.
 *
 * Unlike plain sets, these are not split into per-slot reductions: with WEIGHTS and AGGREGATE SUM,
 * floating-point sums depend on the order the inputs are combined in (and +inf meeting -inf gives
 * 0), so the proxy fetches every input whole (`ZUNION 1 key WITHSCORES`, which reads sets as
 * scores of 1 and type-checks like the real command) and combines them exactly as Redis 7.0's
 * zunionInterDiffGenericCommand does: inputs sorted by size for ZUNION/ZINTER, NaN scores as 0,
 * result ordered by score then member bytes.
 */
import { RedisErrors } from "../../errors.ts";
import { ErrorReply, type ReplyValue } from "../../resp/encode.ts";
import { doubleReply } from "../engine-style.ts";
import { parseInteger } from "../../resp/request-parser.ts";
import type { RespValue } from "../../resp/decode.ts";
import { keySlot } from "../../cluster/key-slot.ts";
import type { BusyContext, BusyHandler } from "./handler.ts";
import { partFailure, unexpectedReply, type Part } from "./fan-out.ts";

type Operation = "union" | "inter" | "diff";
type Aggregate = "sum" | "min" | "max";

interface Options {
  weights: number[];
  aggregate: Aggregate;
  withScores: boolean;
}

/** One input: its members' scores, by a latin1 string of the member's bytes. */
interface Source {
  scores: Map<string, number>;
  members: Map<string, Buffer>;
  weight: number;
}

interface Scored {
  id: string;
  member: Buffer;
  score: number;
}

export const zunion: BusyHandler = (argv, context) => run("zunion", "union", argv, context);
export const zinter: BusyHandler = (argv, context) => run("zinter", "inter", argv, context);
export const zdiff: BusyHandler = (argv, context) => run("zdiff", "diff", argv, context);

async function run(
  name: string,
  operation: Operation,
  argv: Buffer[],
  { fanOut, protocol, serverVersion, serverEngine }: BusyContext,
): Promise<ReplyValue> {
  // Checked in Redis's order: numkeys, then the keys' types, then the options.
  const numkeys = parseInteger(argv[1]!, 0, argv[1]!.length);
  if (numkeys === null) return new ErrorReply(RedisErrors.notInteger);
  if (numkeys < 1) return new ErrorReply(RedisErrors.inputKeyNeeded(name));
  if (numkeys > argv.length - 2) return new ErrorReply(RedisErrors.syntax);
  const keys = argv.slice(2, 2 + numkeys);
  const options = parseOptions(operation, argv, 2 + numkeys, numkeys, serverEngine !== "valkey");

  const distinct = [...new Map(keys.map((k) => [k.toString("latin1"), k])).values()];
  const parts: Part[] = distinct.map((key) => ({
    slot: keySlot(key),
    args: ["ZUNION", "1", key, "WITHSCORES"],
    readonly: true,
  }));
  const results = await fanOut.run(parts);
  const failed = partFailure(name.toUpperCase(), parts, results);
  if (failed) return failed;
  if (options instanceof ErrorReply) return options;
  const fetched = new Map<string, Omit<Source, "weight">>();
  for (let p = 0; p < parts.length; p++) {
    const contents = toContents(results[p]!);
    if (contents === null) return unexpectedReply(name.toUpperCase(), parts[p]!);
    fetched.set(distinct[p]!.toString("latin1"), contents);
  }
  const sources: Source[] = keys.map((key, i) => ({
    ...fetched.get(key.toString("latin1"))!,
    weight: options.weights[i]!,
  }));

  const result = combine(operation, sources, options.aggregate);
  result.sort((a, b) =>
    a.score < b.score ? -1 : a.score > b.score ? 1 : Buffer.compare(a.member, b.member),
  );
  if (!options.withScores) return result.map((e) => e.member);
  // RESP2: one flat array; RESP3: [member, score] pairs, as Redis replies.
  if (protocol === 2) return result.flatMap((e) => [e.member, doubleReply(serverVersion, e.score)]);
  return result.map((e) => [e.member, doubleReply(serverVersion, e.score)]);
}

function combine(operation: Operation, sources: Source[], aggregate: Aggregate): Scored[] {
  const [first, ...others] = sources as [Source, ...Source[]];
  if (operation === "diff") {
    const out: Scored[] = [];
    for (const [id, score] of first.scores) {
      if (!others.some((s) => s.scores.has(id))) out.push({ id, member: first.members.get(id)!, score });
    }
    return out;
  }
  // Redis combines the inputs smallest first (a stable sort keeps equal sizes in key order).
  const ordered = [...sources].sort((a, b) => a.scores.size - b.scores.size);
  const out = new Map<string, Scored>();
  if (operation === "inter") {
    const [smallest, ...rest] = ordered as [Source, ...Source[]];
    for (const [id, value] of smallest.scores) {
      let score = weighted(smallest.weight, value);
      let inAll = true;
      for (const source of rest) {
        const other = source.scores.get(id);
        if (other === undefined) {
          inAll = false;
          break;
        }
        score = combineScores(score, other * source.weight, aggregate);
      }
      if (inAll) out.set(id, { id, member: smallest.members.get(id)!, score });
    }
  } else {
    for (const source of ordered) {
      for (const [id, value] of source.scores) {
        const score = weighted(source.weight, value);
        const existing = out.get(id);
        if (existing === undefined) out.set(id, { id, member: source.members.get(id)!, score });
        else existing.score = combineScores(existing.score, score, aggregate);
      }
    }
  }
  return [...out.values()];
}

/** weight x score, with NaN (0 x inf) taken as 0, as Redis does. */
function weighted(weight: number, score: number): number {
  const value = weight * score;
  return Number.isNaN(value) ? 0 : value;
}

function combineScores(target: number, value: number, aggregate: Aggregate): number {
  if (aggregate === "sum") {
    const sum = target + value;
    return Number.isNaN(sum) ? 0 : sum; // inf + -inf
  }
  if (aggregate === "min") return value < target ? value : target;
  return value > target ? value : target;
}

/** The options after the keys, parsed as Redis parses them (same loop, same error texts). */
function parseOptions(
  operation: Operation,
  argv: Buffer[],
  from: number,
  numkeys: number,
  hexAllowed: boolean,
): Options | ErrorReply {
  const options: Options = {
    weights: new Array<number>(numkeys).fill(1),
    aggregate: "sum",
    withScores: false,
  };
  let j = from;
  while (j < argv.length) {
    const remaining = argv.length - j;
    const word = argv[j]!.toString("latin1").toLowerCase();
    if (operation !== "diff" && remaining >= numkeys + 1 && word === "weights") {
      j++;
      for (let i = 0; i < numkeys; i++, j++) {
        const weight = parseDouble(argv[j]!, hexAllowed);
        if (weight === null) return new ErrorReply(RedisErrors.notFloat);
        options.weights[i] = weight;
      }
    } else if (operation !== "diff" && remaining >= 2 && word === "aggregate") {
      const value = argv[j + 1]!.toString("latin1").toLowerCase();
      if (value !== "sum" && value !== "min" && value !== "max") return new ErrorReply(RedisErrors.syntax);
      options.aggregate = value;
      j += 2;
    } else if (word === "withscores") {
      options.withScores = true;
      j++;
    } else {
      return new ErrorReply(RedisErrors.syntax);
    }
  }
  return options;
}

/**
 * A double as Redis's getDoubleFromObject reads it (strtod over the whole argument): decimal and
 * hexadecimal forms and inf/infinity; no leading space, no trailing bytes, no NaN, and no overflow
 * to infinity or underflow to zero. Valkey reads no hexadecimal form (`hexAllowed` false).
 */
export function parseDouble(arg: Buffer, hexAllowed = true): number | null {
  const text = arg.toString("latin1");
  if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  let value: number;
  let mantissa: string;
  const hex = /^([+-]?)0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([+-]?\d+))?$/i.exec(text);
  if (hex !== null) {
    if (!hexAllowed) return null;
    const [, sign, whole = "", fraction = "", exponent = "0"] = hex;
    if (whole.length + fraction.length === 0) return null;
    mantissa = whole + fraction;
    value = parseInt(mantissa, 16) * 2 ** (Number(exponent) - 4 * fraction.length);
    if (sign === "-") value = -value;
  } else {
    if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return null;
    mantissa = text.split(/e/i)[0]!;
    value = Number(text);
  }
  if (!Number.isFinite(value)) return null; // overflow (ERANGE)
  if (value === 0 && /[1-9a-f]/i.test(mantissa.replace(/^[+-]?0x/i, ""))) return null; // underflow (ERANGE)
  return value;
}

/** Reads a `ZUNION 1 key WITHSCORES` reply (RESP2: member, score, member, score...). */
function toContents(reply: RespValue): Omit<Source, "weight"> | null {
  if (!Array.isArray(reply) || reply.length % 2 !== 0) return null;
  const scores = new Map<string, number>();
  const members = new Map<string, Buffer>();
  for (let i = 0; i < reply.length; i += 2) {
    const member = reply[i];
    const score = reply[i + 1];
    if (!Buffer.isBuffer(member) || !Buffer.isBuffer(score)) return null;
    const text = score.toString("latin1");
    const value = text === "inf" ? Infinity : text === "-inf" ? -Infinity : Number(text);
    if (Number.isNaN(value)) return null;
    const id = member.toString("latin1");
    scores.set(id, value);
    members.set(id, member);
  }
  return { scores, members };
}
