/**
 * The busy proxy's hot path: MGET, MSET, DEL, UNLINK, EXISTS and TOUCH split by slot straight from
 * the parser's offsets, with no argument array, no Promise, no decoded reply and no re-encoding.
 *
 * Hand-written because these six are nearly all the busy proxy's traffic, and running them on the
 * general path (./fan-out.ts, as the other split commands run) spent 36% of the busy proxy's time
 * in garbage collection under MSET at pipeline 16 (bench/profile.ts): an argument array, a part
 * object, an argument list and a frame per part, a Promise per command, and every reply decoded
 * into objects only to be encoded again. Here a command writes its part
 * frames into one buffer, sends one request per node, and MGET's reply is spliced from the parts'
 * reply bytes.
 *
 * Each part runs the same command on one slot's keys (duplicates kept: `EXISTS a a` counts twice),
 * so a part means on its shard what the whole command means on a standalone Redis. MSET is not
 * atomic across slots (each slot's part is): a reader may see some slots written before others,
 * which is why MSETNX, whose answer depends on atomicity, is refused rather than split.
 */
import { Buffer } from "node:buffer";
import { keySlot, SLOT_COUNT } from "../../cluster/key-slot.ts";
import { ProxyErrors } from "../../errors.ts";
import { COLON, CR, CRLF_LENGTH, DOLLAR, LF, MINUS, PLUS, STAR } from "../../resp/bytes.ts";
import { errorReply, OK } from "../../resp/encode.ts";
import { decimalLength, writeDecimal } from "../../resp/request-parser.ts";
import type { ReplyBytes } from "../../resp/reply-scanner.ts";
import { Request, type ReplySink } from "../request.ts";
import type { ClusterRouter } from "../router.ts";
import { SplitKind, splitCommand, type SplitCommand } from "./split-commands.ts";

export { splitCommand };

/** The router calls a split makes: the busy proxy's router, or a worker's (client.ts, `workerSplitMaxKeys`). */
export type SplitRouter = Pick<ClusterRouter, "masterFor" | "dispatch" | "retryRefused">;

const RESP3_NULL = Buffer.from("_\r\n");

/**
 * Per-connection scratch space for grouping keys by slot without a Map. Arrays made per command
 * are plain arrays, not typed ones: a typed array over 64 bytes gets a backing store outside the
 * heap, and allocating those was a quarter of this path's time (bench/split.ts: 1.7 -> 1.2 us
 * per 10-key MSET; about 1.05 us since arguments are copied without re-checking their framing).
 */
export class SlotGrouper {
  /** Group index of each slot during one split, -1 otherwise (reset after each use). */
  private readonly groupOfSlot = new Int32Array(SLOT_COUNT).fill(-1);
  private slots = new Int32Array(64);
  private counts = new Int32Array(64);
  private bytes = new Int32Array(64);
  private nodeOfGroup = new Int32Array(64);
  private nodeParts = new Int32Array(64);
  private nodeFirst = new Int32Array(64);
  private nodes = new Array<string | undefined>(64);
  /** Each key's encoded arguments during one split: buf[keyFrom[k]..keyTo[k]) (header to CRLF). */
  private keyFrom = new Int32Array(64);
  private keyTo = new Int32Array(64);

  /**
   * Splits the command at args (parser offsets into buf) into one part per slot and sends the
   * parts, one request per node. `done` receives the merged reply bytes, in the caller's protocol.
   * The scratch arrays are only used within the call; what outlives it belongs to the batch.
   * Returns the buffer holding every part's frame (what the parts have in flight).
   */
  run(
    command: SplitCommand,
    buf: Buffer,
    argc: number,
    args: Int32Array,
    router: SplitRouter,
    affinity: number,
    protocol: 2 | 3,
    done: (reply: Buffer) => void,
  ): Buffer {
    const step = command.step;
    // (Integer arithmetic: `/` gives a double, and decimalLength divides; see `digits`.)
    const keyCount = step === 1 ? argc - 1 : (argc - 1) >> 1;
    const keyGroup = new Array<number>(keyCount);
    if (keyCount > this.slots.length) this.grow(keyCount);
    const { groupOfSlot, slots, counts, bytes, keyFrom, keyTo } = this;
    // A few keys (the worker's splits, `workerSplitMaxKeys`) find their group by scanning the
    // groups so far rather than through the 64 KB slot table, which a random slot seldom finds in
    // cache. With the offsets kept per key below: bench/split.ts 10-20% less CPU per 10-key MSET;
    // in a worker's perf profile under MSET at pipeline 1, `run` went from 13% to 11% of its time.
    const scan = keyCount <= SCAN_MAX_KEYS;
    let groups = 0;
    for (let k = 0; k < keyCount; k++) {
      const arg = 1 + k * step;
      const start = args[arg * 2]!;
      const end = args[arg * 2 + 1]!;
      const slot = keySlot(buf, start, end);
      let g: number;
      if (scan) {
        g = 0;
        while (g < groups && slots[g] !== slot) g++;
      } else g = groupOfSlot[slot]!;
      if (g < 0 || g === groups) {
        g = groups++;
        if (!scan) groupOfSlot[slot] = g;
        slots[g] = slot;
        counts[g] = 0;
        bytes[g] = 0;
      }
      keyGroup[k] = g;
      counts[g]!++;
      // The key's arguments as the parser framed them (`$len\r\n...\r\n`, a value's right after
      // its key's): canonical frames only (see CommandHandler), so the header is exactly that long.
      const from = start - 3 - digits(end - start);
      const to = args[(arg + step - 1) * 2 + 1]! + CRLF_LENGTH;
      keyFrom[k] = from;
      keyTo[k] = to;
      bytes[g]! += to - from;
    }
    if (!scan) for (let g = 0; g < groups; g++) groupOfSlot[slots[g]!] = -1;

    // Parts for one node travel as one request (twemproxy sends one fragment per server; Redis
    // Cluster still needs one command per slot): group the slot groups by the node serving them.
    const { nodes, nodeOfGroup, nodeParts } = this;
    let nodeCount = 0;
    for (let g = 0; g < groups; g++) {
      const address = router.masterFor(slots[g]!);
      let n = -1;
      if (address !== undefined) for (let i = 0; i < nodeCount && n < 0; i++) if (nodes[i] === address) n = i;
      if (n < 0) {
        // A slot with no known master gets a request of its own: the router holds it until one is.
        n = nodeCount++;
        nodes[n] = address;
        nodeParts[n] = 0;
      }
      nodeOfGroup[g] = n;
      nodeParts[n]!++;
    }

    // One buffer holds every part's frame (`*n\r\n`, the name, then that slot's arguments), the
    // parts of one node side by side: `order` lists the groups node by node.
    const name = command.frame;
    const order = new Array<number>(groups);
    const nodeFirst = this.nodeFirst;
    for (let n = 0, at = 0; n < nodeCount; n++) {
      nodeFirst[n] = at;
      at += nodeParts[n]!;
      nodeParts[n] = nodeFirst[n]!; // from here on: where the node's next group goes in `order`
    }
    for (let g = 0; g < groups; g++) order[nodeParts[nodeOfGroup[g]!]!++] = g;
    // Part g is frames[spans[2g]..spans[2g + 1]); while writing, spans[2g + 1] is its cursor.
    const spans = new Array<number>(groups * 2);
    let total = 0;
    for (let i = 0; i < groups; i++) {
      const g = order[i]!;
      spans[g * 2] = total;
      total += 3 + decimalLength(1 + counts[g]! * step) + name.length + bytes[g]!;
    }
    const frames = Buffer.allocUnsafe(total);
    for (let g = 0; g < groups; g++) {
      let p = spans[g * 2]!;
      frames[p++] = STAR;
      p = writeDecimal(frames, p, 1 + counts[g]! * step);
      frames[p++] = CR;
      frames[p++] = LF;
      for (let i = 0; i < name.length; i++) frames[p++] = name[i]!; // a few bytes: a loop beats copy()
      spans[g * 2 + 1] = p;
    }
    for (let k = 0; k < keyCount; k++) {
      const g = keyGroup[k]!;
      let p = spans[g * 2 + 1]!;
      // A key's arguments in one go; short runs byte by byte, faster than copy()'s native call.
      const from = keyFrom[k]!;
      const to = keyTo[k]!;
      if (to - from <= 64) for (let i = from; i < to; i++) frames[p++] = buf[i]!;
      else p += buf.copy(frames, p, from, to);
      spans[g * 2 + 1] = p;
    }

    const batch = new SplitBatch(command, keyGroup, order, protocol, done, router, affinity, frames, spans);
    for (let g = 0; g < groups; g++) batch.slots[g] = slots[g]!;
    for (let n = 0; n < nodeCount; n++) {
      const from = nodeFirst[n]!;
      const count = (n + 1 < nodeCount ? nodeFirst[n + 1]! : groups) - from;
      router.dispatch(batch.nodeRequest(from, count));
    }
    return frames;
  }

  private grow(n: number): void {
    let size = this.slots.length;
    while (size < n) size *= 2;
    this.slots = new Int32Array(size);
    this.counts = new Int32Array(size);
    this.bytes = new Int32Array(size);
    this.nodeOfGroup = new Int32Array(size);
    this.nodeParts = new Int32Array(size);
    this.nodeFirst = new Int32Array(size);
    this.nodes = new Array<string | undefined>(size);
    this.keyFrom = new Int32Array(size);
    this.keyTo = new Int32Array(size);
  }
}

/** Split commands of at most this many keys group them by scanning (see `run`). */
const SCAN_MAX_KEYS = 32;

/** Decimal digits of a non-negative length (decimalLength without its divisions). */
function digits(n: number): number {
  if (n < 10) return 1;
  if (n < 100) return 2;
  if (n < 1000) return 3;
  if (n < 10000) return 4;
  return decimalLength(n);
}

/**
 * The parts of one split command: sends them, collects their replies, then merges them into one.
 * It is the sink of every request it sends, which needs no object per request: a request carries
 * `parts` parts from its first part's place in `order` on, and that part's slot as its `slot`
 * (neither changes on the way; a part's slot is its own).
 */
class SplitBatch implements ReplySink {
  readonly replies: (Buffer | undefined)[];
  readonly slots: number[];
  private left: number;

  constructor(
    private readonly command: SplitCommand,
    /** Each key's part (MGET merges values back in key order). */
    private readonly keyGroup: readonly number[],
    /** The parts node by node: a node's parts are side by side in `frames`. */
    private readonly order: readonly number[],
    private readonly protocol: 2 | 3,
    private readonly done: (reply: Buffer) => void,
    private readonly router: SplitRouter,
    private readonly affinity: number,
    /** Every part's frame: part g is frames[spans[2g]..spans[2g + 1]). */
    private readonly frames: Buffer,
    private readonly spans: readonly number[],
  ) {
    const groups = order.length;
    this.replies = new Array<Buffer | undefined>(groups);
    this.slots = new Array<number>(groups);
    this.left = groups;
  }

  /**
   * The request for parts order[first..first + count), side by side in `frames`. One part alone
   * gets the router's own redirect handling; several are collected, and refusals retried per part.
   */
  nodeRequest(first: number, count: number): Request {
    const g = this.order[first]!;
    const request = new Request(this);
    request.frame = this.frames.subarray(
      this.spans[g * 2]!,
      this.spans[this.order[first + count - 1]! * 2 + 1]!,
    );
    request.slot = this.slots[g]!;
    request.readonly = this.command.readonly;
    request.affinity = this.affinity;
    // Parts speak RESP2: the merge reads RESP2 shapes and writes the caller's protocol.
    request.protocol = 2;
    if (count > 1) {
      request.parts = count;
      request.collect = [];
    }
    return request;
  }

  complete(request: Request, reply: ReplyBytes): void {
    const g = this.slots.indexOf(request.slot);
    if (request.collect === null) return this.answer(g, reply);
    // When the request ended early (connection lost, node unavailable), the parts without a
    // reply of their own get the reply it ended with.
    const replies = request.collect;
    const first = this.order.indexOf(g);
    for (let k = 0; k < request.parts; k++)
      this.partReply(this.order[first + k]!, k < replies.length ? replies[k]! : reply);
  }

  /**
   * Part g's reply from a node's shared request. A refusal (MOVED, ASK, TRYAGAIN...) means the
   * part did not run: it goes again alone, through the router's handling of that refusal.
   */
  private partReply(g: number, reply: ReplyBytes): void {
    if ((Array.isArray(reply) ? reply[0]! : reply)[0] === MINUS) {
      const retry = this.nodeRequest(this.order.indexOf(g), 1);
      if (this.router.retryRefused(retry, reply)) return;
    }
    this.answer(g, reply);
  }

  private answer(index: number, reply: ReplyBytes): void {
    if (this.replies[index] !== undefined) return;
    this.replies[index] = Array.isArray(reply) ? Buffer.concat(reply) : reply;
    if (--this.left === 0) this.done(this.merge());
  }

  private merge(): Buffer {
    const { command, replies } = this;
    const failed = this.failure();
    if (failed !== null) return failed;
    if (command.kind === SplitKind.Mset) {
      for (let g = 0; g < replies.length; g++) if (!isOk(replies[g]!)) return this.unexpected(g);
      return OK;
    }
    if (command.kind === SplitKind.Sum) {
      let total = 0;
      for (let g = 0; g < replies.length; g++) {
        const reply = replies[g]!;
        const n = reply[0] === COLON ? integerLine(reply) : null;
        if (n === null) return this.unexpected(g);
        total += n;
      }
      return Buffer.from(`:${total}\r\n`, "latin1");
    }
    return this.mergeValues();
  }

  /**
   * MGET: each part's reply is `*n` then n bulk strings or nulls, in that part's key order; the
   * merged array takes them in the caller's key order (a cursor per part).
   */
  private mergeValues(): Buffer {
    const { replies, keyGroup } = this;
    const groups = replies.length;
    const cursor = new Array<number>(groups);
    for (let g = 0; g < groups; g++) {
      const reply = replies[g]!;
      const count = reply[0] === STAR ? lineInteger(reply, 1) : null;
      if (count === null) return this.unexpected(g);
      cursor[g] = lineNext;
    }
    const keyCount = keyGroup.length;
    const starts = new Array<number>(keyCount);
    const ends = new Array<number>(keyCount);
    let size = 3 + decimalLength(keyCount);
    for (let k = 0; k < keyCount; k++) {
      const g = keyGroup[k]!;
      const reply = replies[g]!;
      const at = cursor[g]!;
      if (at >= reply.length || reply[at] !== DOLLAR) return this.unexpected(g);
      const length = lineInteger(reply, at + 1);
      if (length === null || length < -1) return this.unexpected(g);
      const headerEnd = lineNext;
      const end = length === -1 ? headerEnd : headerEnd + length + CRLF_LENGTH;
      if (end > reply.length) return this.unexpected(g);
      starts[k] = at;
      ends[k] = end;
      cursor[g] = end;
      size += length === -1 && this.protocol === 3 ? RESP3_NULL.length : end - at;
    }
    // Every part's reply must have been used up exactly (its count was the part's key count).
    for (let g = 0; g < groups; g++) if (cursor[g] !== replies[g]!.length) return this.unexpected(g);
    const out = Buffer.allocUnsafe(size);
    out[0] = STAR;
    let p = writeDecimal(out, 1, keyCount);
    out[p++] = CR;
    out[p++] = LF;
    for (let k = 0; k < keyCount; k++) {
      const reply = replies[keyGroup[k]!]!;
      const start = starts[k]!;
      const end = ends[k]!;
      if (this.protocol === 3 && reply[start + 1] === MINUS) p += RESP3_NULL.copy(out, p);
      else if (end - start <= 48) for (let i = start; i < end; i++) out[p++] = reply[i]!;
      else p += reply.copy(out, p, start, end);
    }
    return out;
  }

  /**
   * The first failed part's error, worded as ./fan-out.ts's partFailure words it: WRONGTYPE as
   * Redis says it, anything else with the command, the slot and, for writes, a warning that other
   * parts may have run.
   */
  private failure(): Buffer | null {
    for (let g = 0; g < this.replies.length; g++) {
      const reply = this.replies[g]!;
      if (reply[0] !== MINUS) continue;
      const message = reply.toString("utf8", 1, reply.length - CRLF_LENGTH);
      if (message.startsWith("WRONGTYPE ")) return errorReply(message);
      const applied = this.command.readonly ? "" : " (parts on other slots may have been applied)";
      return errorReply(ProxyErrors.failedOnSlot(this.command.name, this.slots[g]!, applied, message));
    }
    return null;
  }

  private unexpected(g: number): Buffer {
    return errorReply(ProxyErrors.unexpectedFromSlot(this.command.name, this.slots[g]!));
  }
}

function isOk(reply: Buffer): boolean {
  return reply.length === 5 && reply[0] === PLUS && reply[1] === 79 && reply[2] === 75;
}

/** The integer of a one-line reply such as `:12\r\n`, or null. */
function integerLine(reply: Buffer): number | null {
  const n = lineInteger(reply, 1);
  return n !== null && lineNext === reply.length ? n : null;
}

/** Set by lineInteger: the offset just past the CRLF that ended the line it read. */
let lineNext = 0;

/**
 * The decimal integer from `at` to the line's CRLF, or null when it is not one; sets lineNext.
 * (A module variable rather than a returned pair: this runs for every value MGET merges.)
 */
function lineInteger(buf: Buffer, at: number): number | null {
  let i = at;
  let negative = false;
  if (buf[i] === MINUS) {
    negative = true;
    i++;
  }
  let value = 0;
  const first = i;
  for (; i < buf.length && buf[i] !== CR; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return null;
    value = value * 10 + d;
  }
  if (i === first || i + 1 >= buf.length || buf[i + 1] !== LF) return null;
  lineNext = i + CRLF_LENGTH;
  return negative ? -value : value;
}
