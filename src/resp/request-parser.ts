/**
 * Streaming parser for client requests (RESP multibulk and inline commands).
 *
 * Hand-written because it is the proxy's hot path: it finds command and argument boundaries
 * without copying, hands the caller offsets into the buffer it already has, and keeps the raw
 * frame bytes so the proxy can forward them untouched. A frame split across reads is gathered in
 * a growing buffer (amortised O(n) however many reads it spans) and parsing resumes where it
 * stopped. Malformed input is reported with the text Redis sends for it.
 */
import { RedisErrors } from "../errors.ts";
import { CR, DOLLAR, LF, STAR } from "./bytes.ts";

/** Longest header line or inline request Redis accepts before giving up (PROTO_INLINE_MAX_SIZE). */
export const INLINE_MAX_SIZE = 64 * 1024;

export interface RequestParserLimits {
  /** Largest bulk argument in bytes (Redis's proto-max-bulk-len). */
  maxBulkBytes: number;
  /** Most arguments in one command. */
  maxArgs: number;
}

/**
 * Receives each complete command. `args` holds start/end offsets into `buf` (args[2i], args[2i+1]);
 * it is reused for the next command, so copy what must outlive the call. `buf[frameStart..frameEnd)`
 * is the command's raw RESP encoding, safe to keep: the parser never writes into a buffer it handed out.
 * That encoding is always canonical: every argument is preceded by exactly `$<length>\r\n` (lengths
 * with a sign or leading zeros are refused, inline commands arrive re-encoded) and followed by
 * `\r\n`, and the next argument's header comes right after (the busy proxy copies runs of them).
 */
export type CommandHandler = (
  buf: Buffer,
  frameStart: number,
  frameEnd: number,
  argc: number,
  args: Int32Array,
) => void;

export class RequestParser {
  private args = new Int32Array(64);
  /** Bytes of an incomplete frame, at pending[0..pendingLength). */
  private pending: Buffer | null = null;
  private pendingLength = 0;
  /** Do not try to parse again before pendingLength reaches this (the frame cannot be complete sooner). */
  private needed = 0;
  /** Resume state of a multibulk frame cut short: its argc, args parsed so far, and where to go on. */
  private resumeArgc = -1;
  private resumeArg = 0;
  private resumeAt = 0;
  /** Set once an error was reported: the connection is going away, nothing more is parsed. */
  failed = false;
  private paused = false;

  constructor(
    private readonly limits: RequestParserLimits,
    private readonly onCommand: CommandHandler,
    private readonly onError: (message: string) => void,
  ) {}

  /** Bytes held for an incomplete frame (counts against the client's memory budget). */
  get bufferedBytes(): number {
    return this.pendingLength;
  }

  feed(chunk: Buffer): void {
    if (this.failed) return;
    if (this.pending === null && !this.paused) {
      const consumed = this.parse(chunk, chunk.length);
      if (consumed < chunk.length && !this.failed) this.keep(chunk, consumed);
      return;
    }
    if (this.pending === null) this.keep(chunk, 0);
    else this.append(chunk);
    this.parsePending();
  }

  /**
   * Stops handing out commands after the current one; bytes already read wait in the parser.
   * The client uses it to stop dispatching while it has too much in flight (backpressure at the
   * command, not the read: one read can hold thousands of commands).
   */
  pause(): void {
    this.paused = true;
  }

  /** Hands out the commands held while paused, and goes on as usual. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.pending !== null && !this.failed) this.parsePending();
  }

  private parsePending(): void {
    if (this.paused || this.pendingLength < this.needed) return;
    const buf = this.pending!;
    const length = this.pendingLength;
    const consumed = this.parse(buf, length);
    if (this.failed) return;
    if (consumed === 0) return; // still the same incomplete frame, kept in place
    // Frames handed out refer to `buf`: never write into it again. Move the rest to a new buffer.
    this.pending = null;
    this.pendingLength = 0;
    if (consumed < length) this.keep(buf.subarray(0, length), consumed);
  }

  private keep(source: Buffer, from: number): void {
    const rest = source.length - from;
    const buf = Buffer.allocUnsafe(Math.max(rest * 2, 16 * 1024, this.needed));
    source.copy(buf, 0, from);
    this.pending = buf;
    this.pendingLength = rest;
  }

  private append(chunk: Buffer): void {
    let buf = this.pending!;
    const total = this.pendingLength + chunk.length;
    if (total > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(total, buf.length * 2, this.needed));
      buf.copy(grown, 0, 0, this.pendingLength);
      this.pending = buf = grown;
    }
    chunk.copy(buf, this.pendingLength);
    this.pendingLength = total;
  }

  private fail(message: string): number {
    this.failed = true;
    this.pending = null;
    this.pendingLength = 0;
    this.onError(message);
    return 0;
  }

  /**
   * Parses complete frames in buf[0..length) and returns how many bytes were consumed. When it
   * stops inside a frame it records resume state relative to that frame's start, which becomes
   * offset 0 of the pending buffer.
   */
  private parse(buf: Buffer, length: number): number {
    let pos = 0;
    while (pos < length) {
      if (this.failed) return pos;
      if (this.paused) {
        this.needed = 0;
        return pos;
      }
      const end =
        buf[pos] === STAR ? this.parseMultibulk(buf, pos, length) : this.parseInline(buf, pos, length);
      if (end < 0) return pos; // incomplete (or failed): resume from pos
      pos = end;
    }
    this.needed = 0;
    return pos;
  }

  /** Returns the end of the frame starting at `start`, or -1 if it is incomplete or malformed. */
  private parseMultibulk(buf: Buffer, start: number, length: number): number {
    let argc: number;
    let arg: number;
    let p: number;
    if (this.resumeArgc >= 0 && start === 0) {
      argc = this.resumeArgc;
      arg = this.resumeArg;
      p = this.resumeAt;
    } else {
      const cr = findLineEnd(buf, start + 1, length);
      if (cr < 0) return this.incompleteLine(start, length, RedisErrors.protocol.tooBigMultibulkCount);
      const count = parseInteger(buf, start + 1, cr);
      if (count === null || count > this.limits.maxArgs) {
        this.fail(RedisErrors.protocol.invalidMultibulkLength);
        return -1;
      }
      if (count <= 0) return cr + 2; // Redis ignores empty and null multibulks
      argc = count;
      arg = 0;
      p = cr + 2;
      if (this.args.length < argc * 2) this.args = new Int32Array(Math.max(argc * 2, this.args.length * 2));
    }
    const args = this.args;
    for (; arg < argc; arg++) {
      if (p >= length) return this.suspend(start, argc, arg, p, p + 1);
      const cr = findLineEnd(buf, p, length);
      if (cr < 0) {
        if (length - p > INLINE_MAX_SIZE) {
          this.fail(RedisErrors.protocol.tooBigBulkCount);
          return -1;
        }
        return this.suspend(start, argc, arg, p, length + 1);
      }
      if (buf[p] !== DOLLAR) {
        this.fail(RedisErrors.protocol.expectedDollar(String.fromCharCode(buf[p]!)));
        return -1;
      }
      const size = parseInteger(buf, p + 1, cr);
      if (size === null || size < 0 || size > this.limits.maxBulkBytes) {
        this.fail(RedisErrors.protocol.invalidBulkLength);
        return -1;
      }
      const dataStart = cr + 2;
      const dataEnd = dataStart + size;
      if (dataEnd + 2 > length) return this.suspend(start, argc, arg, p, dataEnd + 2);
      if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
        this.fail(RedisErrors.protocol.expectedCrlf);
        return -1;
      }
      args[arg * 2] = dataStart - start;
      args[arg * 2 + 1] = dataEnd - start;
      p = dataEnd + 2;
    }
    this.resumeArgc = -1;
    // Offsets were recorded relative to the frame; make them absolute for the handler.
    if (start !== 0) for (let i = 0; i < argc * 2; i++) args[i]! += start;
    this.onCommand(buf, start, p, argc, args);
    return p;
  }

  /** Records where to resume a frame cut short; offsets are rebased so the frame starts at 0. */
  private suspend(start: number, argc: number, arg: number, p: number, neededEnd: number): number {
    this.resumeArgc = argc;
    this.resumeArg = arg;
    this.resumeAt = p - start;
    this.needed = neededEnd - start;
    return -1;
  }

  private incompleteLine(start: number, length: number, tooBig: string): number {
    if (length - start > INLINE_MAX_SIZE) {
      this.fail(tooBig);
      return -1;
    }
    this.resumeArgc = -1;
    this.needed = length - start + 1;
    return -1;
  }

  /** Inline commands (`PING\r\n`, as telnet and redis-cli pipes send them), converted to a multibulk frame. */
  private parseInline(buf: Buffer, start: number, length: number): number {
    const nl = buf.indexOf(LF, start);
    if (nl < 0 || nl >= length) return this.incompleteLine(start, length, RedisErrors.protocol.tooBigInline);
    const lineEnd = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
    const words = splitInlineArgs(buf.toString("latin1", start, lineEnd));
    if (words === null) {
      this.fail(RedisErrors.protocol.unbalancedQuotes);
      return -1;
    }
    if (words.length === 0) return nl + 1;
    if (words.length > this.limits.maxArgs) {
      this.fail(RedisErrors.protocol.invalidMultibulkLength);
      return -1;
    }
    if (this.args.length < words.length * 2) this.args = new Int32Array(words.length * 2);
    const frame = encodeCommand(words.map((w) => Buffer.from(w, "latin1")));
    let p = frame.indexOf(LF) + 1; // after "*N\r\n"
    for (let i = 0; i < words.length; i++) {
      const size = words[i]!.length; // latin1: one byte per char
      const dataStart = p + String(size).length + 3; // "$" size "\r\n"
      this.args[i * 2] = dataStart;
      this.args[i * 2 + 1] = dataStart + size;
      p = dataStart + size + 2;
    }
    this.resumeArgc = -1;
    this.onCommand(frame, 0, frame.length, words.length, this.args);
    return nl + 1;
  }
}

/** Index of the CR of a CRLF at or after `from`, or -1 if the line is not complete yet. */
function findLineEnd(buf: Buffer, from: number, length: number): number {
  const cr = buf.indexOf(CR, from);
  if (cr < 0 || cr + 1 >= length) return -1;
  return cr;
}

/**
 * Parses a decimal integer from buf[start..end) the way Redis's string2ll does: optional '-',
 * no '+', no leading zeros, no spaces. Returns null when it is not one.
 */
export function parseInteger(buf: Buffer, start: number, end: number): number | null {
  const len = end - start;
  if (len <= 0 || len > 20) return null;
  let i = start;
  let negative = false;
  if (buf[i] === 45) {
    negative = true;
    i++;
    if (i === end) return null;
  }
  if (buf[i] === 48) return i + 1 === end && !negative ? 0 : null;
  let value = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return null;
    value = value * 10 + d;
  }
  if (value > Number.MAX_SAFE_INTEGER) return null;
  return negative ? -value : value;
}

/**
 * Splits an inline request into words as Redis's sdssplitargs does: spaces separate words,
 * "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' take only \'.
 * A closing quote must be followed by a space or the end. Returns null for unbalanced quotes.
 */
export function splitInlineArgs(line: string): string[] | null {
  const words: string[] = [];
  let i = 0;
  const n = line.length;
  const isSpace = (c: string | undefined) =>
    c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f";
  while (true) {
    while (i < n && isSpace(line[i])) i++;
    if (i >= n) return words;
    let word = "";
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = line[i];
      if (inDouble) {
        if (i >= n) return null;
        if (c === "\\" && line[i + 1] === "x" && isHex(line[i + 2]) && isHex(line[i + 3])) {
          word += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 3;
        } else if (c === "\\" && i + 1 < n) {
          i++;
          const e = line[i]!;
          word +=
            e === "n"
              ? "\n"
              : e === "r"
                ? "\r"
                : e === "t"
                  ? "\t"
                  : e === "b"
                    ? "\b"
                    : e === "a"
                      ? "\x07"
                      : e;
        } else if (c === '"') {
          if (i + 1 < n && !isSpace(line[i + 1])) return null;
          done = true;
        } else word += c;
      } else if (inSingle) {
        if (i >= n) return null;
        if (c === "\\" && line[i + 1] === "'") {
          i++;
          word += "'";
        } else if (c === "'") {
          if (i + 1 < n && !isSpace(line[i + 1])) return null;
          done = true;
        } else word += c;
      } else if (i >= n || isSpace(c)) {
        done = true;
      } else if (c === '"') inDouble = true;
      else if (c === "'") inSingle = true;
      else word += c;
      if (i < n) i++;
    }
    words.push(word);
  }
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /[0-9a-fA-F]/.test(c);
}

/**
 * Encodes a command as a RESP multibulk (what clients send), into one buffer sized up front: the
 * busy proxy builds one per part of every split command, and per-argument header buffers made
 * garbage collection a third of its time.
 */
export function encodeCommand(args: readonly (Buffer | string)[]): Buffer {
  let size = 3 + decimalLength(args.length);
  const bytes = new Array<Buffer>(args.length);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const b = typeof arg === "string" ? Buffer.from(arg) : arg;
    bytes[i] = b;
    size += 5 + decimalLength(b.length) + b.length;
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = STAR;
  let p = writeDecimal(out, 1, args.length);
  out[p++] = CR;
  out[p++] = LF;
  for (const b of bytes) {
    out[p++] = DOLLAR;
    p = writeDecimal(out, p, b.length);
    out[p++] = CR;
    out[p++] = LF;
    p += b.copy(out, p);
    out[p++] = CR;
    out[p++] = LF;
  }
  return out;
}

/** Digits of a non-negative integer. */
export function decimalLength(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** Writes a non-negative integer in decimal at `at`; returns the offset after it. */
export function writeDecimal(out: Buffer, at: number, n: number): number {
  const end = at + decimalLength(n);
  for (let i = end - 1; i >= at; i--) {
    out[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}
