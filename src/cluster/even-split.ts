/**
 * The even split of the hash slots over a cluster's shards: one function for the real planner
 * (`dredis cluster create/apply/rebalance`) and the deploy-time forecast the Pulumi components log,
 * so the number a deploy announces is the number that moves.
 */
import { SLOT_COUNT } from "./key-slot.ts";

/**
 * Slot counts per target: SLOT_COUNT / n each, the remainder (one more slot each) going to the
 * targets that own the most now, ties in target order; so an already even cluster moves nothing
 * and a fresh one gives the remainder to its first shards. Only the count of `current`'s slots
 * matters. E.g. 3 -> 5 shards: 3277, 3277, 3277, 3277, 3276, so 6553 slots move to the new two.
 */
export function evenQuotas(
  targets: readonly string[],
  current: ReadonlyMap<string, { readonly length: number }> = new Map(),
): Map<string, number> {
  const base = Math.floor(SLOT_COUNT / targets.length);
  let extra = SLOT_COUNT % targets.length;
  const byCount = targets
    .map((name, order) => ({ name, order, owned: current.get(name)?.length ?? 0 }))
    .sort((a, b) => b.owned - a.owned || a.order - b.order);
  const quotas = new Map(targets.map((name) => [name, base]));
  for (const { name } of byCount) {
    if (extra === 0) break;
    quotas.set(name, base + 1);
    extra--;
  }
  return quotas;
}
