/**
 * SCAN across the cluster, with a cursor that tracks slots rather than nodes.
 *
 * ## Cursor
 *
 * `cursor = from * 16384 + slot`: the scan resumes at `slot`, with the keys of that slot whose
 * 32-bit hash (CRC-32 of the key's bytes) is at least `from`. A new scan (cursor 0) starts at slot
 * 0 with every key; the cursor returned after slot 16383 is 0. The largest cursor is below 2^46,
 * so it is exact as a JavaScript number and as a signed 64-bit integer in any client.
 *
 * ## One call
 *
 * Slots are read in order, in rounds of a few hundred (sized from the key density seen so far),
 * until about COUNT keys are in hand. Each slot's keys are read whole with `CLUSTER GETKEYSINSLOT`
 * (Redis has no cursor within a slot); a slot is returned whole unless it holds more than
 * `LARGE_SLOT` keys, in which case its keys are ordered by hash and returned in pieces of
 * max(COUNT, LARGE_SLOT) keys, the cursor's `from` remembering where the next piece starts. Then
 * MATCH filters the keys here (with Redis's own glob rules) and TYPE asks each key's shard, so, as
 * in Redis, COUNT counts keys visited, not keys returned.
 *
 * ## Reading a slot: an atomic snapshot, then follow the keys
 *
 * A slot is read from the node the slot map names, in one `MULTI; CLUSTER NODES; CLUSTER
 * GETKEYSINSLOT slot ...; EXEC` block: the keys and that node's own view of the slot (owner,
 * MIGRATING) come from the same instant. Then, by that view:
 * - the node owns the slot and is not migrating it: no other node can hold a key of it (keys of a
 *   slot only leave its owner by MIGRATE while the slot is MIGRATING), so the slot is complete;
 * - it owns the slot and is migrating it to T: keys gone before the snapshot are on T, so T is read
 *   the same way, strictly after;
 * - it does not own the slot (the map was stale, or the slot finished moving): the owner it names
 *   is read the same way, strictly after (a node cannot hand a slot over while it still holds keys).
 * Keys of every read are kept (de-duplicated). A node that cannot be reached (a failed master) is
 * retried through the slot map until a master serves the slot again: its replica after failover.
 *
 * ## Guarantee
 *
 * Every key that exists from the start to the end of a full scan is returned at least once, while
 * slots migrate (by the standard IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE protocol) and while
 * masters fail over; a key may be returned more than once only if it is in a slot that was being
 * migrated while the scan passed it. A failover loses the writes its replica had not yet received
 * (Redis replication is asynchronous): such keys no longer exist, so they are not returned. Keys
 * added or deleted during the scan may or may not be returned, as in Redis. The cost of a slot
 * larger than LARGE_SLOT is reading the whole slot once per piece.
 */
import { crc32 } from "node:zlib";
import { ProxyErrors, RedisErrors } from "../../errors.ts";
import { keySlot, SLOT_COUNT } from "../../cluster/key-slot.ts";
import { ErrorReply, SimpleString, type ReplyValue } from "../../resp/encode.ts";
import type { RespValue } from "../../resp/decode.ts";
import { parseInteger } from "../../resp/request-parser.ts";
import type { BusyHandler } from "./handler.ts";
import type { FanOut, Part } from "./fan-out.ts";
import { globMatch } from "./glob.ts";

const HASH_SPACE = 2 ** 32;
/** Slots with more keys than this are returned in pieces ordered by key hash. */
export const LARGE_SLOT = 1000;
/** Bounds of one round of slot reads. */
const MIN_ROUND = 16;
const MAX_ROUND = 1024;
/** How often a slot is followed to another node within one read (a move, then a failover...). */
const MAX_HOPS = 8;
/** How long one SCAN call keeps retrying a slot that no reachable node serves. */
const SLOT_READ_BUDGET_MS = 30_000;
const ALL_KEYS = "2147483647";

export interface ScanCursor {
  slot: number;
  /** Keys of `slot` with a hash below this were returned already. */
  from: number;
}

export function encodeCursor({ slot, from }: ScanCursor): string {
  return String(from * SLOT_COUNT + slot);
}

/** Reads a cursor; null when it is not one this proxy hands out. */
export function decodeCursor(text: string): ScanCursor | null {
  if (!/^\d{1,16}$/.test(text)) return null;
  const value = Number(text);
  if (value >= HASH_SPACE * SLOT_COUNT) return null;
  return { slot: value % SLOT_COUNT, from: Math.floor(value / SLOT_COUNT) };
}

/** The position of a key within its slot's pieces. */
export function keyHash(key: Buffer): number {
  return crc32(key);
}

interface Options {
  cursor: ScanCursor;
  count: number;
  match: Buffer | null;
  type: string | null;
}

/** SCAN cursor [MATCH pattern] [COUNT count] [TYPE type], options checked as Redis 7.0 checks them. */
function parseOptions(argv: Buffer[]): Options | ErrorReply {
  const cursor = decodeCursor(argv[1]!.toString("latin1"));
  if (cursor === null) return new ErrorReply(RedisErrors.invalidCursor);
  const options: Options = { cursor, count: 10, match: null, type: null };
  for (let i = 2; i < argv.length; i += 2) {
    const option = argv[i]!.toString("latin1").toLowerCase();
    if (i + 1 >= argv.length) return new ErrorReply(RedisErrors.syntax);
    const value = argv[i + 1]!;
    if (option === "count") {
      const count = parseInteger(value, 0, value.length);
      if (count === null) return new ErrorReply(RedisErrors.notInteger);
      if (count < 1) return new ErrorReply(RedisErrors.syntax);
      options.count = count;
    } else if (option === "match") {
      options.match = value.length === 1 && value[0] === 42 ? null : value;
    } else if (option === "type") {
      options.type = value.toString("latin1").toLowerCase();
    } else {
      return new ErrorReply(RedisErrors.syntax);
    }
  }
  return options;
}

export const scan: BusyHandler = async (argv, { fanOut }) => {
  const options = parseOptions(argv);
  if (options instanceof ErrorReply) return options;
  const visited = await visit(fanOut, options.cursor, options.count);
  if (visited instanceof ErrorReply) return visited;
  let keys = visited.keys;
  if (options.match !== null) keys = keys.filter((key) => globMatch(options.match!, key));
  if (options.type !== null && keys.length > 0) {
    const types = await fanOut.run(
      keys.map((key): Part => ({ slot: keySlot(key), args: ["TYPE", key], readonly: true })),
    );
    keys = keys.filter((_, i) => {
      const type = types[i];
      return type instanceof SimpleString && type.value === options.type;
    });
  }
  const next = visited.next === null ? "0" : encodeCursor(visited.next);
  return [next, keys] as ReplyValue;
};

/** Visits slots from `cursor` until about `count` keys are in hand; `next` is null after the last slot. */
async function visit(
  fanOut: FanOut,
  cursor: ScanCursor,
  count: number,
): Promise<{ keys: Buffer[]; next: ScanCursor | null } | ErrorReply> {
  const keys: Buffer[] = [];
  let { slot, from } = cursor;
  let slotsRead = 0;
  let round = MIN_ROUND;
  while (slot < SLOT_COUNT) {
    const slots: number[] = [];
    for (let s = slot; s < Math.min(SLOT_COUNT, slot + round); s++) slots.push(s);
    const read = await readSlots(fanOut, slots);
    if (read instanceof ErrorReply) return read;
    for (const s of slots) {
      let slotKeys = read.get(s)!;
      if (from > 0) slotKeys = slotKeys.filter((key) => keyHash(key) >= from);
      if (slotKeys.length <= LARGE_SLOT || keys.length + slotKeys.length <= count) {
        keys.push(...slotKeys);
        slot = s + 1;
        from = 0;
      } else if (keys.length > 0) {
        // A large slot starts the next call, which returns it in pieces.
        return { keys, next: { slot: s, from } };
      } else {
        const piece = takePiece(slotKeys, Math.max(count, LARGE_SLOT));
        keys.push(...piece.keys);
        return { keys, next: piece.nextFrom >= HASH_SPACE ? next(s + 1) : { slot: s, from: piece.nextFrom } };
      }
      if (keys.length >= count) return { keys, next: next(slot) };
    }
    slotsRead += slots.length;
    // Enough slots to find the missing keys at the density seen so far, with a margin.
    const density = keys.length / slotsRead;
    const wanted = density === 0 ? round * 2 : Math.ceil(((count - keys.length) / density) * 1.25);
    round = Math.min(MAX_ROUND, Math.max(MIN_ROUND, wanted));
  }
  return { keys, next: null };
}

function next(slot: number): ScanCursor | null {
  return slot >= SLOT_COUNT ? null : { slot, from: 0 };
}

/** The first `size` keys by hash, extended over keys of equal hash (so a piece never splits a hash). */
function takePiece(keys: Buffer[], size: number): { keys: Buffer[]; nextFrom: number } {
  const hashed = keys.map((key) => ({ key, hash: keyHash(key) })).sort((a, b) => a.hash - b.hash);
  let end = Math.min(size, hashed.length);
  while (end < hashed.length && hashed[end]!.hash === hashed[end - 1]!.hash) end++;
  const nextFrom = end === hashed.length ? HASH_SPACE : hashed[end - 1]!.hash + 1;
  return { keys: hashed.slice(0, end).map((h) => h.key), nextFrom };
}

/** What one node said about one slot in its snapshot. */
interface SlotView {
  keys: RespValue;
  /** The node owns the slot and is not migrating it. */
  complete: boolean;
  /** Where to read next: the migration target or the owner the node names; undefined: ask the slot map. */
  follow: string | undefined;
  /** The next read is of the target of a migration whose source this snapshot was. */
  toTarget: boolean;
}

/** Where a slot is read next. */
interface Hop {
  /** The node, or undefined for the slot's owner by the slot map. */
  node: string | undefined;
  /** This node is the target of a migration whose source was read (strictly) before. */
  afterSource: boolean;
}

/**
 * Every key of each slot (see "Reading a slot" above), de-duplicated. Slots are read together, one
 * MULTI block per node; a slot that must be followed joins the next round's blocks.
 */
async function readSlots(fanOut: FanOut, slots: number[]): Promise<Map<number, Buffer[]> | ErrorReply> {
  const found = new Map<number, Map<string, Buffer>>(slots.map((s) => [s, new Map()]));
  const hops = new Map<number, number>();
  const deadline = Date.now() + SLOT_READ_BUDGET_MS;
  const fromMap: Hop = { node: undefined, afterSource: false };
  let pending = new Map<number, Hop>(slots.map((s) => [s, fromMap]));
  while (pending.size > 0) {
    // One block per node, and per kind of hop (a snapshot is judged by how it was reached).
    const groups = new Map<string, { node: string; hop: Hop; slots: number[] }>();
    for (const [slot, hop] of pending) {
      const node = hop.node ?? fanOut.router.masterFor(slot) ?? `slot ${slot}`;
      const key = `${hop.node === undefined}|${hop.afterSource}|${node}`;
      const group = groups.get(key) ?? { node, hop, slots: [] };
      group.slots.push(slot);
      groups.set(key, group);
    }
    const entries = [...groups.values()];
    const parts: Part[] = entries.map(({ hop, slots: group }) => {
      const part: Part = {
        slot: group[0]!,
        args: ["CLUSTER", "NODES"],
        atomicWith: group.map((s) => ["CLUSTER", "GETKEYSINSLOT", String(s), ALL_KEYS]),
        readonly: true,
      };
      // Follow-ups go to the node named; first reads go by the slot map, so a failover re-routes them.
      if (hop.node !== undefined) part.target = hop.node;
      return part;
    });
    const results = await fanOut.run(parts);
    const retry = new Map<number, Hop>();
    let failure: string | null = null;
    entries.forEach(({ node, hop, slots: group }, p) => {
      const views = readSnapshot(results[p]!, group, fanOut, hop.afterSource);
      group.forEach((slot, i) => {
        const view = views instanceof ErrorReply ? views : views[i]!;
        if (view instanceof ErrorReply) {
          failure = `${node}: ${view.message}`;
          retry.set(slot, fromMap);
          return;
        }
        const keys = found.get(slot)!;
        if (Array.isArray(view.keys))
          for (const key of view.keys) if (Buffer.isBuffer(key)) keys.set(key.toString("latin1"), key);
        if (!view.complete) retry.set(slot, { node: view.follow, afterSource: view.toTarget });
      });
    });
    for (const slot of retry.keys()) {
      const count = (hops.get(slot) ?? 0) + 1;
      hops.set(slot, count);
      // Moves faster than the reads: start over from the slot map (always sound, see above).
      if (count > MAX_HOPS) retry.set(slot, fromMap);
    }
    if (retry.size > 0) {
      if (Date.now() >= deadline) {
        const slot = retry.keys().next().value!;
        return new ErrorReply(ProxyErrors.scanSlotUnreadable(slot, failure));
      }
      // Something moved or failed: let the slot map catch up before reading again.
      if (failure !== null || [...retry.values()].some((hop) => hop.node === undefined)) {
        await fanOut.router.refresh();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    pending = retry;
  }
  return new Map([...found].map(([slot, keys]) => [slot, [...keys.values()]]));
}

/** Reads an EXEC reply [CLUSTER NODES text, keys of slot 1, keys of slot 2, ...]. */
function readSnapshot(
  reply: RespValue,
  slots: number[],
  fanOut: FanOut,
  afterSource: boolean,
): SlotView[] | ErrorReply {
  if (reply instanceof ErrorReply) return reply;
  if (!Array.isArray(reply) || reply.length !== slots.length + 1 || !Buffer.isBuffer(reply[0]))
    return new ErrorReply(ProxyErrors.unexpectedSlotRead);
  const view = parseNodes(reply[0].toString("latin1"));
  const addressOf = (id: string | undefined): string | undefined => {
    if (id === undefined) return undefined;
    return fanOut.router.map?.nodes.find((n) => n.id === id)?.address ?? view.addresses.get(id);
  };
  return slots.map((slot, i) => {
    const keys = reply[i + 1]!;
    const none = { complete: false, follow: undefined, toTarget: false };
    if (keys instanceof ErrorReply) return { keys: [], ...none };
    // The target of a migration whose source was read before: it holds every key that left the source.
    if (afterSource && view.importing.has(slot)) return { keys, ...none, complete: true };
    const owner = view.owner.get(slot);
    if (owner === view.myself) {
      const migratingTo = view.migrating.get(slot);
      if (migratingTo === undefined) return { keys, ...none, complete: true };
      return { keys, complete: false, follow: addressOf(migratingTo), toTarget: true };
    }
    return { keys, ...none, follow: addressOf(owner) };
  });
}

interface NodesView {
  myself: string;
  /** Slot to the id of the node that owns it, in this node's view (only slots that are owned). */
  owner: Map<number, string>;
  /** Slots this node is migrating, to the target's id. */
  migrating: Map<number, string>;
  /** Slots this node is importing. */
  importing: Set<number>;
  /** Node id to "ip:port" as CLUSTER NODES shows it (when the slot map does not know the node). */
  addresses: Map<string, string>;
}

/** Parses CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <master> ... <slot> <slot> ...`. */
export function parseNodes(text: string): NodesView {
  const view: NodesView = {
    myself: "",
    owner: new Map(),
    migrating: new Map(),
    importing: new Set(),
    addresses: new Map(),
  };
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    if (fields.length < 8) continue;
    const [id, address, flags] = fields as [string, string, string];
    view.addresses.set(id, address.split("@")[0]!);
    if (flags.includes("myself")) view.myself = id;
    // A failed master still lists its slots; they are not served, so nothing is taken from it.
    if (flags.includes("fail") && !flags.includes("pfail")) continue;
    for (const range of fields.slice(8)) {
      if (range.startsWith("[")) {
        const migrating = /^\[(\d+)->-(\w+)\]$/.exec(range);
        if (migrating) view.migrating.set(Number(migrating[1]), migrating[2]!);
        const importing = /^\[(\d+)-<-(\w+)\]$/.exec(range);
        if (importing) view.importing.add(Number(importing[1]));
        continue;
      }
      const [first, last = first] = range.split("-").map(Number) as [number, number?];
      for (let s = first; s <= last!; s++) view.owner.set(s, id);
    }
  }
  return view;
}
