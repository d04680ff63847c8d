import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  RequestParser,
  encodeCommand,
  splitInlineArgs,
  INLINE_MAX_SIZE,
} from "../../src/resp/request-parser.ts";

const limits = { maxBulkBytes: 512 * 1024 * 1024, maxArgs: 1024 * 1024 };

interface Parsed {
  commands: Buffer[][];
  frames: Buffer[];
  errors: string[];
}

function parseAll(chunks: Buffer[], parserLimits = limits): Parsed {
  const out: Parsed = { commands: [], frames: [], errors: [] };
  const parser = new RequestParser(
    parserLimits,
    (buf, start, end, argc, args) => {
      assertCanonical(buf, start, end, argc, args);
      const command: Buffer[] = [];
      for (let i = 0; i < argc; i++) command.push(Buffer.from(buf.subarray(args[i * 2], args[i * 2 + 1])));
      out.commands.push(command);
      out.frames.push(Buffer.from(buf.subarray(start, end)));
    },
    (message) => out.errors.push(message),
  );
  for (const chunk of chunks) parser.feed(chunk);
  return out;
}

/**
 * The handler's contract (the busy proxy copies runs of arguments by it): the frame is `*argc\r\n`
 * then, argument after argument, exactly `$<length>\r\n`, the bytes at the given offsets, `\r\n`.
 */
function assertCanonical(buf: Buffer, start: number, end: number, argc: number, args: Int32Array): void {
  const count = `*${argc}\r\n`;
  assert.equal(buf.toString("latin1", start, start + count.length), count);
  let p = start + count.length;
  for (let i = 0; i < argc; i++) {
    const header = `$${args[i * 2 + 1]! - args[i * 2]!}\r\n`;
    assert.equal(buf.toString("latin1", p, p + header.length), header, `argument ${i}'s header`);
    assert.equal(args[i * 2], p + header.length, `argument ${i} starts right after its header`);
    p = args[i * 2 + 1]!;
    assert.equal(buf.toString("latin1", p, p + 2), "\r\n");
    p += 2;
  }
  assert.equal(p, end, "the frame ends after the last argument");
}

/** Cuts `data` at the given fractions. */
function cut(data: Buffer, points: number[]): Buffer[] {
  const offsets = [...new Set(points.map((p) => Math.floor(p * data.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let last = 0;
  for (const o of offsets) {
    if (o > last) chunks.push(data.subarray(last, o));
    last = Math.max(last, o);
  }
  chunks.push(data.subarray(last));
  return chunks;
}

const command = fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 12 });

test("any commands survive encode, arbitrary chunking and parse unchanged, frames included", () => {
  fc.assert(
    fc.property(
      fc.array(command, { minLength: 1, maxLength: 20 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true })),
      (commands, points) => {
        const encoded = commands.map((c) => encodeCommand(c.map((a) => Buffer.from(a))));
        const parsed = parseAll(cut(Buffer.concat(encoded), points));
        assert.deepEqual(parsed.errors, []);
        assert.deepEqual(
          parsed.commands,
          commands.map((c) => c.map((a) => Buffer.from(a))),
        );
        assert.deepEqual(parsed.frames, encoded);
      },
    ),
    { numRuns: 300 },
  );
});

test("a bulk of several megabytes split into many small reads is parsed once, intact", () => {
  const big = Buffer.alloc(5 * 1024 * 1024, "x");
  const frame = encodeCommand(["SET", "k", big]);
  const chunks: Buffer[] = [];
  for (let i = 0; i < frame.length; i += 1000) chunks.push(frame.subarray(i, i + 1000));
  const parsed = parseAll(chunks);
  assert.equal(parsed.commands.length, 1);
  assert.equal(parsed.commands[0]![2]!.length, big.length);
  assert.ok(parsed.commands[0]![2]!.equals(big));
});

test("inline commands are split like redis does and become multibulk frames", () => {
  const parsed = parseAll([Buffer.from('SET "a b" \'c\\\'d\'\r\nPING\n\r\n   \r\nECHO "\\x41\\n"\r\n')]);
  assert.deepEqual(
    parsed.commands.map((c) => c.map((a) => a.toString("latin1"))),
    [["SET", "a b", "c'd"], ["PING"], ["ECHO", "A\n"]],
  );
  assert.equal(parsed.frames[1]!.toString(), "*1\r\n$4\r\nPING\r\n");
});

test("inline splitting matches sdssplitargs on quotes", () => {
  assert.deepEqual(splitInlineArgs('a "b c" d'), ["a", "b c", "d"]);
  assert.equal(splitInlineArgs('a "b'), null);
  assert.equal(splitInlineArgs('"a"b'), null, "a closing quote must be followed by a space");
  assert.equal(splitInlineArgs("'a"), null);
  assert.deepEqual(splitInlineArgs("  "), []);
});

test("empty and null multibulks are skipped without a reply, as redis does", () => {
  const parsed = parseAll([Buffer.from("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n")]);
  assert.deepEqual(parsed.errors, []);
  assert.equal(parsed.commands.length, 1);
});

test("malformed requests get redis's protocol error texts", () => {
  const cases: [string | Buffer, string][] = [
    ["*abc\r\n", "ERR Protocol error: invalid multibulk length"],
    ["*3000000000\r\n", "ERR Protocol error: invalid multibulk length"],
    ["*1\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'"],
    ["*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"],
    ["*1\r\n$600000000\r\n", "ERR Protocol error: invalid bulk length"],
    ["*1\r\n$01\r\n", "ERR Protocol error: invalid bulk length"],
    ["*" + "1".repeat(INLINE_MAX_SIZE + 10), "ERR Protocol error: too big mbulk count string"],
    ["*1\r\n$" + "1".repeat(INLINE_MAX_SIZE + 10), "ERR Protocol error: too big bulk count string"],
    ["GET " + "a".repeat(INLINE_MAX_SIZE + 10), "ERR Protocol error: too big inline request"],
    ['SET "a\r\n', "ERR Protocol error: unbalanced quotes in request"],
    ["*1\r\n$4\r\nPINGxx", "ERR Protocol error: expected CRLF after bulk data"],
  ];
  for (const [input, expected] of cases) {
    const parsed = parseAll([Buffer.from(input)]);
    assert.deepEqual(parsed.errors, [expected], `for ${JSON.stringify(String(input).slice(0, 40))}`);
  }
});

test("the argument and bulk limits are configurable and enforced", () => {
  const small = { maxBulkBytes: 1024, maxArgs: 3 };
  assert.deepEqual(parseAll([encodeCommand(["a", "b", "c", "d"])], small).errors, [
    "ERR Protocol error: invalid multibulk length",
  ]);
  assert.deepEqual(parseAll([encodeCommand(["SET", "k", Buffer.alloc(2048)])], small).errors, [
    "ERR Protocol error: invalid bulk length",
  ]);
});

test("commands before a malformed one are delivered, nothing after it", () => {
  const parsed = parseAll([Buffer.from("*1\r\n$4\r\nPING\r\n*x\r\n*1\r\n$4\r\nPING\r\n")]);
  assert.equal(parsed.commands.length, 1);
  assert.equal(parsed.errors.length, 1);
});

test("random bytes never throw: they parse or give one protocol error", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }), (chunks) => {
      const parsed = parseAll(chunks.map((c) => Buffer.from(c)));
      assert.ok(parsed.errors.length <= 1);
    }),
    { numRuns: 500 },
  );
});

test("pausing after any command and resuming later hands out every command once, in order", () => {
  fc.assert(
    fc.property(
      fc.array(command, { minLength: 1, maxLength: 20 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true })),
      fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
      (commands, points, pauses) => {
        const seen: Buffer[][] = [];
        const parser: RequestParser = new RequestParser(
          limits,
          (buf, _start, _end, argc, args) => {
            const c: Buffer[] = [];
            for (let i = 0; i < argc; i++) c.push(Buffer.from(buf.subarray(args[i * 2], args[i * 2 + 1])));
            if (pauses[seen.length]) parser.pause();
            seen.push(c);
          },
          () => assert.fail("no error expected"),
        );
        for (const chunk of cut(
          Buffer.concat(commands.map((c) => encodeCommand(c.map((a) => Buffer.from(a))))),
          points,
        )) {
          parser.feed(chunk);
        }
        for (let i = 0; i < 25; i++) parser.resume();
        assert.deepEqual(
          seen,
          commands.map((c) => c.map((a) => Buffer.from(a))),
        );
      },
    ),
    { numRuns: 300 },
  );
});
