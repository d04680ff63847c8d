import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ReplyScanner, replyBuffer } from "../../src/resp/reply-scanner.ts";

/** Random RESP2/RESP3 replies, generated as their wire bytes. */
const line = fc.stringMatching(/^[a-zA-Z0-9 ._:-]{0,20}$/);
const blob = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b));
const lengthPrefixed = (type: string) =>
  blob.map((b) => Buffer.concat([Buffer.from(`${type}${b.length}\r\n`), b, Buffer.from("\r\n")]));

const { reply } = fc.letrec<{ reply: Buffer }>((tie) => ({
  reply: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    line.map((s) => Buffer.from(`+${s}\r\n`)),
    line.map((s) => Buffer.from(`-ERR ${s}\r\n`)),
    fc.integer().map((n) => Buffer.from(`:${n}\r\n`)),
    lengthPrefixed("$"),
    lengthPrefixed("!"),
    blob.map((b) => Buffer.concat([Buffer.from(`=${b.length + 4}\r\ntxt:`), b, Buffer.from("\r\n")])),
    fc
      .constantFrom(
        "$-1\r\n",
        "*-1\r\n",
        "_\r\n",
        "#t\r\n",
        ",3.14\r\n",
        "(12345678901234567890\r\n",
        "*0\r\n",
        "%0\r\n",
      )
      .map((s) => Buffer.from(s)),
    fc
      .tuple(fc.constantFrom("*", "~", ">"), fc.array(tie("reply"), { maxLength: 5 }))
      .map(([t, items]) => Buffer.concat([Buffer.from(`${t}${items.length}\r\n`), ...items])),
    fc
      .array(fc.tuple(tie("reply"), tie("reply")), { maxLength: 4 })
      .map((pairs) => Buffer.concat([Buffer.from(`%${pairs.length}\r\n`), ...pairs.flat()])),
    fc
      .tuple(fc.array(fc.tuple(tie("reply"), tie("reply")), { minLength: 1, maxLength: 2 }), tie("reply"))
      .map(([pairs, value]) => Buffer.concat([Buffer.from(`|${pairs.length}\r\n`), ...pairs.flat(), value])),
  ),
}));

function scan(chunks: Buffer[]): { replies: Buffer[]; first: number[] } {
  const replies: Buffer[] = [];
  const first: number[] = [];
  const scanner = new ReplyScanner((r, f) => {
    replies.push(Buffer.from(replyBuffer(r)));
    first.push(f);
  });
  for (const c of chunks) scanner.feed(c);
  return { replies, first };
}

test("any sequence of RESP2/RESP3 replies, cut anywhere, is found reply by reply", () => {
  fc.assert(
    fc.property(
      fc.array(reply, { minLength: 1, maxLength: 15 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (replies, cuts) => {
        const stream = Buffer.concat(replies);
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(stream.subarray(last, p));
          last = p;
        }
        chunks.push(stream.subarray(last));
        const result = scan(chunks.filter((c) => c.length > 0));
        assert.deepEqual(result.replies, replies);
        assert.deepEqual(
          result.first,
          replies.map((r) => r[0]),
        );
      },
    ),
    { numRuns: 400 },
  );
});

test("a reply split byte by byte is handed on as the slices it arrived in, not copied", () => {
  const bytes = Buffer.from("*2\r\n$5\r\nhello\r\n:42\r\n");
  const seen: (Buffer | Buffer[])[] = [];
  const scanner = new ReplyScanner((r) => seen.push(r));
  for (let i = 0; i < bytes.length; i++) scanner.feed(bytes.subarray(i, i + 1));
  assert.equal(seen.length, 1);
  assert.ok(Array.isArray(seen[0]));
  assert.ok(replyBuffer(seen[0]!).equals(bytes));
  assert.ok(scanner.idle);
});

test("bytes that are not RESP are rejected", () => {
  assert.throws(() => scan([Buffer.from("?what\r\n")]), /unexpected RESP type byte/);
  assert.throws(() => scan([Buffer.from("$abc\r\n")]), /malformed RESP length/);
});
