/**
 * Where the shards' engine shows in what the proxy answers itself, so a client sees what a
 * standalone server of that engine would send: Redis 7.2 and Valkey print doubles in their
 * shortest form (Redis 7.0 with "%.17g"), and Valkey words some errors its own way.
 */
import type { Engine } from "../cluster/engine.ts";
import { RedisErrors, ValkeyErrors } from "../errors.ts";
import { DoubleReply } from "../resp/encode.ts";
import { speaksAs72 } from "./acl/session.ts";

/** A computed double as the shards (of Redis `version`, or Valkey's 7.2.4) print it. */
export function doubleReply(version: string, value: number): DoubleReply {
  return new DoubleReply(value, speaksAs72(version) ? formatDouble72(value) : undefined);
}

/** (double)(LLONG_MAX / 2): Redis 7.2's d2string prints integral doubles up to this as integers. */
const INTEGER_LIMIT = 4611686018427387904;

/**
 * A double as Redis 7.2's d2string prints it (Valkey's is the same): integral values within
 * +-2^62 as integers, others as fpconv_dtoa writes the shortest digits that read back the same
 * (grisu2 there; JavaScript's own shortest digits here, which agree but for rare values).
 */
export function formatDouble72(value: number): string {
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  if (Number.isNaN(value)) return "nan";
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  if (Number.isInteger(value) && value >= -INTEGER_LIMIT && value <= INTEGER_LIMIT)
    return BigInt(value).toString();
  const sign = value < 0 ? "-" : "";
  const [mantissa, exponentText] = Math.abs(value).toExponential().split("e") as [string, string];
  const digits = mantissa.replace(".", "");
  const exponent = Number(exponentText);
  // fpconv's terms: the value is digits x 10^k.
  const k = exponent - (digits.length - 1);
  const magnitude = Math.abs(exponent);
  if (k >= 0 && magnitude < digits.length + 7) return sign + digits + "0".repeat(k);
  if (k < 0 && (k > -7 || magnitude < 4)) {
    const point = digits.length + k;
    return point <= 0
      ? `${sign}0.${"0".repeat(-point)}${digits}`
      : `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  const fraction = digits.length > 1 ? `.${digits.slice(1)}` : "";
  return `${sign}${digits[0]}${fraction}e${exponent < 0 ? "-" : "+"}${magnitude}`;
}

/** The error for MULTI inside MULTI, as the shards' engine words it. */
export function multiNestedError(engine: Engine): string {
  return engine === "valkey" ? ValkeyErrors.multiNested : RedisErrors.multiNested;
}
