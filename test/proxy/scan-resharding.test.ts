import { test } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { decodeCursor } from "../../src/proxy/busy/scan.ts";
import { startCluster, until } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";
import { SlotMover } from "../support/slot-mover.ts";
import { replicasCaughtUp } from "../support/replication.ts";

const KEYS = 50_000;

/** Loads KEYS string keys through the proxy, in pipelines of 2000. */
async function load(client: Redis): Promise<Set<string>> {
  const all = new Set<string>();
  for (let start = 0; start < KEYS; start += 2000) {
    const pipeline = client.pipeline();
    for (let i = start; i < start + 2000; i++) {
      pipeline.set(`k:${i}`, "v");
      all.add(`k:${i}`);
    }
    await pipeline.exec();
  }
  return all;
}

function assertAllSeen(all: Set<string>, seen: Set<string>): void {
  const missing = [...all].filter((key) => !seen.has(key));
  assert.equal(
    missing.length,
    0,
    `${missing.length} keys never returned, e.g. ${missing.slice(0, 5).join(", ")}`,
  );
}

test("SCAN over 50,000 keys returns every key while 1,000 slots migrate during the scan", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, { retryBudgetMs: 20_000 }, { busyProxy: true });
  const client = proxyClient(t, proxy.port);
  const mover = await SlotMover.create(cluster);
  const all = await load(client);
  // 1,000 slots over the whole range, in groups of 20. A group ahead of the scan is held
  // half-migrated (keys on both nodes) until the scan has passed it, then finished: the scan
  // reads every one of those slots mid-migration, on the node the slot map names.
  const slots = Array.from({ length: 1000 }, (_, i) => i * 16 + (i % 16));
  let scanSlot = 0;
  let scanDone = false;
  /** The last slot of the group held half-migrated ahead of the scan, or -1. */
  let heldUpTo = -1;
  let moverDone = false;
  let heldWhileScanned = 0;
  const moves = (async () => {
    for (let g = 0; g < slots.length; g += 20) {
      const group = slots.slice(g, g + 20).map((slot) => {
        const from = SlotMover.initialOwner(slot);
        return { slot, from, to: (from + 1) % 3 };
      });
      const ahead = scanDone ? 0 : group.filter((m) => m.slot >= scanSlot).length;
      for (const m of group) await mover.start(m.slot, m.from, m.to);
      if (ahead > 0) {
        heldUpTo = group.at(-1)!.slot;
        await until(() => scanDone || scanSlot > group.at(-1)!.slot, 60_000, "the scan to pass", 1);
        heldUpTo = -1;
        if (!scanDone) heldWhileScanned += ahead;
      }
      for (const m of group) await mover.finish(m.slot, m.from, m.to);
    }
    moverDone = true;
  })();
  const seen = new Set<string>();
  let cursor = "0";
  try {
    do {
      // The scan goes on once the next group is held half-migrated (or all slots have moved).
      await until(() => heldUpTo >= scanSlot || moverDone, 60_000, "the mover to hold a group", 1);
      const [next, keys] = (await client.call("SCAN", cursor, "COUNT", "200")) as [string, string[]];
      for (const key of keys) seen.add(key);
      cursor = next;
      scanSlot = cursor === "0" ? 16384 : decodeCursor(cursor)!.slot;
    } while (cursor !== "0");
  } finally {
    scanDone = true;
    await moves;
  }
  assertAllSeen(all, seen);
  assert.ok(heldWhileScanned >= 800, `only ${heldWhileScanned} slots were scanned mid-migration`);
  assert.equal(Number(await client.dbsize()), KEYS);
});

test("SCAN over 50,000 keys returns every key while a master fails over mid-scan", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 1 });
  const proxy = await startTestProxy(t, cluster, { retryBudgetMs: 20_000 }, { busyProxy: true });
  const client = proxyClient(t, proxy.port);
  const all = await load(client);
  // Every key must be on the replica before its master dies (replication is asynchronous).
  for (const master of cluster.masters) await replicasCaughtUp(cluster.connect(master), { replicas: 1 });
  const seen = new Set<string>();
  let cursor = "0";
  let killed = false;
  const deadline = Date.now() + 60_000;
  do {
    assert.ok(Date.now() < deadline, "the scan did not finish in 60 s");
    const [next, keys] = (await client.call("SCAN", cursor, "COUNT", "200")) as [string, string[]];
    for (const key of keys) seen.add(key);
    cursor = next;
    // Halfway through master 0's slots (0-5460): the rest of them must come from its replica.
    if (!killed && cursor !== "0" && decodeCursor(cursor)!.slot > 2500) {
      killed = true;
      await cluster.masters[0]!.kill();
    }
  } while (cursor !== "0");
  assert.ok(killed);
  assertAllSeen(all, seen);
});
