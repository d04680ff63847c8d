import { test } from "node:test";
import assert from "node:assert/strict";
import calculateSlot from "cluster-key-slot";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import type { ProgressEvent } from "../../../src/cluster/admin/options.ts";
import { clusterClient, startEmptyNodes, topologyOf } from "./cluster-fixture.ts";

test("big keys in the slots to move are reported before moving and arrive intact", async (t) => {
  const nodes = await startEmptyNodes(t, 3);
  const two = topologyOf(nodes, 2, 0);
  const three = topologyOf(nodes, 3, 0);
  await applyTopology(two);
  const client = clusterClient(t, two);
  // Slot 16383 is shard-1's highest: the first it gives to the new shard.
  let name = "";
  for (let i = 0; calculateSlot(name) !== 16383; i++) name = `big-${i}`;
  const big = "b".repeat(3 * 1024 * 1024);
  await client.set(name, big);
  await client.set("small", "s");

  const dry = await applyTopology(three, { dryRun: true, bigKeyBytes: 1024 * 1024 });
  assert.deepEqual(
    dry.plan.rebalance.bigKeys.map((k) => [k.key, k.slot, k.node]),
    [[name, 16383, nodes[1]!.address]],
  );
  assert.ok(dry.plan.rebalance.bigKeys[0]!.bytes >= big.length);

  const events: ProgressEvent[] = [];
  await applyTopology(three, { bigKeyBytes: 1024 * 1024, onProgress: (e) => events.push(e) });
  const warnings = events.filter((e) => e.type === "warning").map((e) => (e as { message: string }).message);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    new RegExp(`big key "${name}" \\(\\d+ bytes, slot 16383 on ${nodes[1]!.address}\\)`),
  );
  const firstWarning = events.findIndex((e) => e.type === "warning");
  assert.ok(firstWarning < events.findIndex((e) => e.type === "migration-start"), "warned before moving");
  assert.equal((await client.get(name))?.length, big.length);
  assert.equal(await client.get("small"), "s");
});
