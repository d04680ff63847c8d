/**
 * A password rotation's proxies, under mocks: while `previousPassword` is set, every proxy host's
 * config lets clients use it beside the new password (`previousClientPassword`), so applications
 * are not refused while HAProxy or a Service spreads them over proxies of both generations; the
 * next deployment, without it, refuses the old one. The Docker stack rotated under the real engine
 * showed the window this closes (new endpoint connections refused for ~4 s).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { ClusterSpec } from "../../components/plan/spec.ts";
import { installMocks, ofType, startRun, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";
import { parseProxyConfig, type ProxyConfig } from "../../src/proxy/config.ts";

installMocks();
const { DistributedRedis } = await import("../../components/distributed-redis.ts");

async function deploy(spec: ClusterSpec, password: string, previousPassword?: string): Promise<Recorded[]> {
  const run = startRun();
  new DistributedRedis(
    "redis",
    { ...spec, password, ...(previousPassword ? { previousPassword } : {}) },
    run.opts,
  );
  return run.settle();
}

function dockerProxyConfigs(resources: Recorded[]): ProxyConfig[] {
  const proxies = ofType(resources, "docker:index/container:Container").filter((c) =>
    /^redis-proxy-\d+$/.test(c.name),
  );
  assert.ok(proxies.length >= 2);
  return proxies.map((proxy) => {
    const [upload] = proxy.inputs["uploads"] as { file: string; content: string }[];
    return parseProxyConfig(parseYaml(upload!.content), proxy.name);
  });
}

function kubernetesProxyConfig(resources: Recorded[]): ProxyConfig {
  const secret = ofType(resources, "kubernetes:core/v1:Secret").find(
    (s) => (s.inputs["stringData"] as Record<string, string> | undefined)?.["proxy.yaml"] !== undefined,
  );
  assert.ok(secret, "the proxies' config Secret");
  return parseProxyConfig(parseYaml((secret.inputs["stringData"] as Record<string, string>)["proxy.yaml"]!));
}

const authHash = (resources: Recorded[]) =>
  (
    ofType(resources, "kubernetes:apps/v1:Deployment")[0]!.inputs["spec"] as {
      template: { metadata: { annotations: Record<string, string> } };
    }
  ).template.metadata.annotations["dredis.io/auth-hash"];

test("docker: during a rotation every proxy accepts the previous password from clients; afterwards only the new", async () => {
  for (const config of dockerProxyConfigs(await deploy(stackSpec("dev"), "new-password", "old-password"))) {
    assert.equal(config.clientPassword, "new-password");
    assert.equal(config.previousClientPassword, "old-password");
    assert.deepEqual(
      config.backendAuth,
      { password: "new-password" },
      "the shards are reached with the new one",
    );
  }
  for (const config of dockerProxyConfigs(await deploy(stackSpec("dev"), "new-password")))
    assert.equal(config.previousClientPassword, undefined);
});

test("kubernetes: the proxies' config takes the previous password during a rotation, and adding or removing it rolls them", async () => {
  const rotating = await deploy(stackSpec("prod"), "new-password", "old-password");
  const done = await deploy(stackSpec("prod"), "new-password");
  assert.equal(kubernetesProxyConfig(rotating).previousClientPassword, "old-password");
  assert.equal(kubernetesProxyConfig(done).previousClientPassword, undefined);
  assert.notEqual(authHash(rotating), authHash(done), "the proxies restart to drop the old password");
  assert.equal(authHash(done), authHash(await deploy(stackSpec("prod"), "new-password")));
});
