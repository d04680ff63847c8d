/**
 * `engine: "valkey"` on DistributedRedis under mocks: the shard nodes run the Valkey image unless
 * `redisImage` names one, on Docker and on Kubernetes, from args and from a stack file alike.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { find, installMocks, ofType, startRun } from "./support/mocks.ts";
import { stackFileConfig } from "./support/stack-config.ts";
import { DEFAULT_SHARD_IMAGE, parseClusterSpec } from "../../components/plan/spec.ts";

installMocks();
const k8s = await import("@pulumi/kubernetes");
const { createStack, parseStackConfig } = await import("../../components/stack.ts");
const { DistributedRedis } = await import("../../components/distributed-redis.ts");

test("each engine has its own default shard image; an explicit redisImage wins", () => {
  assert.equal(parseClusterSpec({ platform: "docker" }, "args").redisImage, "redis:7.2");
  assert.equal(parseClusterSpec({ platform: "docker" }, "args").engine, "redis");
  assert.equal(
    parseClusterSpec({ platform: "docker", engine: "valkey" }, "args").redisImage,
    "valkey/valkey:9.0",
  );
  assert.equal(
    parseClusterSpec({ platform: "docker", engine: "valkey", redisImage: "valkey/valkey:9.0.1" }, "args")
      .redisImage,
    "valkey/valkey:9.0.1",
  );
  assert.deepEqual(DEFAULT_SHARD_IMAGE, { redis: "redis:7.2", valkey: "valkey/valkey:9.0" });
});

test("an unknown engine is refused, naming the key and the choices", () => {
  assert.throws(
    () => parseClusterSpec({ platform: "docker", engine: "keydb" }, "args"),
    (err: Error) => {
      assert.equal(
        err.message,
        'invalid args:\n  - engine: Invalid option: expected one of "redis"|"valkey"',
      );
      return true;
    },
  );
  assert.throws(
    () => parseStackConfig({ ...stackFileConfig("dev"), engine: "dragonfly" }),
    /- distributed-redis:engine: Invalid option: expected one of "redis"\|"valkey"/,
  );
});

test("Docker: engine valkey pulls valkey/valkey:9.0 and every shard node runs it", async () => {
  const run = startRun();
  new DistributedRedis("vk", { platform: "docker", engine: "valkey", replicasPerShard: 1 }, run.opts);
  const resources = await run.settle();
  assert.equal(
    find(resources, "docker:index/remoteImage:RemoteImage", "vk-redis-image").inputs["name"],
    "valkey/valkey:9.0",
  );
  const nodes = ofType(resources, "docker:index/container:Container").filter((r) =>
    /^vk-shard-\d+-\d+$/.test(r.name),
  );
  assert.equal(nodes.length, 6);
  for (const node of nodes) assert.equal(node.inputs["image"], "sha256:id-of-valkey/valkey:9.0", node.name);
});

test("Kubernetes, from a stack file: engine valkey puts valkey/valkey:9.0 in every shard pod", async () => {
  const spec = parseStackConfig({ ...stackFileConfig("staging"), engine: "valkey" });
  assert.equal(spec.redisImage, "valkey/valkey:9.0");
  const run = startRun();
  const provider = new k8s.Provider("staging-cluster", { context: "staging" });
  createStack({ name: "vk", spec }, { ...run.opts, providers: [provider] });
  const resources = await run.settle();
  const sets = ofType(resources, "kubernetes:apps/v1:StatefulSet").filter((r) =>
    r.name.startsWith("vk-shard-"),
  );
  assert.equal(sets.length, 3);
  for (const set of sets) {
    const pod = (
      set.inputs["spec"] as { template: { spec: { containers: { name: string; image: string }[] } } }
    ).template.spec;
    assert.ok(pod.containers.length > 0, set.name);
    assert.ok(
      pod.containers.some((c) => c.image === "valkey/valkey:9.0"),
      `${set.name}: ${JSON.stringify(pod.containers.map((c) => c.image))}`,
    );
    assert.ok(
      pod.containers.every((c) => !c.image.startsWith("redis:")),
      set.name,
    );
  }
});
