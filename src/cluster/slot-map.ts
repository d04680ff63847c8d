/**
 * The cluster's slot map as the proxy sees it: which master serves each of the 16384 slots.
 * Read from `CLUSTER SHARDS` (Redis 7+), or `CLUSTER SLOTS` on servers without it.
 */
import { SLOT_COUNT } from "./key-slot.ts";

export interface NodeInfo {
  id: string;
  /** "host:port" clients connect to: the node's preferred endpoint (hostname or IP). */
  address: string;
  role: "master" | "replica";
  /** "online", "failed" or "loading" (CLUSTER SHARDS health). */
  health: string;
}

export interface ShardInfo {
  /** Slot ranges, inclusive. */
  ranges: [number, number][];
  master: NodeInfo | undefined;
  replicas: NodeInfo[];
}

export class SlotMap {
  /** owner[slot] = index into `masters`, or -1 when no healthy master serves the slot. */
  readonly owner = new Int16Array(SLOT_COUNT).fill(-1);
  readonly masters: string[] = [];

  constructor(readonly shards: ShardInfo[]) {
    for (const shard of shards) {
      if (!shard.master || shard.master.health !== "online" || shard.ranges.length === 0) continue;
      let index = this.masters.indexOf(shard.master.address);
      if (index < 0) index = this.masters.push(shard.master.address) - 1;
      for (const [first, last] of shard.ranges) this.owner.fill(index, first, last + 1);
    }
  }

  /** Address of the master serving `slot`, or undefined when none does. */
  masterFor(slot: number): string | undefined {
    const index = this.owner[slot]!;
    return index < 0 ? undefined : this.masters[index];
  }

  /** Every slot has a healthy master. */
  get complete(): boolean {
    return !this.owner.includes(-1);
  }

  /** Every node the map knows of (masters and replicas). */
  get nodes(): NodeInfo[] {
    return this.shards.flatMap((s) => (s.master ? [s.master, ...s.replicas] : s.replicas));
  }

  /** Points one slot at a master (after MOVED), before the next full refresh confirms it. */
  assign(slot: number, address: string): void {
    let index = this.masters.indexOf(address);
    if (index < 0) index = this.masters.push(address) - 1;
    this.owner[slot] = index;
  }
}

type Flat = unknown[];

function pairs(flat: Flat): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}

function nodeAddress(fields: Map<string, unknown>): string {
  let host = String(fields.get("endpoint") ?? "");
  if (host === "" || host === "?") host = String(fields.get("ip") ?? "");
  const port = Number(fields.get("port") ?? fields.get("tls-port"));
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Builds a slot map from the reply to `CLUSTER SHARDS` (as ioredis returns it: nested arrays). */
export function slotMapFromShards(reply: unknown): SlotMap {
  const shards: ShardInfo[] = [];
  for (const entry of reply as Flat[]) {
    const fields = pairs(entry);
    const slots = (fields.get("slots") as unknown[]).map(Number);
    const ranges: [number, number][] = [];
    for (let i = 0; i + 1 < slots.length; i += 2) ranges.push([slots[i]!, slots[i + 1]!]);
    const shard: ShardInfo = { ranges, master: undefined, replicas: [] };
    for (const raw of fields.get("nodes") as Flat[]) {
      const node = pairs(raw);
      const info: NodeInfo = {
        id: String(node.get("id")),
        address: nodeAddress(node),
        role: node.get("role") === "master" ? "master" : "replica",
        health: String(node.get("health") ?? "online"),
      };
      if (info.role === "master") shard.master = info;
      else shard.replicas.push(info);
    }
    shards.push(shard);
  }
  return new SlotMap(shards);
}

/** Builds a slot map from the reply to `CLUSTER SLOTS`, for servers older than Redis 7. */
export function slotMapFromSlots(reply: unknown): SlotMap {
  const byMaster = new Map<string, ShardInfo>();
  for (const entry of reply as Flat[]) {
    const [first, last, master, ...replicas] = entry as [number, number, Flat, ...Flat[]];
    const address = (n: Flat) => (String(n[0]).includes(":") ? `[${n[0]}]:${n[1]}` : `${n[0]}:${n[1]}`);
    const key = String(master[2] ?? address(master));
    let shard = byMaster.get(key);
    if (!shard) {
      shard = {
        ranges: [],
        master: { id: String(master[2] ?? ""), address: address(master), role: "master", health: "online" },
        replicas: replicas.map((r) => ({
          id: String(r[2] ?? ""),
          address: address(r),
          role: "replica",
          health: "online",
        })),
      };
      byMaster.set(key, shard);
    }
    shard.ranges.push([Number(first), Number(last)]);
  }
  return new SlotMap([...byMaster.values()]);
}
