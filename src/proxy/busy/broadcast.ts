/**
 * Running one keyless command on every master and reading the replies side by side.
 *
 * Each master is reached through a slot it serves (its first), not by its address: if it fails
 * over while the command is on its way, the router parks the part and sends it to the replica
 * that took the slot over, exactly as it does for a keyed command.
 */
import { ProxyErrors } from "../../errors.ts";
import { ErrorReply, MapReply, SetReply, type ReplyValue } from "../../resp/encode.ts";
import { RespMap, RespSet, type RespValue } from "../../resp/decode.ts";
import type { NodeInfo } from "../../cluster/slot-map.ts";
import type { ClusterRouter } from "../router.ts";
import type { FanOut, Part } from "./fan-out.ts";

export interface Master {
  address: string;
  /** A slot the master serves, by which its part is routed. */
  slot: number;
}

/** The masters that serve slots now, each with its first slot. */
export function mastersOf(router: ClusterRouter): Master[] {
  const map = router.map;
  if (map === null) return [];
  const first = new Map<number, number>();
  for (let slot = 0; slot < map.owner.length; slot++) {
    const index = map.owner[slot]!;
    if (index >= 0 && !first.has(index)) first.set(index, slot);
  }
  return [...first].map(([index, slot]) => ({ address: map.masters[index]!, slot }));
}

export interface Broadcast {
  masters: Master[];
  results: RespValue[];
}

export interface BroadcastOptions {
  readonly: boolean;
  /** Each part on a connection of its own (a blocking command such as WAIT). */
  dedicated?: boolean;
}

/**
 * Sends `args` to every master at once; resolves with the replies in master order. The map is
 * read first: the busy proxy sees none of the MOVED the workers follow, so after a scale its map
 * could lack a new master until the next timed refresh (DBSIZE would not count it, SCRIPT LOAD
 * not reach it). One map read per cluster-wide command; concurrent ones share it.
 */
export async function broadcast(
  fanOut: FanOut,
  args: (Buffer | string)[],
  options: BroadcastOptions,
): Promise<Broadcast | ErrorReply> {
  await fanOut.router.refresh();
  const masters = mastersOf(fanOut.router);
  if (masters.length === 0) return new ErrorReply(ProxyErrors.noMasterKnown);
  const parts: Part[] = masters.map((m) => ({
    slot: m.slot,
    args,
    readonly: options.readonly,
    dedicated: options.dedicated ?? false,
  }));
  return { masters, results: await fanOut.run(parts) };
}

/** Every node the slot map knows of, masters and replicas, each shard's master first (map read first, as above). */
export async function nodesOf(router: ClusterRouter): Promise<NodeInfo[]> {
  await router.refresh();
  return router.map?.nodes ?? [];
}

/** Sends `args` to each of `nodes` by address (replicas too); resolves with the replies in node order. */
export function onNodes(
  fanOut: FanOut,
  nodes: readonly NodeInfo[],
  args: (Buffer | string)[],
  readonly: boolean,
): Promise<RespValue[]> {
  return fanOut.run(nodes.map((n) => ({ slot: -1, target: n.address, args, readonly })));
}

/**
 * The error to answer when a master failed, or null when none did. When every master failed
 * alike (a script that does not compile, a bad argument), that is Redis's own answer: it is
 * passed on as is. Otherwise the error names the shard that failed.
 */
export function shardFailure(command: string, { masters, results }: Broadcast): ErrorReply | null {
  const errors = results.filter((r): r is ErrorReply => r instanceof ErrorReply);
  if (errors.length === 0) return null;
  if (errors.length === results.length && errors.every((e) => e.message === errors[0]!.message))
    return errors[0]!;
  const index = results.findIndex((r) => r instanceof ErrorReply);
  return new ErrorReply(
    ProxyErrors.failedOnShard(command, masters[index]!.address, (results[index] as ErrorReply).message),
  );
}

/** The same command gave different answers on different masters, where they must agree. */
export function disagreement(command: string, { masters, results }: Broadcast): ErrorReply {
  const shown = results.map((r, i) => `${masters[i]!.address}=${describe(r)}`).join(", ");
  return new ErrorReply(ProxyErrors.shardsDisagree(command, shown));
}

function describe(value: RespValue): string {
  if (Buffer.isBuffer(value)) return value.toString("latin1").slice(0, 64);
  if (value instanceof ErrorReply) return value.message;
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
}

/** A decoded shard reply as a value to send on (parts speak RESP2, so this is near identity). */
export function toReply(value: RespValue): ReplyValue {
  if (value === null || typeof value === "number" || Buffer.isBuffer(value)) return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "bigint") return String(value);
  if (Array.isArray(value)) return value.map(toReply);
  if (value instanceof RespMap) return new MapReply(value.entries.map(([k, v]) => [toReply(k), toReply(v)]));
  if (value instanceof RespSet) return new SetReply(value.items.map(toReply));
  return value;
}

/** Integer replies summed; null when one is not an integer. */
export function sum(results: readonly RespValue[]): number | null {
  let total = 0;
  for (const r of results) {
    if (typeof r !== "number") return null;
    total += r;
  }
  return total;
}

/** All bulk strings of array replies, each once (keys may sit on two nodes while their slot moves). */
export function union(results: readonly RespValue[]): Buffer[] | null {
  const seen = new Map<string, Buffer>();
  for (const r of results) {
    if (!Array.isArray(r)) return null;
    for (const item of r) if (Buffer.isBuffer(item)) seen.set(item.toString("latin1"), item);
  }
  return [...seen.values()];
}
