/**
 * The atomic multi-key commands the busy proxy emulates across slots when the proxy config says
 * `crossSlot: emulate` (./emulate.ts runs them), each with the guarantee of a standalone Redis it
 * loses there. The worker reads this list to route them (../client.ts); the command support table
 * (docs/commands.md) prints the guarantees. Imports nothing, so either side may import it.
 */

/** What an emulated command gives up against a standalone Redis (or a same-slot call). */
export const EMULATED_COMMANDS = {
  rename:
    "not atomic across keys: the destination is written, then the source deleted if unchanged since it was read (a write in between stays in the source)",
  renamenx:
    "not atomic across keys: the destination is written, then the source deleted if unchanged since it was read (a write in between stays in the source)",
  smove:
    "not atomic across keys: the member is added to the destination, then removed from the source; concurrent readers may see it in both",
  lmove:
    "not atomic across keys: the element is pushed to the destination, then removed from the source's end (LREM); concurrent readers may see it in both",
  rpoplpush:
    "not atomic across keys: the element is pushed to the destination, then removed from the source's tail (LREM); concurrent readers may see it in both",
  copy: "no isolation: the source is read before the destination is written, so a concurrent write to the source may be missed",
  sunionstore: "no isolation: sources on other slots are read before the destination is written",
  sinterstore: "no isolation: sources on other slots are read before the destination is written",
  sdiffstore: "no isolation: sources on other slots are read before the destination is written",
  zunionstore: "no isolation: sources on other slots are read before the destination is written",
  zinterstore: "no isolation: sources on other slots are read before the destination is written",
  zdiffstore: "no isolation: sources on other slots are read before the destination is written",
  zrangestore: "no isolation: the source is read before the destination is written",
  geosearchstore: "no isolation: the source is read before the destination is written",
  bitop: "no isolation: sources on other slots are read before the destination is written",
  pfmerge: "no isolation: sources on other slots are read before the destination is written",
  sort: "no isolation: the source is read before the destination (STORE) is written",
  georadius: "no isolation: the source is read before the destination (STORE) is written",
  georadiusbymember: "no isolation: the source is read before the destination (STORE) is written",
  lcs: "no isolation: the keys are read one slot at a time, not as one snapshot",
  zintercard: "no isolation: the keys are read one slot at a time, not as one snapshot",
  msetnx:
    "not atomic across keys: each slot's keys are set on their own, and undone when a key of another slot exists; readers may see them briefly",
  lmpop:
    "no isolation: the keys are tried one at a time, so a push to an earlier key meanwhile may be passed over",
  zmpop:
    "no isolation: the keys are tried one at a time, so an add to an earlier key meanwhile may be passed over",
} as const;

export type EmulatedName = keyof typeof EMULATED_COMMANDS;
export const EMULATED: ReadonlySet<string> = new Set(Object.keys(EMULATED_COMMANDS));

/** The guarantee `name` loses when emulated across slots, or undefined if it is not emulated. */
export function lostGuarantee(name: string): string | undefined {
  return Object.hasOwn(EMULATED_COMMANDS, name) ? EMULATED_COMMANDS[name as EmulatedName] : undefined;
}
