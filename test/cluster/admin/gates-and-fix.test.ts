import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster, until } from "../../support/redis.ts";
import { checkCluster } from "../../../src/cluster/admin/check.ts";
import type { Topology } from "../../../src/cluster/topology.ts";
import type { TestCluster } from "../../support/redis.ts";
import { clusterClient, redisCliCheck, runCli, writeKeys, wrongKeys } from "./cluster-fixture.ts";

function topologyFor(cluster: TestCluster): Topology {
  return {
    shards: cluster.masters.map((m, i) => ({
      name: `shard-${i}`,
      master: m.address,
      replicas: cluster.replicas.filter((_, r) => r % cluster.masters.length === i).map((r) => r.address),
    })),
  };
}

test("an open slot that is no interrupted migration refuses rebalance (exit 2) until fix closes it", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const topology = topologyFor(cluster);
  const client = clusterClient(t, topology);
  await writeKeys(client, 2_000);
  // Slot 0 belongs to master 0: master 1 "importing it from" master 2 is no state a migration passes through.
  const ids = await Promise.all(cluster.masters.map((m) => cluster.connect(m).call("CLUSTER", "MYID")));
  await cluster.connect(cluster.masters[1]!).call("CLUSTER", "SETSLOT", 0, "IMPORTING", String(ids[2]));

  const refused = await runCli(["rebalance", "--topology", JSON.stringify(topology)]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /refusing to rebalance: 1 problem/);
  assert.match(
    refused.stderr,
    new RegExp(`slot 0 is open \\(importing into ${cluster.masters[1]!.address} \\(shard-1\\)`),
  );
  assert.match(refused.stderr, /fix: run: dredis cluster fix --topology/);

  const checked = await runCli(["check", "--topology", JSON.stringify(topology)]);
  assert.equal(checked.code, 1);
  assert.match(checked.stdout, /slot 0 is open/);

  const fixed = await runCli(["fix", "--topology", JSON.stringify(topology)]);
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.match(fixed.stdout, /1 slots closed/);
  assert.deepEqual((await checkCluster(topology)).problems, []);
  await redisCliCheck(topology.shards[0]!.master);
  assert.deepEqual(await wrongKeys(client, 2_000), []);
});

test("a slot nobody owns makes the cluster not ok: apply refuses, fix gives it back to the node holding its keys", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const topology = topologyFor(cluster);
  const client = clusterClient(t, topology);
  await writeKeys(client, 2_000);
  const owner = cluster.connect(cluster.masters[0]!);
  // A slot of master 0 (startCluster gives it 0-5460) that holds keys.
  let slot = 16384;
  for (let i = 1; slot > 5460; i++) slot = Number(await owner.call("CLUSTER", "KEYSLOT", `key:${i}`));
  await owner.call("CLUSTER", "DELSLOTS", slot);

  const refused = await runCli(["apply", "--topology", JSON.stringify(topology)]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /reports cluster_state:fail/);
  assert.match(refused.stderr, new RegExp(`1 slots have no owner: ${slot}\\b`));
  assert.match(refused.stderr, /fix: run: dredis cluster fix --topology .*\(it assigns them\)/);

  const fixed = await runCli(["fix", "--topology", JSON.stringify(topology), "--json"]);
  assert.equal(fixed.code, 0, fixed.stderr);
  const result = JSON.parse(fixed.stdout) as { plan: { assign: { slot: number; owner: string }[] } };
  assert.deepEqual(result.plan.assign, [{ slot, owner: cluster.masters[0]!.address }]);
  await redisCliCheck(topology.shards[0]!.master);
  assert.deepEqual(await wrongKeys(client, 2_000), []);
});

test("a failed node refuses apply (exit 2) and names the node and the fix", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 1 });
  const topology = topologyFor(cluster);
  const victim = cluster.replicas[0]!;
  await victim.kill();
  const observer = cluster.connect(cluster.masters[0]!);
  await until(
    async () =>
      String(await observer.call("CLUSTER", "NODES")).includes(`${victim.port}@`) &&
      /\bfail\b/.test(
        String(await observer.call("CLUSTER", "NODES"))
          .split("\n")
          .find((l) => l.includes(`:${victim.port}@`))!,
      ),
    20_000,
    "the killed replica to be marked failed",
  );

  const refused = await runCli(["apply", "--topology", JSON.stringify(topology)]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, new RegExp(`node ${victim.address} \\(shard-0\\) cannot be read`));
  assert.match(refused.stderr, new RegExp(`node ${victim.address} \\(shard-0\\) is marked failed`));
  assert.match(refused.stderr, /fix: restart it/);

  const fix = await runCli(["fix", "--topology", JSON.stringify(topology)]);
  assert.equal(fix.code, 2, "fix cannot bring a dead node back and refuses too");
});
