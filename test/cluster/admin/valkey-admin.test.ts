/**
 * Administration where Valkey differs, on Valkey whatever DREDIS_TEST_ENGINE says:
 * - the key-by-key slot move (`--slot-migration legacy`): Valkey's CLUSTER SETSLOT is replicated
 *   and waits for the master's replicas, and a replica still in its first sync made the move leave
 *   slots open on that replica (the cluster never converged) or fail with NOREPLICAS;
 * - the rebalance plan's sizes count the keys of every database (cluster-databases > 1).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import { planRebalance } from "../../../src/cluster/admin/rebalance.ts";
import { addShard } from "../../../src/cluster/admin/shards.ts";
import { withPool } from "../../../src/cluster/admin/node-pool.ts";
import { replicasNotInSync, waitForReplicasInSync } from "../../../src/cluster/admin/replica-sync.ts";
import { DredisError, ErrorCodes } from "../../../src/errors.ts";
import { startEmptyNodes, topologyOf } from "./cluster-fixture.ts";
import { tagFor } from "./atomic-fixture.ts";

test("a Valkey master's replica in its first sync is named, the wait for it is bounded, then it is in sync", async (t) => {
  const nodes = await startEmptyNodes(t, 2, "valkey");
  await applyTopology(topologyOf(nodes, 1));
  const [master, replica] = nodes.map((n) => n.address) as [string, string];
  await withPool({}, async (pool) => {
    // Valkey's diskless sync waits 5 s (repl-diskless-sync-delay) before it starts: still syncing here.
    assert.deepEqual(await replicasNotInSync(pool.get(master)), [`${replica} (replica of ${master})`]);
    await assert.rejects(
      waitForReplicasInSync(pool, [master], {}, 1),
      (err: unknown) =>
        err instanceof DredisError &&
        err.code === ErrorCodes.MIGRATE &&
        err.message.startsWith(
          `replicas still not in sync after 0 s: ${replica} (replica of ${master}). On Valkey 8+ CLUSTER SETSLOT waits for every replica of the master and fails with NOREPLICAS while one is syncing`,
        ) &&
        err.message.endsWith("then re-run to resume"),
    );
    await waitForReplicasInSync(pool, [master], {});
    assert.deepEqual(await replicasNotInSync(pool.get(master)), []);
    // A replica has nothing to wait for.
    assert.deepEqual(await replicasNotInSync(pool.get(replica)), []);
  });
});

test("the rebalance plan counts the keys and bytes of every database, and finds big keys outside database 0", async (t) => {
  const nodes = await startEmptyNodes(t, 3, "valkey", { "cluster-databases": 4 });
  const two = topologyOf(nodes, 2, 0);
  const three = topologyOf(nodes, 3, 0);
  await applyTopology(two);
  // shard-0 owns 0-8191 and gives 5462-8191 to the new shard; slots 6000-6009 get keys in two databases.
  const node = new Redis(nodes[0]!.port, "127.0.0.1");
  t.after(() => void node.disconnect());
  const slots = Array.from({ length: 10 }, (_, i) => 6000 + i);
  for (const slot of slots) {
    const tag = tagFor(slot);
    await node.set(`{${tag}}:db0`, "x".repeat(100));
    await node.select(2);
    for (let k = 0; k < 3; k++) await node.set(`{${tag}}:db2:${k}`, "y".repeat(100));
    await node.select(0);
  }
  await node.select(2);
  await node.set(`{${tagFor(6000)}}:big`, "z".repeat(20_000));
  await node.select(0);

  await addShard(three, "shard-2");
  const plan = await planRebalance(three, { bigKeyBytes: 10_000 });
  const bySlot = new Map(plan.moves.map((m) => [m.slot, m]));
  for (const slot of slots) {
    const move = bySlot.get(slot)!;
    assert.equal(move.keys, slot === 6000 ? 5 : 4, `keys of slot ${slot}`);
    assert.ok(move.bytes > 4 * 100, `bytes of slot ${slot}: ${move.bytes}`);
  }
  assert.ok(bySlot.get(6000)!.bytes > 20_000);
  assert.equal(plan.totals.keys, 41);
  assert.deepEqual(
    plan.bigKeys.map((k) => [k.key, k.slot, k.db, k.node]),
    [[`{${tagFor(6000)}}:big`, 6000, 2, nodes[0]!.address]],
  );
});
