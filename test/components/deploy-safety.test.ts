/**
 * Day-2 changes that must reach the running nodes (a rebuilt image, a new password), waits sized
 * to the migration, and what a removed Kubernetes shard leaves behind. Asserted on the inputs and
 * options the engine diffs, under mocks.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ClusterSpec } from "../../components/plan/spec.ts";
import { find, installMocks, ofType, setProviderOutputs, startRun, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");

const CONTAINER = "docker:index/container:Container";
const STATEFUL_SET = "kubernetes:apps/v1:StatefulSet";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";

async function deploy(spec: ClusterSpec, password?: string): Promise<Recorded[]> {
  const run = startRun();
  createStack({ name: "redis", spec, password }, run.opts);
  return run.settle();
}

const runtimeContainers = (resources: Recorded[]) =>
  ofType(resources, CONTAINER).filter((c) => /^redis-(proxy-\d+|migration-run)$/.test(c.name));

test("docker: a rebuilt runtime image reaches every container that runs it (by ID, not tag)", async () => {
  const imageType = "docker:index/image:Image";
  setProviderOutputs(imageType, (_name, inputs) => ({
    imageName: inputs["imageName"],
    repoDigest: "sha256:first",
  }));
  const first = await deploy(stackSpec("dev"));
  setProviderOutputs(imageType, (_name, inputs) => ({
    imageName: inputs["imageName"],
    repoDigest: "sha256:second",
  }));
  const second = await deploy(stackSpec("dev"));
  assert.equal(find(first, imageType, "redis-runtime").inputs["imageName"], "redis-dredis:local");
  assert.equal(runtimeContainers(first).length, 3);
  runtimeContainers(first).forEach((before, i) => {
    assert.equal(before.inputs["image"], "sha256:first", before.name);
    assert.equal(runtimeContainers(second)[i]!.inputs["image"], "sha256:second", before.name);
  });
});

test("docker: a given runtime image is pulled and used by its ID", async () => {
  const resources = await deploy({ ...stackSpec("dev"), image: "ghcr.io/example/dredis:1" });
  const pulled = find(resources, "docker:index/remoteImage:RemoteImage", "redis-runtime-image");
  assert.equal(pulled.inputs["name"], "ghcr.io/example/dredis:1");
  assert.equal(ofType(resources, "docker:index/image:Image").length, 0);
  for (const c of runtimeContainers(resources))
    assert.equal(c.inputs["image"], "sha256:id-of-ghcr.io/example/dredis:1", c.name);
});

type PodTemplate = { metadata: { annotations: Record<string, string> } };
const authHash = (r: Recorded) =>
  (r.inputs["spec"] as { template: PodTemplate }).template.metadata.annotations["dredis.io/auth-hash"];

test("kubernetes: a new password changes every shard's and the proxies' pod template, so pods restart", async () => {
  const before = await deploy(stackSpec("prod"), "first-password");
  const after = await deploy(stackSpec("prod"), "second-password");
  const same = await deploy(stackSpec("prod"), "first-password");
  const templates = (resources: Recorded[]) => [
    ...ofType(resources, STATEFUL_SET),
    ...ofType(resources, DEPLOYMENT),
  ];
  assert.equal(templates(before).length, 6 + 1);
  templates(before).forEach((r, i) => {
    assert.match(authHash(r)!, /^[0-9a-f]{32}$/, r.name);
    assert.notEqual(authHash(templates(after)[i]!), authHash(r), `${r.name} restarts on a rotation`);
    assert.equal(authHash(templates(same)[i]!), authHash(r), `${r.name} is stable for one password`);
    assert.ok(!JSON.stringify(r.inputs).includes("first-password"), `${r.name} holds no password`);
    assert.ok(!r.secretInputs.includes("spec"), `${r.name}: the spec stays readable in diffs`);
  });
});

test("kubernetes: a shard's volumes go with its StatefulSet, which goes only once drained; scaling keeps them", async () => {
  for (const set of ofType(await deploy(stackSpec("prod")), STATEFUL_SET)) {
    const spec = set.inputs["spec"] as Record<string, unknown>;
    assert.deepEqual(spec["persistentVolumeClaimRetentionPolicy"], {
      whenDeleted: "Delete",
      whenScaled: "Retain",
    });
    assert.deepEqual(set.hooks["beforeDelete"], ["redis-migration-shard-drained"]);
  }
});

test("the migration's wait is sized to the data it may move, and can be overridden", async () => {
  const migration = (resources: Recorded[]) => resources.find((r) => r.name === "redis-migration-run")!;
  // dev: 3 x 128 MB; prod: 6 x 4 GB, which at 15,000 keys/s of 256 bytes takes 112 minutes.
  assert.deepEqual(migration(await deploy(stackSpec("dev"))).options.customTimeouts, { create: "12m" });
  assert.deepEqual(migration(await deploy(stackSpec("prod"))).options.customTimeouts, { create: "122m" });
  const overridden = await deploy({ ...stackSpec("prod"), migrationTimeoutMinutes: 600 });
  assert.deepEqual(migration(overridden).options.customTimeouts, { create: "600m" });
});

test("kubernetes: a shard pod is ready only back in the cluster and synced, so a roll waits for it", async () => {
  const { shardHealthCheckScript } = await import("../../components/plan/health-check.ts");
  for (const set of ofType(await deploy(stackSpec("prod")), STATEFUL_SET)) {
    const pod = (set.inputs["spec"] as { template: { spec: { containers: Record<string, unknown>[] } } })
      .template;
    const probe = pod.spec.containers[0]!["readinessProbe"] as { exec: { command: string[] } };
    assert.deepEqual(
      probe.exec.command,
      ["sh", "-c", shardHealthCheckScript(6379, "/etc/redis/password")],
      set.name,
    );
  }
});

test("a password rotation: the migration gets both passwords, a drop run follows the proxies, on both platforms", async () => {
  for (const spec of [stackSpec("dev"), stackSpec("prod")]) {
    const run = startRun();
    createStack(
      { name: "redis", spec, password: "new-password-0002", previousPassword: "old-password-0001" },
      run.opts,
    );
    const resources = await run.settle();
    const component = find(resources, "distributed-redis:index:SlotMigration", "redis-migration");
    assert.equal(typeof component.inputs["passwordHash"], "string", "the guard sees the password's digest");
    assert.equal(typeof component.inputs["previousPasswordHash"], "string");
    assert.notEqual(component.inputs["passwordHash"], component.inputs["previousPasswordHash"]);
    assert.doesNotMatch(JSON.stringify(component.inputs), /password-000/, "digests, never the passwords");
    const drop = resources.find((r) => r.name === "redis-password-drop")!;
    assert.ok(drop, `${spec.platform}: a drop run`);
    assert.deepEqual(drop.dependsOn, ["redis-proxy"], "after every proxy moved to the new password");
    assert.deepEqual(drop.hooks["afterCreate"], ["redis-password-drop-run-succeeded"]);
    const argv = JSON.stringify(drop.inputs["command"] ?? (drop.inputs["spec"] as object));
    assert.match(argv, /"--drop-previous-password"/);
    const migration = resources.find((r) => r.name === "redis-migration-run")!;
    assert.match(JSON.stringify(migration.inputs), /DREDIS_PREVIOUS_PASSWORD/);
  }
  // Without previousPassword: no drop run, and the migration gets no previous password.
  const plain = await deploy(stackSpec("dev"));
  assert.equal(
    plain.find((r) => r.name === "redis-password-drop"),
    undefined,
  );
  assert.doesNotMatch(JSON.stringify(find(plain, CONTAINER, "redis-migration-run").inputs), /PREVIOUS/);
});
