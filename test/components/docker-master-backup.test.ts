/**
 * A Docker master-backup fleet under mocks: two proxies at static addresses outside Docker's
 * ipRange, each with keepalived in its network namespace holding the floating IP.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { find, installMocks, ofType, startRun, unwrap, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";
import { renderKeepalivedConf } from "../../components/plan/keepalived.ts";
import { proxyHealthCheckCommand } from "../../components/plan/health-check.ts";
import { virtualRouterIdFor } from "../../components/plan/addresses.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");

const CONTAINER = "docker:index/container:Container";
let resources: Recorded[];
let endpoint: string;
let proxyAddresses: string[];
before(async () => {
  const run = startRun();
  const spec = { ...stackSpec("dev"), proxyMode: "master-backup" as const, port: 6379 };
  const redis = createStack({ name: "cache", spec, password: "pw-123456789" }, run.opts);
  resources = await run.settle();
  endpoint = await unwrap(redis.endpoint);
  proxyAddresses = await unwrap(redis.proxyAddresses);
});

test("two proxies with static addresses, two keepalived beside them, no HAProxy", () => {
  const names = ofType(resources, CONTAINER)
    .map((c) => c.name)
    .filter((n) => n.startsWith("cache-proxy"));
  assert.deepEqual(names.sort(), [
    "cache-proxy-0",
    "cache-proxy-0-keepalived",
    "cache-proxy-1",
    "cache-proxy-1-keepalived",
  ]);
  assert.equal(
    ofType(resources, "docker:index/remoteImage:RemoteImage").length,
    1,
    "no HAProxy image is pulled",
  );
  assert.deepEqual(find(resources, CONTAINER, "cache-proxy-1").inputs["networksAdvanced"], [
    { name: "cache-net", aliases: ["cache-proxy-1"], ipv4Address: "172.28.0.11" },
  ]);
});

test("keepalived shares its proxy's network namespace with NET_ADMIN and NET_RAW", () => {
  for (const i of [0, 1]) {
    const keepalived = find(resources, CONTAINER, `cache-proxy-${i}-keepalived`);
    assert.equal(keepalived.inputs["networkMode"], `container:cache-proxy-${i}-id`);
    const adds = (keepalived.inputs["capabilities"] as { adds: string[] }).adds;
    assert.ok(adds.includes("NET_ADMIN") && adds.includes("NET_RAW"));
    assert.deepEqual(keepalived.inputs["entrypoints"], ["keepalived"]);
    assert.equal(keepalived.inputs["networksAdvanced"], undefined, "no network of its own");
    assert.equal(keepalived.inputs["image"], "sha256:built");
    assert.deepEqual(keepalived.secretInputs, ["uploads"]);
  }
});

test("keepalived.conf is rendered for unicast VRRP between the pair, the first host preferred", () => {
  for (const [i, self, peer, priority] of [
    [0, "172.28.0.10", "172.28.0.11", 150],
    [1, "172.28.0.11", "172.28.0.10", 100],
  ] as const) {
    const keepalived = find(resources, CONTAINER, `cache-proxy-${i}-keepalived`);
    const uploads = keepalived.inputs["uploads"] as { file: string; content: string }[];
    assert.deepEqual(uploads, [
      {
        file: "/etc/keepalived/keepalived.conf",
        content: renderKeepalivedConf({
          instance: "dredis",
          interface: "eth0",
          virtualRouterId: virtualRouterIdFor("cache-proxy"),
          vip: "172.28.0.5",
          vipPrefixLength: 16,
          selfAddress: self,
          peerAddresses: [peer],
          priority,
          healthCheck: {
            command: proxyHealthCheckCommand({ port: 6379, password: "pw-123456789" }),
            intervalSeconds: 1,
            fall: 2,
            rise: 2,
          },
        }),
      },
    ]);
  }
});

test("the endpoint is the floating IP, outside Docker's ipRange", () => {
  assert.equal(endpoint, "172.28.0.5:6379");
  assert.deepEqual(proxyAddresses, ["172.28.0.10:6379", "172.28.0.11:6379"]);
  const network = find(resources, "docker:index/network:Network", "cache-net");
  assert.deepEqual(network.inputs["ipamConfigs"], [
    { subnet: "172.28.0.0/16", gateway: "172.28.0.1", ipRange: "172.28.128.0/17" },
  ]);
});
