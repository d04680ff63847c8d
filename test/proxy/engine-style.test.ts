/**
 * Doubles the proxy computes itself (ZUNION/ZINTER scores across shards) must read exactly as the
 * shards' engine prints them: "%.17g" on Redis 7.0, the shortest form on Redis 7.2 and Valkey.
 * Checked against a real server of the suite's engine (DREDIS_TEST_ENGINE) for edge cases and
 * values of every magnitude.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { doubleReply } from "../../src/proxy/engine-style.ts";
import { speaksAs72 } from "../../src/proxy/acl/session.ts";
import { encodeReply } from "../../src/resp/encode.ts";
import { RawClient } from "../support/raw-client.ts";
import { startStandalone } from "../support/redis.ts";

const EDGES = [
  0.1,
  0.30000000000000004,
  4.2000000000000002,
  2.5,
  100,
  1e7,
  1e15,
  1e16,
  1e17,
  123456789012345680,
  2 ** 62,
  2 ** 62 + 1024,
  1e21,
  1e300,
  1.7976931348623157e308,
  5e-324,
  1e-4,
  1.23e-4,
  1e-5,
  1.23e-5,
  1.5e-7,
  0.001234567,
  3.14159e-10,
  -0.5,
  -1.5e-7,
  -(2 ** 62),
  -(2 ** 62) - 1024,
];

test("scores the proxy prints read as the engine's own, byte for byte", async (t) => {
  const server = await startStandalone(t);
  const client = await RawClient.connect(server.port);
  t.after(() => client.close());
  const version = /redis_version:(\S+)/.exec((await client.command("INFO", "server")).toString())![1]!;
  // A fixed pseudo-random sequence: mantissas of 1 to 17 digits at exponents -320..300.
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const values = [...EDGES];
  for (let i = 0; i < 400; i++) {
    const digits = 1 + Math.floor(next() * 17);
    const mantissa = Math.floor(next() * 10 ** digits);
    const value = Number(`${next() < 0.5 ? "-" : ""}${mantissa}e${Math.floor(next() * 620) - 320}`);
    if (Number.isFinite(value) && value !== 0) values.push(value);
  }
  const replies = await client.pipeline(
    values.flatMap((v) => [
      ["ZADD", "z", String(v), "m"],
      ["ZSCORE", "z", "m"],
    ]),
  );
  // Valkey (and Redis 7.2) find their digits with grisu2, which for a few values gives 17 digits
  // where fewer read back the same; the proxy gives the shortest. Those must still be the same
  // number, and rare.
  const longer: string[] = [];
  for (const [i, value] of values.entries()) {
    const expected = replies[2 * i + 1]!.toString();
    const actual = encodeReply(doubleReply(version, value), 2).toString();
    if (actual === expected) continue;
    const text = (reply: string) => reply.split("\r\n")[1]!;
    assert.ok(
      speaksAs72(version) &&
        Number(text(actual)) === Number(text(expected)) &&
        actual.length < expected.length,
      `${value}: proxy ${text(actual)}, server ${text(expected)}`,
    );
    longer.push(`${text(actual)} (server: ${text(expected)})`);
  }
  assert.ok(
    longer.length <= values.length / 50,
    `${longer.length} of ${values.length} differ: ${longer.join(", ")}`,
  );
  t.diagnostic(`${longer.length} of ${values.length} printed shorter than the server: ${longer.join(", ")}`);
});
