/**
 * Encodes replies the proxy answers itself, in RESP2 or RESP3 as the client negotiated.
 */

export type Protocol = 2 | 3;

/** A reply value: strings are bulk strings; see the wrappers for the other types. */
export type ReplyValue =
  | string
  | Buffer
  | number
  | null
  | ReplyValue[]
  | SimpleString
  | ErrorReply
  | MapReply
  | SetReply
  | DoubleReply
  | VerbatimString
  | RawReply;

export class SimpleString {
  constructor(readonly value: string) {}
}
export class ErrorReply {
  constructor(readonly message: string) {}
}
export class MapReply {
  constructor(readonly entries: [ReplyValue, ReplyValue][]) {}
}
export class SetReply {
  constructor(readonly items: ReplyValue[]) {}
}
/** Text such as INFO's: a `=` verbatim string ("txt:") under RESP3, a bulk string under RESP2, as Redis sends it. */
export class VerbatimString {
  constructor(readonly text: string) {}
}
/** Reply bytes a shard sent in the client's protocol, passed on untouched (emulated cross-slot commands). */
export class RawReply {
  constructor(readonly bytes: Buffer) {}
}
/** A double (sorted-set scores): a bulk string under RESP2, a `,` double under RESP3, as Redis sends it. */
export class DoubleReply {
  /** `text`: the digits to send, when they must be another engine's than formatDouble's. */
  constructor(
    readonly value: number,
    readonly text?: string,
  ) {}
}

export const OK = Buffer.from("+OK\r\n");
export const PONG = Buffer.from("+PONG\r\n");
export const QUEUED = Buffer.from("+QUEUED\r\n");
export const RESET = Buffer.from("+RESET\r\n");

/** An error reply. Messages quoting client bytes are built as latin1 strings, so they round-trip byte for byte. */
export function errorReply(message: string, encoding: BufferEncoding = "utf8"): Buffer {
  return Buffer.from(`-${message}\r\n`, encoding);
}

export function simpleString(value: string): Buffer {
  return Buffer.from(`+${value}\r\n`);
}

export function integerReply(value: number): Buffer {
  return Buffer.from(`:${value}\r\n`);
}

export function bulkReply(value: string | Buffer | null, proto: Protocol): Buffer {
  if (value === null) return Buffer.from(proto === 3 ? "_\r\n" : "$-1\r\n");
  const body = typeof value === "string" ? Buffer.from(value) : value;
  return Buffer.concat([Buffer.from(`$${body.length}\r\n`), body, CRLF]);
}

const CRLF = Buffer.from("\r\n");

/** Encodes any reply value; maps and sets fall back to flat arrays under RESP2, as Redis does. */
export function encodeReply(value: ReplyValue, proto: Protocol): Buffer {
  const parts: Buffer[] = [];
  write(value, proto, parts);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function write(value: ReplyValue, proto: Protocol, out: Buffer[]): void {
  if (value === null) out.push(Buffer.from(proto === 3 ? "_\r\n" : "$-1\r\n"));
  else if (typeof value === "string" || Buffer.isBuffer(value)) out.push(bulkReply(value, proto));
  else if (typeof value === "number") out.push(integerReply(value));
  else if (value instanceof SimpleString) out.push(simpleString(value.value));
  else if (value instanceof ErrorReply) out.push(errorReply(value.message));
  else if (value instanceof RawReply) out.push(value.bytes);
  else if (value instanceof VerbatimString) {
    if (proto === 2) out.push(bulkReply(value.text, proto));
    else {
      const body = Buffer.from(`txt:${value.text}`);
      out.push(Buffer.from(`=${body.length}\r\n`), body, CRLF);
    }
  } else if (value instanceof DoubleReply) {
    const text = value.text ?? formatDouble(value.value);
    out.push(proto === 3 ? Buffer.from(`,${text}\r\n`) : bulkReply(text, proto));
  } else if (value instanceof MapReply) {
    out.push(Buffer.from(proto === 3 ? `%${value.entries.length}\r\n` : `*${value.entries.length * 2}\r\n`));
    for (const [k, v] of value.entries) {
      write(k, proto, out);
      write(v, proto, out);
    }
  } else if (value instanceof SetReply) {
    out.push(Buffer.from(`${proto === 3 ? "~" : "*"}${value.items.length}\r\n`));
    for (const item of value.items) write(item, proto, out);
  } else {
    out.push(Buffer.from(`*${value.length}\r\n`));
    for (const item of value) write(item, proto, out);
  }
}

/**
 * A double as Redis 7.0 prints it (`"%.17g"`, with "inf" and "-inf" spelled out), so scores the
 * proxy computes read exactly as the shards' own: 0.1 is "0.10000000000000001", 3 is "3".
 */
export function formatDouble(value: number): string {
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  if (Number.isNaN(value)) return "nan";
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const sign = value < 0 ? "-" : "";
  // 17 significant digits, correctly rounded; %g picks its style from the rounded exponent.
  const [mantissa, exponentText] = Math.abs(value).toExponential(16).split("e") as [string, string];
  const exponent = Number(exponentText);
  const digits = mantissa.replace(".", "");
  if (exponent < -4 || exponent >= 17) {
    const fraction = digits.slice(1).replace(/0+$/, "");
    const exp = `${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
    return `${sign}${digits[0]}${fraction ? `.${fraction}` : ""}e${exp}`;
  }
  const whole = exponent >= 0 ? digits.slice(0, exponent + 1) : "0";
  const fraction = (exponent >= 0 ? digits.slice(exponent + 1) : "0".repeat(-exponent - 1) + digits).replace(
    /0+$/,
    "",
  );
  return `${sign}${whole}${fraction ? `.${fraction}` : ""}`;
}
