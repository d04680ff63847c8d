/**
 * Atomic slot migration when a shard's primary changes mid-run (a failover of the source's or the
 * target's shard): the driver notices the role change, retargets the rest of the run to the
 * shard's new primary and completes, with every key where it belongs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import { addShard } from "../../../src/cluster/admin/shards.ts";
import type { ProgressEvent } from "../../../src/cluster/admin/options.ts";
import type { Topology } from "../../../src/cluster/topology.ts";
import {
  adminConnections,
  clusterClient,
  redisCliCheck,
  topologyOf,
  writeKeys,
  wrongKeys,
} from "./cluster-fixture.ts";
import { until, type Cleanup } from "../../support/redis.ts";
import { balanced, startEmptyValkeyNodes } from "./atomic-fixture.ts";

const KEYS = 5_000;

async function setUp(t: Cleanup) {
  const nodes = await startEmptyValkeyNodes(t, 8);
  const three = topologyOf(nodes, 3, 1);
  const four = topologyOf(nodes, 4, 1);
  await applyTopology(three);
  await addShard(four, "shard-3");
  const client = clusterClient(t, four);
  await writeKeys(client, KEYS);
  const admin = adminConnections(t);
  // Every key on the replicas first: a failover then keeps all of them.
  await until(
    async () => {
      for (const shard of four.shards)
        if ((await admin(shard.master).dbsize()) !== (await admin(shard.replicas[0]!).dbsize())) return false;
      return true;
    },
    30_000,
    "the replicas to hold every key",
  );
  return { four, client, admin };
}

/**
 * Runs apply, failing over the shard `pick` names (CLUSTER FAILOVER on its replica, with `mode`)
 * once the first job is in flight.
 */
async function applyWithFailover(
  four: Topology,
  admin: (address: string) => Redis,
  pick: (event: Extract<ProgressEvent, { type: "atomic-job" }>) => string,
  mode: string[],
): Promise<{
  events: ProgressEvent[];
  promoted: string | undefined;
  failover: Promise<unknown> | undefined;
}> {
  const events: ProgressEvent[] = [];
  let promoted: string | undefined;
  let failover: Promise<unknown> | undefined;
  await applyTopology(four, {
    slotMigration: "atomic",
    atomicSlotsPerBatch: 64,
    onProgress: (event) => {
      events.push(event);
      if (promoted || event.type !== "atomic-job" || ["success", "failed", "cancelled"].includes(event.state))
        return;
      const shard = four.shards.find((s) => s.name === pick(event))!;
      promoted = shard.replicas[0]!;
      failover = admin(promoted).call("CLUSTER", "FAILOVER", ...mode);
    },
  });
  return { events, promoted, failover };
}

const warnings = (events: ProgressEvent[]) =>
  events.flatMap((e) => (e.type === "warning" ? [e.message] : []));

test("atomic migration: the target shard fails over mid-run; the run retargets to its new primary and completes", async (t) => {
  const { four, client, admin } = await setUp(t);
  const { events, promoted, failover } = await applyWithFailover(
    four,
    admin,
    (e) => e.to,
    // TAKEOVER: a coordinated failover waits for the importing primary's pause and times out. The
    // new shard holds no key before its first job ends, so the takeover loses none.
    ["TAKEOVER"],
  );
  assert.ok(promoted, "a job was seen in flight");
  assert.equal(await failover, "OK");
  await until(
    async () => /role:master/.test(String(await admin(promoted).info("replication"))),
    30_000,
    "the replica to take over",
  );
  assert.ok(
    warnings(events).some((m) => /shard-3's primary changed from .* to .*; moving its slots with/.test(m)),
    warnings(events).join("\n"),
  );
  await until(async () => balanced(four), 30_000, "every shard to hold 4096 slots");
  await redisCliCheck(promoted);
  assert.deepEqual(await wrongKeys(client, KEYS), []);
});

test("atomic migration: a source shard fails over mid-run; the run retargets to its new primary and completes", async (t) => {
  const { four, client, admin } = await setUp(t);
  const { events, promoted, failover } = await applyWithFailover(
    four,
    admin,
    (e) => e.from,
    // Coordinated: the replica catches up with the source first, so no key is lost to the failover.
    [],
  );
  assert.ok(promoted, "a job was seen in flight");
  assert.equal(await failover, "OK");
  assert.ok(
    warnings(events).some((m) => /primary changed from .* to .*; moving its slots with/.test(m)),
    warnings(events).join("\n"),
  );
  await until(async () => balanced(four), 30_000, "every shard to hold 4096 slots");
  await redisCliCheck(promoted);
  assert.deepEqual(await wrongKeys(client, KEYS), []);
});
