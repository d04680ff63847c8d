/**
 * The names the components hand the runtime are the names the runtime reads: checked against
 * the runtime's own command-line parser and leader election, not against a copy of the strings.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Command } from "commander";
import { registerClusterCommands } from "../../src/cli/cluster.ts";
import { ACTIVE_LABEL, inClusterOptions } from "../../src/proxy/leader-election.ts";
import { clusterApplyArgv, ENV, POD_ROLE_LABEL } from "../../src/contract.ts";
import { dockerDriver } from "../../components/docker/index.ts";
import { kubernetesDriver } from "../../components/kubernetes/index.ts";
import type { Platform, PlatformDriver } from "../../components/platform.ts";
import { platformDrivers } from "../../components/drivers.ts";
import { clusterSpecSchema, PLATFORMS } from "../../components/plan/spec.ts";
import { planCluster } from "../../components/plan/topology.ts";

test("dredis cluster apply parses the migration workload's argv into the planned topology", () => {
  const { topology } = planCluster("redis", clusterSpecSchema.parse({ platform: "docker", shards: 4 }));
  const program = new Command("dredis");
  registerClusterCommands(program);
  const apply = program.commands
    .find((c) => c.name() === "cluster")!
    .commands.find((c) => c.name() === "apply")!;
  const [group, name, ...rest] = clusterApplyArgv(topology);
  assert.deepEqual([group, name], ["cluster", "apply"]);
  const { operands, unknown } = apply.parseOptions(rest);
  assert.deepEqual([operands, unknown], [[], []]);
  assert.deepEqual(JSON.parse(apply.opts<{ topology: string }>().topology), topology);
});

test("leader election reads the environment the proxy pods get and sets the label the Service selects", () => {
  assert.equal(ACTIVE_LABEL, POD_ROLE_LABEL);
  assert.throws(
    () => inClusterOptions({} as never, {}),
    new RegExp(`needs the environment variables ${ENV.podName}, ${ENV.podNamespace}, ${ENV.leaseName}`),
  );
});

test("every platform has a driver (a missing one is a compile error)", () => {
  // @ts-expect-error: a Record over Platform needs every platform's driver.
  const partial: Record<Platform, PlatformDriver> = { docker: dockerDriver };
  assert.ok(partial);
  assert.deepEqual(Object.keys(platformDrivers), [...PLATFORMS]);
  assert.equal(platformDrivers.kubernetes, kubernetesDriver);
});
