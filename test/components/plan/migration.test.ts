import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { clusterSpecSchema } from "../../../components/plan/spec.ts";
import { SLOT_COUNT } from "../../../src/cluster/key-slot.ts";
import { planCluster } from "../../../components/plan/topology.ts";
import { balanceMoves, evenQuotas } from "../../../src/cluster/admin/plan.ts";
import {
  checkTopologyChange,
  describeMigration,
  drainRefusal,
  migrationRunFailure,
  migrationRunOutcome,
  planMigration,
  shardOfResource,
} from "../../../components/plan/migration.ts";

const topology = (shards: number, replicasPerShard = 1) =>
  planCluster("redis", clusterSpecSchema.parse({ platform: "docker", shards, replicasPerShard })).topology;

test("a first deployment creates the cluster", () => {
  assert.deepEqual(planMigration(undefined, topology(3)), {
    kind: "create",
    shards: ["shard-0", "shard-1", "shard-2"],
  });
});

test("growing from 3 to 5 shards adds two and moves their even share of slots", () => {
  const step = planMigration(topology(3), topology(5));
  assert.deepEqual(step, { kind: "add-shards", added: ["shard-3", "shard-4"], slotsToMove: 6553 });
  assert.equal(describeMigration(step), "add shard-3, shard-4 and move 6553 of 16384 slots to them");
});

test("shrinking from 5 to 3 drains the removed shards before their deletes", () => {
  const step = planMigration(topology(5), topology(3));
  assert.deepEqual(step, { kind: "remove-shards", removed: ["shard-3", "shard-4"], slotsToMove: 6553 });
  assert.match(describeMigration(step), /^drain shard-3, shard-4 .*Pulumi runs deletes after/);
});

test("the same topology is a no-op and a replica change re-attaches nodes without moving slots", () => {
  assert.deepEqual(planMigration(topology(4), topology(4)), { kind: "none" });
  assert.deepEqual(planMigration(topology(3, 1), topology(3, 2)), {
    kind: "reconfigure",
    shards: ["shard-0", "shard-1", "shard-2"],
  });
});

test("slots moved on growth plus slots kept always add up to all slots", () => {
  fc.assert(
    fc.property(fc.integer({ min: 3, max: 64 }), fc.integer({ min: 1, max: 64 }), (from, extra) => {
      const grow = planMigration(topology(from), topology(from + extra));
      const shrink = planMigration(topology(from + extra), topology(from));
      assert.equal(grow.kind, "add-shards");
      assert.equal(shrink.kind, "remove-shards");
      if (grow.kind !== "add-shards" || shrink.kind !== "remove-shards") return;
      assert.ok(grow.slotsToMove > 0 && grow.slotsToMove < SLOT_COUNT);
      assert.equal(grow.added.length, extra);
      assert.equal(shrink.removed.length, extra);
    }),
    { numRuns: 50 },
  );
});

/** Each shard of a `shards`-shard cluster owning its even, contiguous share, as `create` leaves it. */
function evenOwnership(shards: number): Map<string, number[]> {
  const targets = topology(shards).shards.map((s) => s.name);
  let next = 0;
  return new Map(
    [...evenQuotas(targets)].map(([name, n]) => [name, Array.from({ length: n }, () => next++)]),
  );
}

test("the forecast moves exactly as many slots as the real planner", () => {
  fc.assert(
    fc.property(fc.integer({ min: 3, max: 64 }), fc.integer({ min: 1, max: 64 }), (from, extra) => {
      const names = (n: number) => topology(n).shards.map((s) => s.name);
      const grow = planMigration(topology(from), topology(from + extra));
      const shrink = planMigration(topology(from + extra), topology(from));
      assert.ok(grow.kind === "add-shards" && shrink.kind === "remove-shards");
      const grown = balanceMoves({ current: evenOwnership(from), targets: names(from + extra) });
      const shrunk = balanceMoves({ current: evenOwnership(from + extra), targets: names(from) });
      assert.equal(grow.slotsToMove, grown.length);
      assert.equal(shrink.slotsToMove, shrunk.length);
    }),
    { numRuns: 30 },
  );
});

test("unsafe changes are refused with a message that says why", () => {
  const two = { shards: topology(3).shards.slice(0, 2) };
  assert.throws(
    () => checkTopologyChange(topology(3), two),
    /refusing 2 shards: Redis Cluster needs at least 3 masters/,
  );
  assert.throws(
    () => checkTopologyChange(topology(8), topology(3)),
    /refusing to remove 5 of 8 shards at once: .*remove at most half per `pulumi up`/,
  );
  const renamed = {
    shards: [...topology(3).shards.slice(0, 3), { name: "other", master: "x:6379", replicas: [] }],
  };
  assert.throws(
    () => checkTopologyChange(topology(4), renamed),
    /refusing to add \(other\) and remove \(shard-3\) shards in one deployment/,
  );
  assert.equal(checkTopologyChange(topology(6), topology(3)).kind, "remove-shards");
  assert.equal(checkTopologyChange(undefined, topology(3)).kind, "create");
});

test("a run fails the deployment unless it exited 0, with its logs", () => {
  assert.equal(migrationRunFailure({ exitCode: 0, containerLogs: "ok" }), undefined);
  assert.equal(
    migrationRunFailure({ exitCode: 1, containerLogs: "moving slot 17: timeout\n" }),
    "dredis cluster apply failed (exit 1):\nmoving slot 17: timeout",
  );
  assert.match(migrationRunFailure({ exitCode: 2 })!, /refused the change \(exit 2\)$/);
  assert.match(migrationRunFailure({})!, /reported no exit code/);
  assert.equal(migrationRunFailure({ status: { succeeded: 1 } }), undefined);
  assert.match(migrationRunFailure({ status: { failed: 1 } })!, /Job did not succeed \(failed pods: 1\)/);
});

test("a Job Pulumi did not await is no failure, and no proof of success either", () => {
  assert.equal(migrationRunFailure({ kind: "Job" }), undefined);
  assert.equal(migrationRunFailure({ kind: "Job", status: {} }), undefined);
  assert.deepEqual(migrationRunOutcome({ kind: "Job" }).kind, "unconfirmed");
  assert.deepEqual(migrationRunOutcome({ kind: "Job", status: { succeeded: 1 } }), { kind: "succeeded" });
  assert.equal(migrationRunOutcome({ exitCode: 0 }).kind, "succeeded");
});

test("a removed shard's resource may go only after this deployment's run succeeded", () => {
  const three = topology(3);
  assert.equal(shardOfResource("redis", "redis-shard-12-1-data"), "shard-12");
  assert.equal(shardOfResource("redis", "redis-shard-4"), "shard-4");
  assert.equal(shardOfResource("redis", "redis-proxy-0"), undefined);
  assert.equal(drainRefusal("redis-shard-0-0", "shard-0", three, undefined), undefined);
  assert.equal(drainRefusal("redis-shard-3-0", "shard-3", three, { kind: "succeeded" }), undefined);
  assert.match(
    drainRefusal("redis-shard-3-0", "shard-3", three, undefined)!,
    /^refusing to delete redis-shard-3-0: shard-3 is no longer in the topology and no slot migration finished in this deployment, so shard-3 may still own slots or keys/,
  );
  assert.match(
    drainRefusal("redis-shard-3-0", "shard-3", three, { kind: "failed", message: "exit 1" })!,
    /the slot migration of this deployment failed/,
  );
  assert.match(
    drainRefusal("other", undefined, three, { kind: "succeeded" })!,
    /not named like a shard resource/,
  );
});
