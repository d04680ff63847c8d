/**
 * Finds the boundaries of RESP2/RESP3 replies in a stream of bytes from a Redis server, without
 * decoding them.
 *
 * Hand-written because it is the proxy's hot path: the proxy forwards reply bytes untouched, so it
 * only needs to know where each top-level reply ends. The scanner is resumable: a reply that spans
 * several reads is returned as the list of slices it covers (no copy), and scanning picks up where
 * it stopped instead of starting the reply over.
 */

/** A complete top-level reply: one slice, or the slices of the reads it spanned, in order. */
export type ReplyBytes = Buffer | Buffer[];

import { CR, LF } from "./bytes.ts";

export type ReplyHandler = (reply: ReplyBytes, firstByte: number) => void;

export class ReplyScanner {
  /** Elements still expected at each open aggregate level. */
  private remaining: number[] = [];
  /** Payload bytes (plus CRLF) of a bulk still to pass over. */
  private skip = 0;
  /** The start of a header line cut by a read, kept to parse it when the rest arrives. */
  private lineCarry: Buffer | null = null;
  /** Slices of the current reply from earlier reads. */
  private pieces: Buffer[] = [];
  private firstByte = -1;

  constructor(private readonly onReply: ReplyHandler) {}

  /** True when the stream is between replies. */
  get idle(): boolean {
    return (
      this.pieces.length === 0 && this.lineCarry === null && this.skip === 0 && this.remaining.length === 0
    );
  }

  /** Scans a chunk and calls the handler for every reply it completes. Throws on bytes that are not RESP. */
  feed(chunk: Buffer): void {
    let pos = 0;
    let replyStart = 0;
    const length = chunk.length;
    while (pos < length) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, length - pos);
        this.skip -= take;
        pos += take;
        if (this.skip > 0) break;
        if (this.elementDone()) {
          this.emit(chunk, replyStart, pos);
          replyStart = pos;
        }
        continue;
      }
      let lineStart = pos;
      let line: Buffer = chunk;
      let cr: number;
      if (this.lineCarry !== null) {
        const rest = chunk.indexOf(CR, pos);
        // The CR may have been the carry's last byte, with LF the first of this chunk.
        if (this.lineCarry[this.lineCarry.length - 1] === CR && chunk[0] === LF) {
          line = this.lineCarry;
          cr = this.lineCarry.length - 1;
          pos = 1;
        } else if (rest < 0 || rest + 1 >= length) {
          this.lineCarry = Buffer.concat([this.lineCarry, chunk.subarray(pos)]);
          pos = length;
          break;
        } else {
          line = Buffer.concat([this.lineCarry, chunk.subarray(pos, rest + 2)]);
          cr = line.length - 2;
          pos = rest + 2;
        }
        lineStart = 0;
        this.lineCarry = null;
      } else {
        cr = chunk.indexOf(CR, pos);
        if (cr < 0 || cr + 1 >= length) {
          this.lineCarry = Buffer.from(chunk.subarray(pos));
          pos = length;
          break;
        }
        pos = cr + 2;
      }
      const type = line[lineStart]!;
      if (this.firstByte < 0) this.firstByte = type;
      if (this.header(type, line, lineStart + 1, cr)) {
        if (this.elementDone()) {
          this.emit(chunk, replyStart, pos);
          replyStart = pos;
        }
      }
    }
    if (replyStart < length && (this.firstByte >= 0 || this.lineCarry !== null || this.skip > 0)) {
      this.pieces.push(chunk.subarray(replyStart, length));
    }
  }

  /**
   * Handles a header line; returns true when it completed an element (false when it opened an
   * aggregate or a bulk payload follows).
   */
  private header(type: number, line: Buffer, start: number, end: number): boolean {
    switch (type) {
      case 43: // + simple string
      case 45: // - error
      case 58: // : integer
      case 95: // _ null
      case 44: // , double
      case 35: // # boolean
      case 40: // ( big number
        return true;
      case 36: // $ bulk string
      case 33: // ! blob error
      case 61: {
        // = verbatim string
        const size = readLength(line, start, end);
        if (size < 0) return true;
        this.skip = size + 2;
        return false;
      }
      case 42: // * array
      case 126: // ~ set
      case 62: // > push
        return this.open(readLength(line, start, end));
      case 37: // % map
        return this.open(readLength(line, start, end) * 2);
      case 124: // | attribute: its pairs, then the value it annotates
        return this.open(readLength(line, start, end) * 2 + 1);
      default:
        throw new Error(`unexpected RESP type byte 0x${type.toString(16)} from server`);
    }
  }

  private open(count: number): boolean {
    if (count <= 0) return true; // empty or null aggregate: complete as it stands
    this.remaining.push(count);
    return false;
  }

  /** An element finished: close every aggregate it completes. True when a top-level reply is complete. */
  private elementDone(): boolean {
    const stack = this.remaining;
    while (stack.length > 0) {
      const left = stack[stack.length - 1]! - 1;
      if (left > 0) {
        stack[stack.length - 1] = left;
        return false;
      }
      stack.pop();
    }
    return true;
  }

  private emit(chunk: Buffer, start: number, end: number): void {
    const first = this.firstByte;
    this.firstByte = -1;
    if (this.pieces.length === 0) {
      this.onReply(chunk.subarray(start, end), first);
      return;
    }
    const pieces = this.pieces;
    if (end > start) pieces.push(chunk.subarray(start, end));
    this.pieces = [];
    this.onReply(pieces, first);
  }
}

function readLength(line: Buffer, start: number, end: number): number {
  let i = start;
  let negative = false;
  if (line[i] === 45) {
    negative = true;
    i++;
  }
  let value = 0;
  if (i >= end) throw new Error("malformed RESP length from server");
  for (; i < end; i++) {
    const d = line[i]! - 48;
    if (d < 0 || d > 9) throw new Error("malformed RESP length from server");
    value = value * 10 + d;
  }
  return negative ? -value : value;
}

/** The reply as one Buffer (copies only when it spans reads). */
export function replyBuffer(reply: ReplyBytes): Buffer {
  return Buffer.isBuffer(reply) ? reply : Buffer.concat(reply);
}
