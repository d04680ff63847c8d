/**
 * Moving slots between a test cluster's masters by hand, as tests need to hold a slot
 * half-migrated while traffic passes it.
 */
import type { Redis } from "ioredis";
import type { TestCluster } from "./redis.ts";

/**
 * Slot moves with the standard protocol (IMPORTING, MIGRATING, MIGRATE, SETSLOT NODE), in two
 * steps so a test can hold a slot half-migrated (keys on both nodes) while a scan passes it.
 */
export class SlotMover {
  private constructor(
    private readonly cluster: TestCluster,
    private readonly admin: Redis[],
    private readonly ids: string[],
  ) {}

  static async create(cluster: TestCluster): Promise<SlotMover> {
    const admin = cluster.masters.map((m) => cluster.connect(m));
    const ids = (await Promise.all(admin.map((a) => a.call("CLUSTER", "MYID")))) as string[];
    return new SlotMover(cluster, admin, ids);
  }

  /** The master that owns a slot before any move (master m starts at floor(m * 16384 / 3)). */
  static initialOwner(slot: number): number {
    return [2, 1, 0].find((m) => slot >= Math.floor((m * 16384) / 3))!;
  }

  /** Marks the slot migrating from `from` to `to` and moves half of its keys. */
  async start(slot: number, from: number, to: number): Promise<void> {
    await this.admin[to]!.call("CLUSTER", "SETSLOT", slot, "IMPORTING", this.ids[from]!);
    await this.admin[from]!.call("CLUSTER", "SETSLOT", slot, "MIGRATING", this.ids[to]!);
    const keys = (await this.admin[from]!.call("CLUSTER", "GETKEYSINSLOT", slot, 1000)) as string[];
    await this.migrate(keys.slice(0, Math.ceil(keys.length / 2)), from, to);
  }

  /** Moves the slot's remaining keys and gives the slot to `to` on every master. */
  async finish(slot: number, from: number, to: number): Promise<void> {
    for (;;) {
      const keys = (await this.admin[from]!.call("CLUSTER", "GETKEYSINSLOT", slot, 100)) as string[];
      if (keys.length === 0) break;
      await this.migrate(keys, from, to);
    }
    await this.admin[to]!.call("CLUSTER", "SETSLOT", slot, "NODE", this.ids[to]!);
    await this.admin[from]!.call("CLUSTER", "SETSLOT", slot, "NODE", this.ids[to]!);
    for (const [i, other] of this.admin.entries())
      if (i !== from && i !== to) await other.call("CLUSTER", "SETSLOT", slot, "NODE", this.ids[to]!);
  }

  private async migrate(keys: string[], from: number, to: number): Promise<void> {
    if (keys.length === 0) return;
    const node = this.cluster.masters[to]!;
    await this.admin[from]!.call("MIGRATE", node.host, node.port, "", 0, 5000, "KEYS", ...keys);
  }
}
