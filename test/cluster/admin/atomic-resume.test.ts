import { test } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import { addShard } from "../../../src/cluster/admin/shards.ts";
import { checkCluster } from "../../../src/cluster/admin/check.ts";
import type { ProgressEvent } from "../../../src/cluster/admin/options.ts";
import { clusterClient, redisCliCheck, runCli, topologyOf, writeKeys, wrongKeys } from "./cluster-fixture.ts";
import { proxyClient } from "../../support/proxy.ts";
import { until } from "../../support/redis.ts";
import {
  balanced,
  bigKeysIntact,
  writeBigKeys,
  loadBase,
  lostWrites,
  startEmptyValkeyNodes,
  startProxyOver,
  startTraffic,
} from "./atomic-fixture.ts";

const KEYS = 10_000;

test("atomic migration: dredis SIGKILLed mid-way, a re-run completes with nothing lost and no client error through the proxy", async (t) => {
  const nodes = await startEmptyValkeyNodes(t, 4);
  const three = topologyOf(nodes, 3, 0);
  const four = topologyOf(nodes, 4, 0);
  await applyTopology(three);
  await addShard(four, "shard-3");
  const client = clusterClient(t, four);
  await writeKeys(client, KEYS);
  const big = await writeBigKeys(client, four);
  const proxy = await startProxyOver(t, [three.shards[0]!.master]);
  await loadBase(proxyClient(t, proxy.port), 5_000);
  const traffic = startTraffic(t, proxy.port, 5_000);

  let killedIn = "";
  const killed = await runCli(
    ["rebalance", "--topology", JSON.stringify(four), "--slot-migration", "atomic"],
    (line, child) => {
      if (!line.startsWith("{")) return;
      const event = JSON.parse(line) as ProgressEvent;
      if (event.type === "atomic-job" && !["success", "failed", "cancelled"].includes(event.state)) {
        killedIn ||= `${event.slots} ${event.state}`;
        child.kill("SIGKILL");
      }
    },
  );
  assert.equal(killed.signal, "SIGKILL", `the run ended by itself:\n${killed.stderr}`);
  assert.ok(killedIn !== "", "killed while a job was in flight");
  assert.equal(await balanced(four), false, "the killed run did not finish the rebalance");

  const rerun = await runCli(["rebalance", "--topology", JSON.stringify(four), "--slot-migration", "atomic"]);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.equal(await balanced(four), true);
  await redisCliCheck(four.shards[0]!.master);
  const result = await traffic.stop();
  assert.deepEqual(result.errors, []);
  assert.deepEqual((await lostWrites(proxyClient(t, proxy.port), result.acked, 5_000)).slice(0, 10), []);
  assert.deepEqual(await wrongKeys(client, KEYS), []);
  assert.deepEqual(await bigKeysIntact(client, big), []);
});

test("atomic migration: a source master SIGKILLed mid-way fails the run clearly; after its replica takes over a re-run completes with nothing lost", async (t) => {
  const nodes = await startEmptyValkeyNodes(t, 8);
  const three = topologyOf(nodes, 3, 1);
  const four = topologyOf(nodes, 4, 1);
  await applyTopology(three);
  await addShard(four, "shard-3");
  const client = clusterClient(t, four);
  await writeKeys(client, KEYS);
  const big = await writeBigKeys(client, four);
  // Every write is on the replicas before the kill: what a failover keeps is then all of it.
  const connections = new Map<string, Redis>();
  const admin = (address: string): Redis => {
    if (!connections.has(address))
      connections.set(address, proxyClient(t, Number(address.split(":")[1]), { maxRetriesPerRequest: 1 }));
    return connections.get(address)!;
  };
  await until(
    async () => {
      for (const shard of three.shards) {
        const master = await admin(shard.master).dbsize();
        const replica = await admin(shard.replicas[0]!).dbsize();
        if (master !== replica) return false;
      }
      return true;
    },
    30_000,
    "the replicas to hold every key",
  );

  let victim: string | undefined;
  const failed = await applyTopology(four, {
    slotMigration: "atomic",
    onProgress: (event) => {
      if (victim || event.type !== "atomic-job" || ["success", "failed", "cancelled"].includes(event.state))
        return;
      victim = four.shards.find((s) => s.name === event.from)!.master;
      void nodes.find((n) => n.address === victim)!.kill();
    },
  }).then(
    () => undefined,
    (err: Error) => err,
  );
  assert.ok(victim, "a job was seen in flight");
  assert.ok(failed instanceof Error, "the run with a dead source fails");
  assert.match(failed.message, /re-run/);

  const shard = four.shards.find((s) => s.master === victim)!;
  await until(
    async () => /role:master/.test(String(await admin(shard.replicas[0]!).info("replication"))),
    60_000,
    "the replica to take over",
  );
  await nodes.find((n) => n.address === victim)!.restart();
  await until(async () => (await checkCluster(four)).problems.length === 0, 60_000, "the cluster to settle");

  await applyTopology(four, { slotMigration: "atomic" });
  assert.equal(await balanced(four), true);
  await redisCliCheck(four.shards[3]!.master);
  assert.deepEqual(await wrongKeys(client, KEYS), []);
  assert.deepEqual(await bigKeysIntact(client, big), []);
});
