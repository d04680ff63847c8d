import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Redis } from "ioredis";
import { shardHealthCheckScript } from "../../../components/plan/health-check.ts";
import type { RedisServer } from "../../../src/local/redis-server.ts";
import { startCluster, startStandalone, until } from "../../support/redis.ts";

/** Runs the check as Docker does (`CMD-SHELL`: sh -c), against a node on this host. */
const healthy = (node: RedisServer) =>
  spawnSync("sh", ["-c", shardHealthCheckScript(node.port)], { encoding: "utf8" }).status === 0;

test("a node that answers but knows no other node yet is healthy (the migration joins it)", async (t) => {
  const node = await startStandalone(t, { "cluster-enabled": true, "cluster-config-file": "nodes.conf" });
  assert.equal(healthy(node), true);
});

test("a node that does not answer is not healthy", async (t) => {
  const node = await startStandalone(t, { "cluster-enabled": true, "cluster-config-file": "nodes.conf" });
  await node.stop();
  assert.equal(healthy(node), false);
});

test("in a cluster: masters and synced replicas are healthy; a replica cut off from its master is not", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 1 });
  await cluster.waitStable();
  for (const node of cluster.nodes) await until(async () => healthy(node), 10_000, "every node healthy");
  const replica = cluster.replicas[0]!;
  const info = String(await cluster.connect(replica).call("INFO", "replication"));
  const masterPort = Number(/master_port:(\d+)/.exec(info)![1]);
  const master = cluster.masters.find((m) => m.port === masterPort)!;
  // Kept a replica, so it stays cut off rather than taking over.
  await cluster.connect(replica).call("CONFIG", "SET", "cluster-replica-no-failover", "yes");
  await master.stop();
  await until(async () => !healthy(replica), 15_000, "the replica to report its master link down");
});

test("with a password file: the check authenticates with the file's current content, not REDISCLI_AUTH", async (t) => {
  const node = await startStandalone(t, { "cluster-enabled": true, "cluster-config-file": "nodes.conf" });
  const dir = await mkdtemp(join(tmpdir(), "dredis-health-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "password");
  const check = () =>
    spawnSync("sh", ["-c", shardHealthCheckScript(node.port, file)], {
      encoding: "utf8",
      env: { ...process.env, REDISCLI_AUTH: "stale-password-0001" },
    }).status === 0;
  const admin = new Redis({ host: "127.0.0.1", port: node.port, lazyConnect: true });
  t.after(() => admin.disconnect());
  await admin.config("SET", "requirepass", "rotated-password-0002");
  await writeFile(file, "stale-password-0001");
  assert.equal(check(), false, "the old password no longer gets in");
  // What the settings writer does on a rotation: the file changes under the running node.
  await writeFile(file, "rotated-password-0002");
  assert.equal(check(), true);
});
