/**
 * Splitting a multi-key command by slot and running its parts: each part is a legal single-slot
 * command, sent through the shared `ClusterRouter` (so MOVED, ASK, TRYAGAIN and failover are
 * handled per part, exactly as for the workers' own requests), all parts in parallel.
 */
import { ProxyErrors } from "../../errors.ts";
import { keySlot } from "../../cluster/key-slot.ts";
import { decodeReply, type RespValue } from "../../resp/decode.ts";
import { ErrorReply } from "../../resp/encode.ts";
import { encodeCommand } from "../../resp/request-parser.ts";
import type { ReplyBytes } from "../../resp/reply-scanner.ts";
import { Request } from "../request.ts";
import type { ClusterRouter } from "../router.ts";

/** One single-slot sub-command of a split command. */
export interface Part {
  slot: number;
  args: (Buffer | string)[];
  /** Only reads: safe for the router to send again after a lost connection. */
  readonly: boolean;
  /** Goes to this node whatever the slot map says (a read that must reach one node). */
  target?: string;
  /** Waits on a connection of its own (WAIT blocks): never holds up the shared pipeline. */
  dedicated?: boolean;
  /**
   * Runs `args` as the first of these commands in one MULTI ... EXEC block on one node (an atomic
   * snapshot); the part's result is EXEC's reply.
   */
  atomicWith?: (Buffer | string)[][];
}

/** The keys of one slot, as positions in the caller's key list (duplicates kept, order kept). */
export interface SlotGroup {
  slot: number;
  indexes: number[];
}

/** Groups keys by slot; groups come in the order of each slot's first key, so group 0 holds key 0. */
export function groupBySlot(keys: readonly Buffer[]): SlotGroup[] {
  const groups = new Map<number, SlotGroup>();
  const ordered: SlotGroup[] = [];
  for (let index = 0; index < keys.length; index++) {
    const slot = keySlot(keys[index]!);
    let group = groups.get(slot);
    if (group === undefined) {
      group = { slot, indexes: [] };
      groups.set(slot, group);
      ordered.push(group);
    }
    group.indexes.push(index);
  }
  return ordered;
}

/**
 * Collects the replies of one command's parts. One object per command, and one small sink per
 * part (no closure each): the busy proxy runs a part per slot of every split command, and the
 * garbage of per-part closures showed in its profile.
 */
class PartBatch {
  readonly results: RespValue[];
  private left: number;

  constructor(
    count: number,
    private readonly resolve: (results: RespValue[]) => void,
  ) {
    this.results = new Array<RespValue>(count);
    this.left = count;
    if (count === 0) resolve(this.results);
  }

  answer(index: number, reply: ReplyBytes): void {
    if (this.results[index] !== undefined) return;
    this.results[index] = decodeOrError(reply);
    if (--this.left === 0) this.resolve(this.results);
  }
}

class PartSink {
  constructor(
    private readonly batch: PartBatch,
    private readonly index: number,
  ) {}

  complete(_request: Request, reply: ReplyBytes): void {
    this.batch.answer(this.index, reply);
  }
}

/** Runs parts for one busy-proxy connection. */
export class FanOut {
  constructor(
    readonly router: ClusterRouter,
    /**
     * All parts of one connection's commands share backend connections (same affinity), so parts
     * of successive commands reach each shard in the order the commands came: a pipelined MSET
     * then MGET over the same keys reads what it wrote.
     */
    readonly affinity: number,
  ) {}

  /** Sends every part at once; resolves with their decoded replies, in part order. Never rejects. */
  run(parts: readonly Part[]): Promise<RespValue[]> {
    return new Promise((resolve) => {
      const batch = new PartBatch(parts.length, resolve);
      for (let index = 0; index < parts.length; index++) {
        const part = parts[index]!;
        const request = new Request(new PartSink(batch, index));
        if (part.atomicWith === undefined) request.frame = encodeCommand(part.args);
        else {
          const commands = [["MULTI"], part.args, ...part.atomicWith, ["EXEC"]];
          request.frame = Buffer.concat(commands.map((c) => encodeCommand(c)));
          request.parts = commands.length;
        }
        request.slot = part.slot;
        request.readonly = part.readonly;
        request.affinity = this.affinity;
        if (part.target !== undefined) request.target = part.target;
        if (part.dedicated === true) request.dedicated = true;
        // Parts speak RESP2: the merge reads plain arrays and strings; the merged reply is encoded
        // in the caller's protocol afterwards.
        request.protocol = 2;
        this.router.dispatch(request);
      }
    });
  }
}

function decodeOrError(reply: ReplyBytes): RespValue {
  try {
    return decodeReply(reply);
  } catch (err) {
    return new ErrorReply(ProxyErrors.unreadableShardReply((err as Error).message));
  }
}

/**
 * The error a split command answers when a part failed, or null when none did. WRONGTYPE is
 * returned as Redis words it (the client sees what a standalone Redis would say); any other error
 * names the command and the part's slot, and for writes warns that other parts may have run.
 */
export function partFailure(
  command: string,
  parts: readonly Part[],
  results: readonly RespValue[],
  passThrough: readonly string[] = ["WRONGTYPE"],
): ErrorReply | null {
  for (let i = 0; i < results.length; i++) {
    const result = results[i];
    if (!(result instanceof ErrorReply)) continue;
    const code = result.message.split(" ", 1)[0]!;
    if (passThrough.includes(code)) return result;
    const part = parts[i]!;
    const applied = part.readonly ? "" : " (parts on other slots may have been applied)";
    return new ErrorReply(ProxyErrors.failedOnSlot(command, part.slot, applied, result.message));
  }
  return null;
}

/** For a part reply of a shape the command never returns: a bug or a misbehaving node, said plainly. */
export function unexpectedReply(command: string, part: Part): ErrorReply {
  return new ErrorReply(ProxyErrors.unexpectedFromSlot(command, part.slot));
}
