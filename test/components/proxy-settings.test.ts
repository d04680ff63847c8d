/**
 * The proxies' `crossSlot` and `readFrom` as DistributedRedis args and stack config, under mocks:
 * they reach every proxy host's config (Docker uploads, the Kubernetes Secret), stay out of it at
 * their defaults (so existing proxies are not replaced by an upgrade), and a bad value names its key.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { ClusterSpec } from "../../components/plan/spec.ts";
import { parseStackConfig } from "../../components/stack.ts";
import { installMocks, ofType, startRun, type Recorded } from "./support/mocks.ts";
import { stackFileConfig, stackSpec } from "./support/stack-config.ts";

installMocks();
const { DistributedRedis } = await import("../../components/distributed-redis.ts");

async function deploy(spec: ClusterSpec): Promise<Recorded[]> {
  const run = startRun();
  new DistributedRedis("redis", { ...spec, password: "pw-123456789" }, run.opts);
  return run.settle();
}

function proxyConfigs(resources: Recorded[]): Record<string, unknown>[] {
  const docker = ofType(resources, "docker:index/container:Container")
    .filter((c) => /^redis-proxy-\d+$/.test(c.name))
    .map((c) => (c.inputs["uploads"] as { content: string }[])[0]!.content);
  const kubernetes = ofType(resources, "kubernetes:core/v1:Secret")
    .map((s) => (s.inputs["stringData"] as Record<string, string> | undefined)?.["proxy.yaml"])
    .filter((c): c is string => c !== undefined);
  const configs = [...docker, ...kubernetes];
  assert.ok(configs.length > 0);
  return configs.map((c) => parseYaml(c) as Record<string, unknown>);
}

test("crossSlot and readFrom reach every proxy host's config, on Docker and Kubernetes", async () => {
  for (const stack of ["dev", "prod"] as const) {
    const configs = proxyConfigs(
      await deploy({ ...stackSpec(stack), crossSlot: "emulate", readFrom: "replica-preferred" }),
    );
    for (const config of configs) {
      assert.equal(config["crossSlot"], "emulate", stack);
      assert.equal(config["readFrom"], "replica-preferred", stack);
    }
  }
});

test("at their defaults they stay out of the proxies' config", async () => {
  for (const config of proxyConfigs(await deploy(stackSpec("dev")))) {
    assert.equal(Object.hasOwn(config, "crossSlot"), false);
    assert.equal(Object.hasOwn(config, "readFrom"), false);
  }
});

test("a bad value in the stack config names its key", () => {
  assert.throws(() => parseStackConfig({ ...stackFileConfig("dev"), readFrom: "replicas" }), /readFrom/);
});
