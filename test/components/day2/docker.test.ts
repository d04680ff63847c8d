/**
 * Day-2 changes of the dev stack (Docker, 3 shards x 1 replica, 2 load-balanced proxies), each
 * as two `pulumi up` runs under mocks, judged by what the engine and the Docker provider would do
 * (engine.ts, ../data/docker-replace-on-change.json).
 *
 * Most tests here failed on the components before the day-2 work (issue 12, items 1-3).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { installRecorder } from "./record.ts";
import { stackSpec } from "../support/stack-config.ts";

installRecorder();
const { assertAppliedLive, assertRollsOneAtATime, assertShardsUntouched, change, workloadsRun } =
  await import("./scenario.ts");

const dev = stackSpec("dev");
const CONTAINER = "docker:index/container:Container";

test("shardMemoryMb: applied live, no shard node replaced", async () => {
  const c = await change({ spec: dev }, { spec: { ...dev, shardMemoryMb: 256 } });
  assertRollsOneAtATime(c);
  assertAppliedLive(c);
});

test("password rotation: applied live, no shard node replaced", async () => {
  const c = await change(
    { spec: dev, password: "old-password-0001" },
    // The documented rotation: the new password, and the one the cluster has as previousPassword.
    { spec: dev, password: "new-password-0002", previousPassword: "old-password-0001" },
  );
  assertRollsOneAtATime(c);
  assertAppliedLive(c);
});

test("persistence aof -> rdb: applied live, no shard node replaced", async () => {
  const c = await change({ spec: dev }, { spec: { ...dev, persistence: "rdb" } });
  assertRollsOneAtATime(c);
  assertAppliedLive(c);
});

test("redisImage: every node gets the new image, one node at a time", async () => {
  const c = await change({ spec: dev }, { spec: { ...dev, redisImage: "redis:7.2.5" } });
  for (const [key, state] of c.news)
    if (state.type === CONTAINER && /::redis-shard-\d+-\d+$/.test(key))
      assert.notEqual(c.plan.get(key)!.action, "same", `${key} keeps the old image`);
  assertRollsOneAtATime(c);
});

test("runtime image rebuilt: the proxies and the migration get it, one proxy host at a time", async () => {
  const rebuilt = (type: string) =>
    type === "docker:index/image:Image" ? { repoDigest: "sha256:built-2" } : {};
  const c = await change({ spec: dev }, { spec: dev, outputs: rebuilt });
  for (const name of ["redis-proxy-0", "redis-proxy-1"])
    assert.notEqual(c.action(name), "same", `${name} keeps the old image`);
  assert.ok(workloadsRun(c).includes("redis-migration-run"), "the migration workload keeps the old image");
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("proxyWorkers: shards untouched, one proxy host at a time", async () => {
  const c = await change({ spec: dev }, { spec: { ...dev, proxyWorkers: 4 } });
  assert.notEqual(c.action("redis-proxy-0"), "same");
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("proxyWorkers, master-backup: each host's proxy and keepalived go together, one host at a time", async () => {
  const pair = { ...dev, proxyMode: "master-backup" as const };
  const c = await change({ spec: pair }, { spec: { ...pair, proxyWorkers: 4 } });
  assert.equal(
    c.action("redis-proxy-0-keepalived"),
    "replace",
    "keepalived shares the replaced proxy's namespace",
  );
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("proxyHosts 2 -> 3: a host is added and the balancer keeps serving", async () => {
  const c = await change({ spec: dev }, { spec: { ...dev, proxyHosts: 3 } });
  assert.equal(c.action("redis-proxy-2"), "create");
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("shards 3 -> 5: new shards are created and migrated to, existing nodes untouched", async () => {
  const c = await change({ spec: dev }, { spec: { ...dev, shards: 5 } });
  assert.equal(c.action("redis-shard-4-1"), "create");
  assert.ok(workloadsRun(c).includes("redis-migration-run"));
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

test("shards 5 -> 3: the removed shards are deleted after the migration drained them, the rest untouched", async () => {
  const c = await change({ spec: { ...dev, shards: 5 } }, { spec: dev });
  assert.deepEqual(c.disruption.retired, ["shard-3", "shard-4"]);
  assert.ok(
    workloadsRun(c).includes("redis-migration-run"),
    "deletes run after every create and replacement: the drain comes first",
  );
  assertShardsUntouched(c);
  assertRollsOneAtATime(c);
});

// The shard containers run the entrypoint of components/plan/shard-entrypoint.ts and set
// destroyGraceSeconds above its handover timeout (see ../data/docker-replace-on-change.json notes).
test("a shard container the provider replaces or deletes is stopped first, so its master hands over", async () => {
  const c = await change({ spec: dev }, { spec: dev });
  for (const state of c.news.values()) {
    if (state.type !== CONTAINER || !/^redis-shard-\d+-\d+$/.test(state.name)) continue;
    assert.ok(Number(state.inputs["destroyGraceSeconds"]) > 0, `${state.name} is removed without a stop`);
    assert.match(
      JSON.stringify(state.inputs["command"]),
      /CLUSTER FAILOVER/,
      `${state.name} does not hand over`,
    );
  }
});
