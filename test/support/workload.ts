/**
 * Random single-key commands over every data type whose replies are deterministic, so the same
 * sequence sent to two servers must give byte-identical replies. Seeded: a failure reproduces.
 *
 * Avoided on purpose: replies that depend on time (TTL), randomness (SPOP, SRANDMEMBER) or on
 * the hash-table seed of one process (SMEMBERS of non-integer sets, HKEYS of large hashes): set
 * members are integers, so sets stay intsets and come back sorted, and hash values stay short.
 */

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomCommands(count: number, seed: number): string[][] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (n: number) => Math.floor(random() * n);
  const streamIds = new Map<string, number>();
  const key = (type: string) =>
    random() < 0.05
      ? `${pick(["str", "hash", "list", "set", "zset", "stream"])}:${int(8)}`
      : `${type}:${int(8)}`;
  const value = () => pick(["", "v", "hello world", "42", "-7", "3.5", "ü∂ß", "x".repeat(int(200))]);
  // Hash values stay short so hashes stay listpacks, whose field order is the insertion order.
  const shortValue = () => pick(["", "v", "hello world", "42", "-7", "3.5", "ü∂ß"]);
  const generators: (() => string[])[] = [
    () => ["SET", key("str"), value()],
    () => ["GET", key("str")],
    () => ["APPEND", key("str"), value()],
    () => ["INCR", key("str")],
    () => ["INCRBY", key("str"), String(int(100) - 50)],
    () => ["STRLEN", key("str")],
    () => ["GETRANGE", key("str"), "0", String(int(10))],
    () => ["SETNX", key("str"), value()],
    () => ["GETSET", key("str"), value()],
    () => ["MSET", `{tag}${key("str")}`, value(), `{tag}${key("str")}`, value()],
    () => ["MGET", `{tag}${key("str")}`, `{tag}${key("str")}`],
    () => ["HSET", key("hash"), `f${int(6)}`, shortValue(), `f${int(6)}`, shortValue()],
    () => ["HGET", key("hash"), `f${int(6)}`],
    () => ["HDEL", key("hash"), `f${int(6)}`],
    () => ["HLEN", key("hash")],
    () => ["HGETALL", key("hash")],
    () => ["HINCRBY", key("hash"), `n${int(3)}`, String(int(10))],
    () => ["HEXISTS", key("hash"), `f${int(6)}`],
    () => ["HKEYS", key("hash")],
    () => ["LPUSH", key("list"), value(), value()],
    () => ["RPUSH", key("list"), value()],
    () => ["LPOP", key("list")],
    () => ["RPOP", key("list")],
    () => ["LRANGE", key("list"), "0", "-1"],
    () => ["LLEN", key("list")],
    () => ["LINDEX", key("list"), String(int(5) - 2)],
    () => ["LSET", key("list"), String(int(3)), value()],
    () => ["LREM", key("list"), "0", value()],
    () => ["SADD", key("set"), String(int(30)), String(int(30))],
    () => ["SREM", key("set"), String(int(30))],
    () => ["SCARD", key("set")],
    () => ["SISMEMBER", key("set"), String(int(30))],
    () => ["SMEMBERS", key("set")],
    () => ["ZADD", key("zset"), String(int(100) / 4), `m${int(10)}`],
    () => ["ZSCORE", key("zset"), `m${int(10)}`],
    () => ["ZRANGE", key("zset"), "0", "-1", "WITHSCORES"],
    () => ["ZREM", key("zset"), `m${int(10)}`],
    () => ["ZCARD", key("zset")],
    () => ["ZINCRBY", key("zset"), "1.5", `m${int(10)}`],
    () => ["ZRANK", key("zset"), `m${int(10)}`],
    () => {
      const k = key("stream");
      const id = (streamIds.get(k) ?? 0) + 1 + int(3);
      streamIds.set(k, id);
      return ["XADD", k, `${id}-0`, "f", value()];
    },
    () => ["XLEN", key("stream")],
    () => ["XRANGE", key("stream"), "-", "+"],
    () => ["XDEL", key("stream"), `${int(20)}-0`],
    () => ["DEL", key(pick(["str", "hash", "list", "set", "zset", "stream"]))],
    () => ["EXISTS", key(pick(["str", "hash", "list"]))],
    () => ["TYPE", key(pick(["str", "hash", "list", "set", "zset", "stream"]))],
    () => ["EXPIRE", key("str"), "100000"],
    () => ["PERSIST", key("str")],
  ];
  return Array.from({ length: count }, () => pick(generators)());
}
