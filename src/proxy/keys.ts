/**
 * Where a command's keys are: the slot they hash to, as the session routes a keyed command or
 * checks a queued or watched one.
 */
import { getKeyIndexes } from "@ioredis/commands";
import { keySlot } from "../cluster/key-slot.ts";
import type { CommandSpec } from "./command-spec.ts";
import type { CommandView } from "./command-view.ts";

/** Marks a command whose keys span slots: it goes to the busy proxy, or gets CROSSSLOT. */
export const SPANS_SLOTS = -2;

/** Slot of a command's keys: -1 when it has none, SPANS_SLOTS when they hash to different slots. */
export function slotOf(spec: CommandSpec, view: CommandView): number {
  const { buf, args } = view;
  let slot = -1;
  if (spec.movableKeys) {
    for (const index of movableKeyIndexes(spec.name, view.argBuffers())) {
      const s = keySlot(buf, args[index * 2]!, args[index * 2 + 1]!);
      if (slot < 0) slot = s;
      else if (s !== slot) return SPANS_SLOTS;
    }
    return slot;
  }
  const last = spec.keyStop < 0 ? view.argc + spec.keyStop : Math.min(spec.keyStop, view.argc - 1);
  for (let i = spec.keyStart; i <= last; i += spec.step) {
    const s = keySlot(buf, args[i * 2]!, args[i * 2 + 1]!);
    if (slot < 0) slot = s;
    else if (s !== slot) return SPANS_SLOTS;
  }
  return slot;
}

/**
 * Key argument indexes of a command whose keys move (EVAL, ZUNIONSTORE, XREAD, SORT...).
 * Rare enough off the hot path to materialise the arguments.
 */
export function movableKeyIndexes(name: string, args: Buffer[]): number[] {
  if (name === "sort") return sortKeyIndexes(args);
  try {
    // getKeyIndexes counts from the first argument after the name.
    return getKeyIndexes(name, args.slice(1)).map((i) => i + 1);
  } catch {
    return [];
  }
}

/**
 * SORT's keys as Redis's sortGetKeys finds them: the key sorted and the last STORE destination.
 * (@ioredis/commands skips Buffer arguments there, so it never saw a STORE; BY and GET patterns
 * are not keys.)
 */
function sortKeyIndexes(args: Buffer[]): number[] {
  let store = -1;
  for (let i = 2; i < args.length; i++) {
    const word = args[i]!.toString("latin1").toLowerCase();
    if (word === "limit") i += 2;
    else if (word === "get" || word === "by") i += 1;
    // As Redis, it reads on from the destination itself (`STORE limit` skips what follows).
    else if (word === "store" && i + 1 < args.length) store = i + 1;
  }
  return store < 0 ? [1] : [1, store];
}

/** XREAD and XREADGROUP block only with a BLOCK option; other blocking commands always may. */
export function blocksForReal(spec: CommandSpec, view: CommandView): boolean {
  if (spec.name !== "xread" && spec.name !== "xreadgroup") return true;
  for (let i = 1; i < view.argc; i++) {
    const word = view.arg(i).toLowerCase();
    if (word === "streams") return false;
    if (word === "block") return true;
  }
  return false;
}
