/**
 * What the emulated cross-slot commands (./emulate.ts) need below the fan-out: commands sent in
 * the client's protocol with their reply bytes kept as they came (so a reply passes through byte
 * for byte, RESP2 or RESP3), a MULTI ... EXEC block on one slot, the items of an array reply as
 * bytes, and temporary key names that hash to a chosen slot.
 */
import { randomBytes } from "node:crypto";
import { keySlot, SLOT_COUNT } from "../../cluster/key-slot.ts";
import type { Protocol } from "../../resp/encode.ts";
import { encodeCommand } from "../../resp/request-parser.ts";
import { replyBuffer, type ReplyBytes } from "../../resp/reply-scanner.ts";
import { Request, type ReplySink } from "../request.ts";
import type { FanOut } from "./fan-out.ts";

type Args = readonly (Buffer | string)[];

class RawSink implements ReplySink {
  constructor(private readonly resolve: (reply: Buffer) => void) {}

  complete(_request: Request, reply: ReplyBytes): void {
    this.resolve(replyBuffer(reply));
  }
}

/**
 * Sends one command to the master of `slot`, or with `transaction` several in one MULTI ... EXEC
 * block (the reply is then EXEC's), on the connection's shared pipeline so it keeps its order with
 * the connection's other parts. Resolves with the reply's bytes; never rejects.
 */
export function sendRaw(
  fanOut: FanOut,
  slot: number,
  commands: readonly Args[],
  protocol: Protocol,
  transaction: boolean,
): Promise<Buffer> {
  return new Promise((resolve) => {
    const request = new Request(new RawSink(resolve));
    const all = transaction ? [["MULTI"], ...commands, ["EXEC"]] : commands;
    request.frame = Buffer.concat(all.map((command) => encodeCommand(command)));
    request.parts = all.length;
    request.slot = slot;
    request.readonly = false;
    request.affinity = fanOut.affinity;
    request.protocol = protocol;
    fanOut.router.dispatch(request);
  });
}

const CR = 13;

/** The end of the RESP2/RESP3 value that starts at `pos` in a complete reply. */
function skipValue(buf: Buffer, pos: number): number {
  const type = buf[pos];
  const cr = buf.indexOf(CR, pos);
  const n = Number(buf.toString("latin1", pos + 1, cr));
  let next = cr + 2;
  switch (type) {
    case 0x24: // $ bulk string
    case 0x21: // ! blob error
    case 0x3d: // = verbatim string
      return n < 0 ? next : next + n + 2;
    case 0x2a: // * array
    case 0x3e: // > push
    case 0x7e: // ~ set
      for (let i = 0; i < n; i++) next = skipValue(buf, next);
      return next;
    case 0x25: // % map
      for (let i = 0; i < n * 2; i++) next = skipValue(buf, next);
      return next;
    default:
      return next;
  }
}

/** The items of an array reply (`*n`), each as its own bytes; null for any other reply. */
export function arrayItems(reply: Buffer): Buffer[] | null {
  if (reply[0] !== 0x2a) return null;
  const cr = reply.indexOf(CR);
  const n = Number(reply.toString("latin1", 1, cr));
  if (!(n >= 0)) return null;
  const items: Buffer[] = [];
  let pos = cr + 2;
  for (let i = 0; i < n; i++) {
    const end = skipValue(reply, pos);
    items.push(reply.subarray(pos, end));
    pos = end;
  }
  return items;
}

/** A null reply, `*-1`/`$-1` (RESP2) or `_` (RESP3). */
export function isNullReply(reply: Buffer): boolean {
  return reply[0] === 0x5f || ((reply[0] === 0x2a || reply[0] === 0x24) && reply[1] === 0x2d);
}

export function isErrorReply(reply: Buffer): boolean {
  return reply[0] === 0x2d || reply[0] === 0x21;
}

/** For each slot, a short hash tag whose key slot is that slot: found once, by counting in base 36. */
let slotTags: string[] | undefined;

function tagFor(slot: number): string {
  if (slotTags === undefined) {
    const tags = new Array<string>(SLOT_COUNT);
    let missing = SLOT_COUNT;
    for (let i = 0; missing > 0; i++) {
      const tag = i.toString(36);
      const s = keySlot(Buffer.from(tag, "latin1"));
      if (tags[s] === undefined) {
        tags[s] = tag;
        missing--;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot]!;
}

/** Random per process (not the pid: containers of several hosts often share pid 1). */
const INSTANCE = randomBytes(6).toString("hex");
let nextTemp = 0;

/**
 * A key name that hashes to `slot` and no client uses: the instance and a counter keep two
 * emulations, of this busy proxy or another host's, from sharing one.
 */
export function tempKey(slot: number): string {
  return `{${tagFor(slot)}}dredis:emulate:${INSTANCE}:${++nextTemp}`;
}
