/**
 * Decodes one complete RESP2/RESP3 reply into values, for the busy proxy, which must read the
 * shards' replies to merge them (the worker only forwards bytes and never decodes).
 *
 * Hand-written rather than taken from npm: the reply's boundaries are already known (the
 * `ReplyScanner` found them), so this is a plain recursive read of one buffer; `redis-parser`, the
 * common npm choice, is a streaming RESP2-only parser and would redo the framing. Bulk strings stay
 * Buffers (binary-safe); values of types the encoder knows decode to its classes, so a decoded
 * reply encodes back to the same bytes.
 */
import { DoubleReply, ErrorReply, SimpleString } from "./encode.ts";
import { CR, LF } from "./bytes.ts";
import { replyBuffer, type ReplyBytes } from "./reply-scanner.ts";

/** A RESP3 map, entries in the order received (keys are often Buffers, which a JS Map would compare by identity). */
export class RespMap {
  constructor(readonly entries: [RespValue, RespValue][]) {}
}
/** A RESP3 set. */
export class RespSet {
  constructor(readonly items: RespValue[]) {}
}

/**
 * A decoded reply. Bulk and verbatim strings are Buffers, integers numbers (bigint past 2^53),
 * big numbers bigints, errors (simple or blob) ErrorReply, nulls (RESP2 `$-1`/`*-1`, RESP3 `_`)
 * null, pushes arrays; attributes are dropped and the value they annotate returned.
 */
export type RespValue =
  | null
  | boolean
  | number
  | bigint
  | Buffer
  | SimpleString
  | ErrorReply
  | DoubleReply
  | RespMap
  | RespSet
  | RespValue[];

/** Decodes exactly one reply; throws if the bytes are not one complete, well-formed reply. */
export function decodeReply(reply: ReplyBytes): RespValue {
  const reader = new Reader(replyBuffer(reply));
  const value = reader.value();
  if (reader.pos !== reader.buf.length) throw new Error("trailing bytes after a RESP reply");
  return value;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  value(): RespValue {
    const type = this.buf[this.pos];
    if (type === undefined) throw new Error("truncated RESP reply");
    this.pos++;
    const line = this.line();
    switch (type) {
      case 43: // + simple string
        return new SimpleString(line);
      case 45: // - error
        return new ErrorReply(line);
      case 58: // : integer
        return integer(line);
      case 95: // _ null
        return null;
      case 35: // # boolean
        if (line !== "t" && line !== "f") throw new Error(`bad RESP boolean '${line}'`);
        return line === "t";
      case 44: // , double
        return new DoubleReply(double(line));
      case 40: // ( big number
        return BigInt(line);
      case 36: // $ bulk string
        return this.bulk(line);
      case 33: {
        // ! blob error
        const body = this.bulk(line);
        return body === null ? null : new ErrorReply(body.toString());
      }
      case 61: {
        // = verbatim string: "txt:" or "mkd:" then the text
        const body = this.bulk(line);
        return body === null ? null : body.subarray(4);
      }
      case 42: // * array
      case 62: // > push
        return this.items(length(line));
      case 126: {
        // ~ set
        const items = this.items(length(line));
        return items === null ? null : new RespSet(items);
      }
      case 37: {
        // % map
        const n = length(line);
        const entries: [RespValue, RespValue][] = [];
        for (let i = 0; i < n; i++) entries.push([this.value(), this.value()]);
        return new RespMap(entries);
      }
      case 124: {
        // | attribute: skip its pairs, return the value it annotates
        const n = length(line);
        for (let i = 0; i < n * 2; i++) this.value();
        return this.value();
      }
      default:
        throw new Error(`unexpected RESP type byte 0x${type.toString(16)}`);
    }
  }

  private line(): string {
    const cr = this.buf.indexOf(CR, this.pos);
    if (cr < 0 || this.buf[cr + 1] !== LF) throw new Error("truncated RESP reply");
    const text = this.buf.toString("utf8", this.pos, cr);
    this.pos = cr + 2;
    return text;
  }

  private bulk(header: string): Buffer | null {
    const size = length(header);
    if (size < 0) return null;
    const end = this.pos + size;
    if (end + 2 > this.buf.length || this.buf[end] !== CR || this.buf[end + 1] !== LF)
      throw new Error("truncated RESP bulk string");
    const body = this.buf.subarray(this.pos, end);
    this.pos = end + 2;
    return body;
  }

  private items(n: number): RespValue[] | null {
    if (n < 0) return null;
    const out: RespValue[] = [];
    for (let i = 0; i < n; i++) out.push(this.value());
    return out;
  }
}

function length(text: string): number {
  if (!/^-?\d+$/.test(text)) throw new Error(`bad RESP length '${text}'`);
  return Number(text);
}

function integer(text: string): number | bigint {
  if (!/^-?\d+$/.test(text)) throw new Error(`bad RESP integer '${text}'`);
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

function double(text: string): number {
  if (text === "inf") return Infinity;
  if (text === "-inf") return -Infinity;
  if (text === "nan") return NaN;
  const n = Number(text);
  if (text === "" || Number.isNaN(n)) throw new Error(`bad RESP double '${text}'`);
  return n;
}
