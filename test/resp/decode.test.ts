import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeReply, RespMap, RespSet, type RespValue } from "../../src/resp/decode.ts";
import {
  DoubleReply,
  encodeReply,
  ErrorReply,
  formatDouble,
  MapReply,
  SetReply,
  SimpleString,
  type ReplyValue,
} from "../../src/resp/encode.ts";
import { startStandalone } from "../support/redis.ts";
import { RawClient } from "../support/raw-client.ts";

/** Re-encodes a decoded value (maps and sets back to the encoder's classes). */
function reencode(value: RespValue, proto: 2 | 3): Buffer {
  const toReply = (v: RespValue): ReplyValue => {
    if (v instanceof RespMap) return new MapReply(v.entries.map(([k, x]) => [toReply(k), toReply(x)]));
    if (v instanceof RespSet) return new SetReply(v.items.map(toReply));
    if (Array.isArray(v)) return v.map(toReply);
    if (typeof v === "boolean" || typeof v === "bigint") throw new Error("not encodable");
    return v;
  };
  return encodeReply(toReply(value), proto);
}

const text = fc.stringMatching(/^[a-zA-Z0-9 ._:-]{0,20}$/);
const { value } = fc.letrec<{ value: ReplyValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc.constant(null),
    fc.maxSafeInteger(),
    text.map((s) => new SimpleString(s)),
    text.map((s) => new ErrorReply(`ERR ${s}`)),
    fc.double({ noNaN: true }).map((d) => new DoubleReply(d)),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 3 }).map((e) => new MapReply(e)),
    fc.array(tie("value"), { maxLength: 4 }).map((items) => new SetReply(items)),
  ),
}));

test("any reply the encoder writes decodes back to the same bytes, in RESP2 and RESP3", () => {
  fc.assert(
    fc.property(value, fc.constantFrom(2 as const, 3 as const), (v, proto) => {
      const bytes = encodeReply(v, proto);
      // Under RESP2 doubles become bulk strings and maps flat arrays: compare bytes, not types.
      assert.deepEqual(reencode(decodeReply(bytes), proto), bytes);
    }),
    { numRuns: 500 },
  );
});

test("decodes a reply split over several reads as one", () => {
  const bytes = Buffer.from("*3\r\n$5\r\nhello\r\n:-42\r\n$-1\r\n");
  const pieces = [bytes.subarray(0, 7), bytes.subarray(7, 20), bytes.subarray(20)];
  assert.deepEqual(decodeReply(pieces), [Buffer.from("hello"), -42, null]);
});

test("decodes the RESP3-only types: boolean, big number, verbatim, blob error, attribute, push", () => {
  assert.equal(decodeReply(Buffer.from("#t\r\n")), true);
  assert.equal(decodeReply(Buffer.from("#f\r\n")), false);
  assert.equal(
    decodeReply(Buffer.from("(3492890328409238509324850943850943825024385\r\n")),
    3492890328409238509324850943850943825024385n,
  );
  assert.equal(decodeReply(Buffer.from(":9007199254740993\r\n")), 9007199254740993n);
  assert.deepEqual(decodeReply(Buffer.from("=15\r\ntxt:Some string\r\n")), Buffer.from("Some string"));
  assert.deepEqual(
    decodeReply(Buffer.from("!21\r\nSYNTAX invalid syntax\r\n")),
    new ErrorReply("SYNTAX invalid syntax"),
  );
  assert.deepEqual(
    decodeReply(Buffer.from("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n:7\r\n")),
    7,
  );
  assert.deepEqual(decodeReply(Buffer.from(">2\r\n+message\r\n$2\r\nhi\r\n")), [
    new SimpleString("message"),
    Buffer.from("hi"),
  ]);
  assert.deepEqual(decodeReply(Buffer.from(",inf\r\n")), new DoubleReply(Infinity));
  assert.deepEqual(decodeReply(Buffer.from(",-inf\r\n")), new DoubleReply(-Infinity));
});

test("rejects truncated or malformed input, or bytes past one reply, with an error instead of a wrong value", () => {
  for (const bad of [
    "$5\r\nhel\r\n",
    "*2\r\n:1\r\n",
    ":12a\r\n",
    "?\r\n",
    "+OK",
    ":1\r\n:2\r\n",
    "#x\r\n",
    ",abc\r\n",
  ]) {
    assert.throws(() => decodeReply(Buffer.from(bad)), Error, JSON.stringify(bad));
  }
});

test("formats doubles as Redis 7.0 does (%.17g)", () => {
  const cases: [number, string][] = [
    [0.1, "0.10000000000000001"],
    [3, "3"],
    [-2.5, "-2.5"],
    [1e16, "10000000000000000"],
    [1e17, "1e+17"],
    [1e-5, "1.0000000000000001e-05"],
    [0.0001, "0.0001"],
    [1 / 3, "0.33333333333333331"],
    [5e-324, "4.9406564584124654e-324"],
    [Infinity, "inf"],
    [-Infinity, "-inf"],
  ];
  for (const [d, expected] of cases) assert.equal(formatDouble(d), expected, String(d));
});

test("real redis-server replies decode and re-encode byte for byte, RESP2 and RESP3", async (t) => {
  const server = await startStandalone(t);
  const client = await RawClient.connect(server.port);
  t.after(() => client.close());
  const commands = [
    ["ZADD", "z", "0.1", "a", "1.5", "b", "inf", "c"],
    ["SADD", "s", "x", "y"],
    ["SET", "bin", Buffer.from([0, 13, 10, 255])],
    ["ZUNION", "2", "z", "s", "WITHSCORES"],
    ["SMEMBERS", "s"],
    ["MGET", "bin", "missing"],
    ["LPUSH", "s", "x"],
    ["PING"],
    ["HGETALL", "missing"],
  ];
  for (const proto of [2, 3] as const) {
    await client.command("HELLO", String(proto));
    const replies = await client.pipeline(commands);
    replies.forEach((reply, i) => {
      assert.deepEqual(reencode(decodeReply(reply), proto), reply, `RESP${proto} ${commands[i]!.join(" ")}`);
    });
    assert.deepEqual(
      decodeReply(replies[6]!),
      new ErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value"),
    );
  }
  const hello = decodeReply(await client.command("HELLO", "3"));
  assert.ok(hello instanceof RespMap);
  assert.deepEqual(hello.entries[2], [Buffer.from("proto"), 3]);
});
