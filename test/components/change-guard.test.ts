/**
 * The ChangeGuard: a Stash registered before the shards with what SlotMigration's guard compares,
 * whose beforeUpdate hook refuses what that guard refuses. Every shard depends on it, so the
 * engine runs it before any shard step, also without a preview (test/engine/skip-preview-guard
 * shows the engine doing so). Mocks never run hooks: the bound hook is called as the engine would.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type * as pulumi from "@pulumi/pulumi";
import { clusterSpecSchema } from "../../components/plan/spec.ts";
import { planCluster } from "../../components/plan/topology.ts";
import { find, installMocks, ofType, startRun, type MockRun, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";
import { kubernetesWithIssuer } from "../support/kubernetes-args.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");
const { DistributedRedis } = await import("../../components/distributed-redis.ts");

const STASH = "pulumi:index:Stash";
const GUARD = "redis-change-guard";

async function deploy(): Promise<{ run: MockRun; resources: Recorded[] }> {
  const run = startRun();
  createStack({ name: "redis", spec: stackSpec("dev") }, run.opts);
  return { run, resources: await run.settle() };
}

const { run, resources } = await deploy();
const guard = find(resources, STASH, GUARD);
const registered = guard.inputs["input"] as Record<string, unknown>;

/** Calls the bound hook as the engine calls a Stash's beforeUpdate: its inputs under `input`. */
function update(before: Record<string, unknown>, after: Record<string, unknown>): void {
  const args: pulumi.ResourceHookArgs = {
    urn: guard.urn,
    id: `${GUARD}-id`,
    name: GUARD,
    type: STASH,
    oldInputs: { input: before },
    newInputs: { input: after },
  };
  void run.hook(`${GUARD}-hook`).callback(args);
}

test("the guard registers what SlotMigration's guard compares, under the cluster, with a beforeUpdate hook", () => {
  const migration = find(resources, "distributed-redis:index:SlotMigration", "redis-migration");
  assert.equal(guard.parent, "redis");
  assert.deepEqual(guard.hooks, { beforeUpdate: [`${GUARD}-hook`] });
  assert.deepEqual(Object.keys(registered).sort(), ["passwordHash", "shardTls", "topology"]);
  assert.deepEqual(
    JSON.parse(registered["topology"] as string),
    JSON.parse(migration.inputs["topology"] as string),
  );
  assert.equal(registered["passwordHash"], migration.inputs["passwordHash"]);
  assert.match(registered["passwordHash"] as string, /^[0-9a-f]{32}$/);
  assert.equal(registered["shardTls"], false);
  assert.deepEqual(guard.secretInputs, []);
});

test("every shard depends on the guard, so the engine runs its hook before any shard step", () => {
  const shards = ofType(resources, "distributed-redis:index:RedisShard");
  assert.equal(shards.length, 3);
  for (const shard of shards)
    assert.ok(shard.dependsOn.includes(GUARD), `${shard.name}: ${shard.dependsOn.join(", ")}`);
});

test("the shared resources depend on the guard too: a refused run changes no auth Secret, Certificate, network or image", async () => {
  // Docker (the dev stack): the network and the images.
  const shared = resources.filter((r) => /^docker:/.test(r.type) && r.parent === "redis");
  assert.deepEqual([...new Set(shared.map((r) => r.type))].sort(), [
    "docker:index/image:Image",
    "docker:index/network:Network",
    "docker:index/remoteImage:RemoteImage",
  ]);
  for (const r of shared)
    assert.ok(r.dependsOn.includes(GUARD), `${r.type} ${r.name}: ${r.dependsOn.join(", ")}`);
  // Kubernetes with a shard-TLS issuer: the auth Secret (a restarted pod would read a refused
  // password from it) and the cert-manager Certificate.
  const kube = startRun();
  new DistributedRedis("kube", kubernetesWithIssuer(), kube.opts);
  const kubeResources = await kube.settle();
  for (const [type, name] of [
    ["kubernetes:core/v1:Secret", "kube-auth"],
    ["kubernetes:cert-manager.io/v1:Certificate", "kube-shard-tls"],
  ] as const) {
    const r = find(kubeResources, type, name);
    assert.ok(r.dependsOn.includes("kube-change-guard"), `${type} ${name}: ${r.dependsOn.join(", ")}`);
  }
});

test("the hook refuses turning shardTls on or off, a password change without previousPassword, an unsafe shrink", () => {
  assert.throws(() => update(registered, { ...registered, shardTls: true }), /shardTls cannot be turned on/);
  assert.throws(
    () => update({ ...registered, shardTls: true }, registered),
    /shardTls cannot be removed from a running cluster/,
  );
  assert.throws(
    () => update(registered, { ...registered, passwordHash: "another" }),
    /the password changed without previousPassword/,
  );
  const topology = (shards: number) =>
    JSON.stringify(planCluster("redis", clusterSpecSchema.parse({ platform: "docker", shards })).topology);
  assert.throws(
    () => update({ ...registered, topology: topology(7) }, { ...registered, topology: topology(3) }),
    /refusing to remove 4 of 7 shards at once/,
  );
});

test("the hook lets safe changes through: a growth, a rotation with previousPassword, its second step", () => {
  const topology = (shards: number) =>
    JSON.stringify(planCluster("redis", clusterSpecSchema.parse({ platform: "docker", shards })).topology);
  update({ ...registered, topology: topology(3) }, { ...registered, topology: topology(5) });
  const rotating = { ...registered, passwordHash: "new", previousPasswordHash: registered["passwordHash"] };
  update(registered, rotating);
  update(rotating, { ...registered, passwordHash: "new" });
});
