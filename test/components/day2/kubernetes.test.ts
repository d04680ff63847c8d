/**
 * Day-2 changes of the prod stack (Kubernetes, 6 shards x 2 replicas, 4 load-balanced proxies),
 * each as two `pulumi up` runs under mocks, judged by what the engine and the Kubernetes provider
 * would do (engine.ts, ../data/kubernetes-replace-on-change.json).
 *
 * Every test here failed on the components before the day-2 work (issue 12, items 1, 2 and 4).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { installRecorder } from "./record.ts";
import { stackSpec } from "../support/stack-config.ts";

installRecorder();
const { assertAppliedLive, assertRollsOneAtATime, assertShardsUntouched, change, workloadsRun } =
  await import("./scenario.ts");

const prod = stackSpec("prod");

// maxmemory is applied live by the workload; the StatefulSets update OnDelete, so the pod spec's
// new memory limit restarts no pod (it applies at each pod's next restart).
test("shardMemoryMb: applied live, no pod restarted", async () => {
  const c = await change({ spec: prod }, { spec: { ...prod, shardMemoryMb: 8192 } });
  assertRollsOneAtATime(c);
  assertAppliedLive(c);
});

// The password is applied live by the migration (step 1) and the drop workload (step 2), and its
// hash is in the pod template without a roll (OnDelete).
test("password rotation: applied live, no pod restarted", async () => {
  const c = await change(
    { spec: prod, password: "old-password-0001" },
    // The documented rotation: the new password, and the one the cluster has as previousPassword.
    { spec: prod, password: "new-password-0002", previousPassword: "old-password-0001" },
  );
  assertRollsOneAtATime(c);
  assertAppliedLive(c);
});

// Persistence is applied live (CONFIG SET appendonly/save) by the workload; no pod restarts.
test("persistence aof -> rdb: applied live, no pod restarted", async () => {
  const c = await change({ spec: prod }, { spec: { ...prod, persistence: "rdb" } });
  assertRollsOneAtATime(c);
  assertAppliedLive(c);
});

test("redisImage: every shard gets the new image, one shard at a time", async () => {
  const c = await change({ spec: prod }, { spec: { ...prod, redisImage: "redis:7.2.5" } });
  for (let i = 0; i < 6; i++)
    assert.notEqual(
      c.plan.get(`kubernetes:apps/v1:StatefulSet::redis-shard-${i}`)!.action,
      "same",
      `shard ${i}`,
    );
  assertRollsOneAtATime(c);
});

test("runtime image: the proxies roll one pod at a time and the migration runs with it", async () => {
  const c = await change(
    { spec: prod },
    { spec: { ...prod, image: "ghcr.io/example/distributed-redis:0.2.0" } },
  );
  assert.equal(c.plan.get("kubernetes:apps/v1:Deployment::redis-proxy")!.action, "update");
  assert.ok(workloadsRun(c).includes("redis-migration-run"));
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("proxyWorkers: the proxies roll one pod at a time, shards untouched", async () => {
  const c = await change({ spec: prod }, { spec: { ...prod, proxyWorkers: 8 } });
  assert.equal(c.plan.get("kubernetes:apps/v1:Deployment::redis-proxy")!.action, "update");
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("proxyHosts 4 -> 5: the Deployment scales, nothing restarts", async () => {
  const c = await change({ spec: prod }, { spec: { ...prod, proxyHosts: 5 } });
  assert.deepEqual(c.plan.get("kubernetes:apps/v1:Deployment::redis-proxy")!.changed, ["spec.replicas"]);
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("shards 6 -> 8: new StatefulSets are created and migrated to, existing shards untouched", async () => {
  const c = await change({ spec: prod }, { spec: { ...prod, shards: 8 } });
  assert.equal(c.plan.get("kubernetes:apps/v1:StatefulSet::redis-shard-7")!.action, "create");
  assert.ok(workloadsRun(c).includes("redis-migration-run"));
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("shards 8 -> 6: the removed StatefulSets are deleted after the migration drained them", async () => {
  const c = await change({ spec: { ...prod, shards: 8 } }, { spec: prod });
  assert.deepEqual(c.disruption.retired, ["shard-6", "shard-7"]);
  assert.ok(
    workloadsRun(c).includes("redis-migration-run"),
    "deletes run after every create and replacement: the drain comes first",
  );
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

// The shard pods run the entrypoint of components/plan/shard-entrypoint.ts, with its handover as
// the preStop hook, within terminationGracePeriodSeconds.
test("a shard pod hands its master over before it stops (preStop)", async () => {
  const c = await change({ spec: prod }, { spec: prod });
  for (const state of c.news.values()) {
    if (state.type !== "kubernetes:apps/v1:StatefulSet") continue;
    const pod = (state.inputs["spec"] as { template: { spec: Record<string, unknown> } }).template.spec;
    const [redis] = pod["containers"] as { lifecycle?: { preStop?: { exec?: { command?: string[] } } } }[];
    assert.match(
      JSON.stringify(redis?.lifecycle?.preStop?.exec?.command),
      /CLUSTER FAILOVER/,
      `${state.name}: no handover`,
    );
  }
});
