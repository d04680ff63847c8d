/**
 * The rebalance plan: which slots move from which shard to which, so that every shard of the
 * topology owns an even share (within one slot) and shards outside it own none.
 *
 * Pure and deterministic: the same cluster state always gives the same moves, which is what lets
 * `--dry-run` promise exactly what the run then does. It moves only the surplus (the fewest
 * possible slots) and gives each receiver contiguous runs where it can.
 */
import { evenQuotas } from "../even-split.ts";

// Shared with the deploy-time forecast of the Pulumi components.
export { evenQuotas };

/** One slot to move, with its size measured before moving (see slot-sizes.ts). */
export interface SlotMove {
  slot: number;
  /** Shard name, or "node <id>" for a master the topology does not name. */
  from: string;
  to: string;
  fromAddress: string;
  toAddress: string;
  fromId: string;
  toId: string;
  /** Keys in the slot when planned. */
  keys: number;
  /** Sum of MEMORY USAGE of those keys, in bytes. */
  bytes: number;
}

/** Who owns what now, by owner name, and who should own an even share. */
export interface BalanceInput {
  /** owner name -> slots it owns now (owners outside `targets` are drained). */
  current: ReadonlyMap<string, readonly number[]>;
  /** The shards that should own the slots, in topology order. */
  targets: readonly string[];
}

/** The moves (slot, from, to) that balance `current` over `targets`, in slot order per receiver. */
export function balanceMoves(input: BalanceInput): { slot: number; from: string; to: string }[] {
  const quotas = evenQuotas(input.targets, input.current);
  const donated: { slot: number; from: string }[] = [];
  for (const [owner, slots] of input.current) {
    const keep = quotas.get(owner) ?? 0;
    if (slots.length <= keep) continue;
    // Give away the highest slots: the kept ones stay one contiguous run when they were.
    const sorted = [...slots].sort((a, b) => a - b);
    for (const slot of sorted.slice(keep)) donated.push({ slot, from: owner });
  }
  donated.sort((a, b) => a.slot - b.slot);
  const moves: { slot: number; from: string; to: string }[] = [];
  let next = 0;
  for (const target of input.targets) {
    const deficit = quotas.get(target)! - (input.current.get(target)?.length ?? 0);
    for (let i = 0; i < deficit && next < donated.length; i++, next++) {
      moves.push({ ...donated[next]!, to: target });
    }
  }
  return moves;
}
