/**
 * Atomic multi-key commands across slots, emulated (`crossSlot: emulate`; the list and the
 * guarantee each loses are in ./emulate-commands.ts). Redis itself computes every reply, so
 * replies, errors and their order are a standalone Redis's, byte for byte:
 *
 * - Commands with a destination (RENAME, *STORE, COPY, BITOP, PFMERGE, SORT and GEORADIUS with
 *   STORE...) and the multi-key reads (LCS, ZINTERCARD) run on the slot of their "anchor" key (the
 *   destination, or the first key of a read). Each other key whose slot differs is read with DUMP
 *   and PEXPIRETIME in one MULTI on its own slot; then one MULTI ... EXEC on the anchor's slot
 *   RESTOREs it under a temporary key of that slot (same type, value and expiry), runs the command
 *   with the temporary keys in place of those keys, and DELetes them: the temporary keys never
 *   outlive that block. RENAME and RENAMENX then delete the source, on its slot, if unchanged.
 * - SMOVE, LMOVE and RPOPLPUSH do the same with only what would move copied in (a one-member set,
 *   a one-element list) rather than the whole source, then remove what moved from the source.
 * - No WATCH: the sources live on other nodes, where a WATCH on the anchor's node cannot see them.
 * - LMPOP and ZMPOP try their keys one at a time, in order, as Redis does, after Redis has checked
 *   the options on the command with every key replaced by one absent key.
 * - MSETNX sets each slot's keys with MSETNX on that slot, and deletes them again if another
 *   slot's keys were not all absent.
 */
import { ProxyErrors, RedisErrors } from "../../errors.ts";
import { keySlot } from "../../cluster/key-slot.ts";
import { decodeReply, type RespValue } from "../../resp/decode.ts";
import { ErrorReply, RawReply, SimpleString, type ReplyValue } from "../../resp/encode.ts";
import { movableKeyIndexes } from "../keys.ts";
import type { BusyContext, BusyHandler } from "./handler.ts";
import type { EmulatedName } from "./emulate-commands.ts";
import { groupBySlot, partFailure, type Part } from "./fan-out.ts";
import { arrayItems, isErrorReply, isNullReply, sendRaw, tempKey } from "./emulate-io.ts";

type Args = (Buffer | string)[];

/**
 * What to run on the source's slot once the command ran, given its reply and the source's DUMP
 * as it was read; null: nothing moved.
 */
type SourceUpdate = (argv: Buffer[], reply: RespValue, sourceDump: Buffer) => Args | null;

/**
 * Runs a command on its anchor key's slot with every key of another slot copied in (see the
 * file comment). `anchor` is the anchor's position among the command's keys, or "last": the
 * key given last (SORT's and GEORADIUS's STORE destinations, where the last one wins).
 */
function onAnchorSlot(anchor: number | "last", updateSource?: SourceUpdate): BusyHandler {
  return async (argv, context) => {
    const name = argv[0]!.toString("latin1").toUpperCase();
    const positions = keyPositions(name.toLowerCase(), argv);
    const anchorSlot = keySlot(argv[anchor === "last" ? Math.max(...positions) : positions[anchor]!]!);
    // One temporary key per distinct key of another slot, wherever it appears.
    const temps = new Map<string, { key: Buffer; temp: string }>();
    for (const position of positions) {
      const key = argv[position]!;
      if (keySlot(key) !== anchorSlot && !temps.has(key.toString("latin1")))
        temps.set(key.toString("latin1"), { key, temp: tempKey(anchorSlot) });
    }
    const sources = [...temps.values()];
    const reads: Part[] = sources.map(({ key }) => ({
      slot: keySlot(key),
      args: ["DUMP", key],
      atomicWith: [["PEXPIRETIME", key]],
      readonly: true,
    }));
    const snapshots = await context.fanOut.run(reads);
    const failed = partFailure(name, reads, snapshots);
    if (failed) return failed;

    const block: Args[] = [];
    let sourceDump: Buffer = EMPTY;
    for (let i = 0; i < sources.length; i++) {
      const snapshot = snapshots[i];
      if (!Array.isArray(snapshot) || snapshot.length !== 2) return unexpected(name, reads[i]!);
      const [payload, expiresAt] = snapshot;
      if (payload === null) continue; // absent: the temporary key stays absent too
      if (!Buffer.isBuffer(payload) || typeof expiresAt !== "number") return unexpected(name, reads[i]!);
      if (sources[i]!.key.equals(argv[positions[0]!]!)) sourceDump = payload;
      block.push(
        expiresAt > 0
          ? ["RESTORE", sources[i]!.temp, String(expiresAt), payload, "REPLACE", "ABSTTL"]
          : ["RESTORE", sources[i]!.temp, "0", payload, "REPLACE"],
      );
    }
    const command: Args = argv.slice();
    for (const position of positions) {
      const source = temps.get(argv[position]!.toString("latin1"));
      if (source !== undefined) command[position] = source.temp;
    }
    const update = updateSource && ((reply: RespValue) => updateSource(argv, reply, sourceDump));
    const temporary = sources.map((s) => s.temp);
    return runThere(
      name,
      context,
      anchorSlot,
      block,
      command,
      temporary,
      keySlot(argv[positions[0]!]!),
      update,
    );
  };
}

/**
 * Runs `setup` (filling the temporary keys), the command and the temporary keys' DEL in one
 * MULTI ... EXEC on `slot`, then, if `update` says so for the command's reply, the update on
 * the source's slot. Answers the command's reply as it came, or the error that stopped it.
 */
async function runThere(
  name: string,
  context: BusyContext,
  slot: number,
  setup: Args[],
  command: Args,
  temporary: string[],
  sourceSlot: number,
  update: ((reply: RespValue) => Args | null) | undefined,
): Promise<ReplyValue> {
  const block = [...setup, command, ...(temporary.length > 0 ? [["DEL", ...temporary]] : [])];
  const exec = await sendRaw(context.fanOut, slot, block, context.protocol, true);
  const items = arrayItems(exec);
  if (items === null || items.length !== block.length) return blockFailed(name, slot, exec);
  for (let i = 0; i < setup.length; i++) {
    if (isErrorReply(items[i]!)) return blockFailed(name, slot, items[i]!);
  }
  const reply = items[setup.length]!;
  const then = update?.(decodeReply(reply)) ?? null;
  if (then === null) return new RawReply(reply);
  const [updated] = await context.fanOut.run([{ slot: sourceSlot, args: then, readonly: false }]);
  if (updated instanceof ErrorReply) {
    return new ErrorReply(ProxyErrors.emulatedSourceNotUpdated(name, sourceSlot, updated.message));
  }
  return new RawReply(reply);
}

/**
 * SMOVE, LMOVE and RPOPLPUSH move one member or element, so rather than the whole source (a
 * queue's list may be long) its slot gives, in one MULTI, its type and what would move
 * (`probe`: SISMEMBER, LINDEX). The temporary key is then a one-member set or one-element list
 * made by `fill`, or a string when the source is of another type (Redis still answers
 * WRONGTYPE), or absent with the source; the command runs on it, and the source loses what moved.
 */
function moveOne(
  type: "set" | "list",
  probe: (argv: Buffer[]) => Args,
  fill: (argv: Buffer[], temp: string, probed: RespValue) => Args | null,
  updateSource: (argv: Buffer[], reply: RespValue) => Args | null,
): BusyHandler {
  return async (argv, context) => {
    const name = argv[0]!.toString("latin1").toUpperCase();
    const [source, destination] = [argv[1]!, argv[2]!];
    const slot = keySlot(destination);
    const read: Part = {
      slot: keySlot(source),
      args: ["TYPE", source],
      atomicWith: [probe(argv)],
      readonly: true,
    };
    const [snapshot] = await context.fanOut.run([read]);
    const failed = partFailure(name, [read], [snapshot!]);
    if (failed) return failed;
    if (!Array.isArray(snapshot) || !(snapshot[0] instanceof SimpleString)) return unexpected(name, read);
    const temp = tempKey(slot);
    const sourceType = snapshot[0].value;
    const setup: Args[] = [];
    if (sourceType === type) {
      const filled = fill(argv, temp, snapshot[1]!);
      if (filled === null) return unexpected(name, read);
      setup.push(filled);
    } else if (sourceType !== "none") setup.push(["SET", temp, ""]);
    const command: Args = [argv[0]!, temp, ...argv.slice(2)];
    return runThere(name, context, slot, setup, command, [temp], read.slot, (reply) =>
      updateSource(argv, reply),
    );
  };
}

/** LINDEX's index for the end LMOVE takes from (an invalid word: Redis refuses the command anyway). */
const endIndex = (end: Buffer) => (end.toString("latin1").toUpperCase() === "RIGHT" ? "-1" : "0");

const oneElement = (_argv: Buffer[], temp: string, element: RespValue): Args | null =>
  Buffer.isBuffer(element) ? ["RPUSH", temp, element] : null;

/**
 * Where the command's keys are. A numkeys past the arguments names positions that are not there:
 * those are left out, and Redis answers the command's own error for it.
 */
function keyPositions(name: string, argv: Buffer[]): number[] {
  return movableKeyIndexes(name, argv).filter((position) => position < argv.length);
}

function unexpected(command: string, part: Part): ErrorReply {
  return new ErrorReply(ProxyErrors.unexpectedFromSlot(command, part.slot));
}

function blockFailed(command: string, slot: number, reply: Buffer): ErrorReply {
  const text = isErrorReply(reply) ? reply.toString("latin1", 1).split("\r\n", 1)[0]! : "unexpected reply";
  return new ErrorReply(ProxyErrors.failedOnSlot(command, slot, "", text));
}

const isOk = (reply: RespValue) => reply instanceof SimpleString && reply.value === "OK";

const EMPTY = Buffer.alloc(0);
const X = Buffer.from("x");

/**
 * Deletes the key only if it still holds the value that was read (its DUMP is the same): a
 * write to the source after the read survives there rather than being deleted with it.
 */
const DELETE_IF_UNCHANGED =
  "if redis.call('DUMP', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

const deleteIfUnchanged = (argv: Buffer[], dump: Buffer): Args => [
  "EVAL",
  DELETE_IF_UNCHANGED,
  "1",
  argv[1]!,
  dump,
];

/**
 * Removes the moved element from the source's end it left (LREM from the head for LEFT, from the
 * tail for RIGHT): with no writer in between that is the end element, as the pop would have
 * taken; with one, an element pushed meanwhile is not lost.
 */
const removeMoved = (argv: Buffer[], element: Buffer, from: "LEFT" | "RIGHT"): Args => [
  "LREM",
  argv[1]!,
  from === "LEFT" ? "1" : "-1",
  element,
];

/**
 * LMPOP / ZMPOP numkeys key [key ...] <options>: the first key that has something, in order,
 * popped with the same options, as Redis walks them (a key of the wrong type before it answers
 * WRONGTYPE). Redis first checks the options, on the command with every key replaced by one
 * absent key of the first key's slot.
 */
const popFirst: BusyHandler = async (argv, context) => {
  const name = argv[0]!.toString("latin1").toLowerCase();
  const positions = keyPositions(name, argv);
  const firstSlot = keySlot(argv[positions[0]!]!);
  const absent = tempKey(firstSlot);
  const probe: Args = argv.slice();
  for (const position of positions) probe[position] = absent;
  const checked = await sendRaw(context.fanOut, firstSlot, [probe], context.protocol, false);
  if (!isNullReply(checked)) return new RawReply(checked);
  const options = argv.slice(positions.at(-1)! + 1);
  let reply = checked;
  for (const position of positions) {
    const key = argv[position]!;
    reply = await sendRaw(
      context.fanOut,
      keySlot(key),
      [[argv[0]!, "1", key, ...options]],
      context.protocol,
      false,
    );
    if (!isNullReply(reply)) break;
  }
  return new RawReply(reply);
};

/**
 * MSETNX key value [key value ...]: each slot's pairs with MSETNX on that slot; when some slot
 * had a key already (its MSETNX answered 0), the slots that did set theirs delete them again.
 */
async function msetnx(argv: Buffer[], { fanOut }: BusyContext): Promise<ReplyValue> {
  if (argv.length % 2 === 0) return new ErrorReply(RedisErrors.wrongArity("msetnx"));
  const keys = argv.filter((_, i) => i % 2 === 1);
  const parts: Part[] = groupBySlot(keys).map((group) => ({
    slot: group.slot,
    args: ["MSETNX", ...group.indexes.flatMap((i) => [argv[1 + i * 2]!, argv[2 + i * 2]!])],
    readonly: false,
  }));
  const results = await fanOut.run(parts);
  const failed = partFailure("MSETNX", parts, results);
  if (failed) return failed;
  if (results.every((result) => result === 1)) return 1;
  const undo: Part[] = [];
  parts.forEach((part, i) => {
    if (results[i] === 1) {
      const setKeys = part.args.filter((_, a) => a % 2 === 1);
      undo.push({ slot: part.slot, args: ["DEL", ...setKeys], readonly: false });
    }
  });
  const undone = await fanOut.run(undo);
  return partFailure("MSETNX", undo, undone) ?? 0;
}

const ANCHOR_FIRST = onAnchorSlot(0);
const ANCHOR_SECOND = onAnchorSlot(1);
const ANCHOR_LAST = onAnchorSlot("last");

export const EMULATED_HANDLERS: Readonly<Record<EmulatedName, BusyHandler>> = {
  rename: onAnchorSlot(1, (argv, reply, dump) => (isOk(reply) ? deleteIfUnchanged(argv, dump) : null)),
  renamenx: onAnchorSlot(1, (argv, reply, dump) => (reply === 1 ? deleteIfUnchanged(argv, dump) : null)),
  smove: moveOne(
    "set",
    (argv) => ["SISMEMBER", argv[1]!, argv[3]!],
    // Not a member: a set without it (the member with a byte more), so SMOVE answers 0 as on the source.
    (argv, temp, isMember) => ["SADD", temp, isMember === 1 ? argv[3]! : Buffer.concat([argv[3]!, X])],
    (argv, reply) => (reply === 1 ? ["SREM", argv[1]!, argv[3]!] : null),
  ),
  lmove: moveOne(
    "list",
    (argv) => ["LINDEX", argv[1]!, endIndex(argv[3]!)],
    oneElement,
    (argv, reply) =>
      Buffer.isBuffer(reply)
        ? removeMoved(argv, reply, argv[3]!.toString("latin1").toUpperCase() === "LEFT" ? "LEFT" : "RIGHT")
        : null,
  ),
  rpoplpush: moveOne(
    "list",
    (argv) => ["LINDEX", argv[1]!, "-1"],
    oneElement,
    (argv, reply) => (Buffer.isBuffer(reply) ? removeMoved(argv, reply, "RIGHT") : null),
  ),
  copy: ANCHOR_SECOND,
  sunionstore: ANCHOR_FIRST,
  sinterstore: ANCHOR_FIRST,
  sdiffstore: ANCHOR_FIRST,
  zunionstore: ANCHOR_FIRST,
  zinterstore: ANCHOR_FIRST,
  zdiffstore: ANCHOR_FIRST,
  zrangestore: ANCHOR_FIRST,
  geosearchstore: ANCHOR_FIRST,
  bitop: ANCHOR_FIRST,
  pfmerge: ANCHOR_FIRST,
  lcs: ANCHOR_FIRST,
  zintercard: ANCHOR_FIRST,
  sort: ANCHOR_LAST,
  georadius: ANCHOR_LAST,
  georadiusbymember: ANCHOR_LAST,
  msetnx,
  lmpop: popFirst,
  zmpop: popFirst,
};

export const EMULATED_BUSY_COMMANDS: ReadonlyMap<string, BusyHandler> = new Map(
  Object.entries(EMULATED_HANDLERS),
);
