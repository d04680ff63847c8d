import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster, startStandalone } from "./redis.ts";

test("a 3x1 cluster comes up with every slot covered and replicas attached", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 1 });
  const admin = cluster.connect(cluster.masters[0]!);
  const shards = (await admin.call("CLUSTER", "SHARDS")) as unknown[];
  assert.equal(shards.length, 3);
  const info = String(await admin.call("CLUSTER", "INFO"));
  assert.match(info, /cluster_slots_assigned:16384/);
  assert.match(info, /cluster_known_nodes:6/);
  for (const replica of cluster.replicas) {
    const role = (await cluster.connect(replica).call("ROLE")) as unknown[];
    assert.equal(role[0], "slave");
  }
});

test("cleanup stops every server it started", async (t) => {
  let pids: (number | undefined)[] = [];
  await t.test("inner", async (t2) => {
    const server = await startStandalone(t2);
    pids = [server.pid];
    assert.equal(await server.running, true);
  });
  for (const pid of pids) {
    assert.throws(() => process.kill(pid!, 0), /ESRCH/);
  }
});
