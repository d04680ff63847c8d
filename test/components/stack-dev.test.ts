/**
 * The dev stack (stacks/Pulumi.dev.yaml) under mocks: Docker, 3 shards x 1 replica, a
 * load-balanced fleet behind HAProxy. Asserts the resource graph and the inputs that matter.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { parse } from "yaml";
import { parseProxyConfig } from "../../src/proxy/config.ts";
import { parseTopology } from "../../src/cluster/topology.ts";
import { countByType, find, installMocks, ofType, startRun, unwrap, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";
import { renderHaproxyCfg } from "../../components/plan/haproxy.ts";
import { shardHealthCheckScript } from "../../components/plan/health-check.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");

const CONTAINER = "docker:index/container:Container";
type Upload = { file: string; content: string };
type Env = string[];
let resources: Recorded[];
let outputs: Record<string, unknown>;

before(async () => {
  const run = startRun();
  const redis = createStack({ name: "redis", spec: stackSpec("dev") }, run.opts);
  resources = await run.settle();
  outputs = {
    endpoint: await unwrap(redis.endpoint),
    proxyAddresses: await unwrap(redis.proxyAddresses),
    seedNodes: await unwrap(redis.seedNodes),
    password: await unwrap(redis.password),
    topologyHash: await unwrap(redis.topologyHash),
    dockerNetwork: await unwrap(redis.dockerNetwork),
  };
});

const upload = (r: Recorded, file: string) =>
  (r.inputs["uploads"] as Upload[]).find((u) => u.file === file)?.content ??
  assert.fail(`${r.name}: no upload ${file}`);

test("creates the whole graph: 6 shard nodes and their settings writers, 2 proxies, HAProxy, migration, network, images", () => {
  assert.deepEqual(countByType(resources), {
    "distributed-redis:index:DistributedRedis": 1,
    "pulumi:index:Stash": 1,
    "random:index/randomPassword:RandomPassword": 1,
    "docker:index/network:Network": 1,
    "docker:index/image:Image": 1,
    "docker:index/remoteImage:RemoteImage": 2,
    "distributed-redis:index:RedisShard": 3,
    "docker:index/volume:Volume": 6,
    "distributed-redis:index:SlotMigration": 1,
    "distributed-redis:index:ProxyFleet": 1,
    [CONTAINER]: 6 + 6 + 2 + 1 + 1,
  });
  assert.deepEqual(
    ofType(resources, CONTAINER)
      .map((c) => c.name)
      .sort(),
    [
      "redis-migration-run",
      "redis-proxy-0",
      "redis-proxy-1",
      "redis-proxy-lb",
      "redis-shard-0-0",
      "redis-shard-0-0-settings",
      "redis-shard-0-1",
      "redis-shard-0-1-settings",
      "redis-shard-1-0",
      "redis-shard-1-0-settings",
      "redis-shard-1-1",
      "redis-shard-1-1-settings",
      "redis-shard-2-0",
      "redis-shard-2-0-settings",
      "redis-shard-2-1",
      "redis-shard-2-1-settings",
    ],
  );
});

test("every child is named after and parented to its component", () => {
  for (const r of resources) {
    if (r.type === "distributed-redis:index:DistributedRedis") {
      assert.equal(r.parent, undefined);
      continue;
    }
    assert.ok(r.name.startsWith("redis-"), `${r.name} is prefixed with the component name`);
    assert.ok(
      r.parent && r.name.startsWith(r.parent === "redis" ? "redis-" : r.parent),
      `${r.name} under ${r.parent}`,
    );
  }
  assert.equal(find(resources, CONTAINER, "redis-shard-1-0").parent, "redis-shard-1");
  assert.equal(find(resources, CONTAINER, "redis-proxy-lb").parent, "redis-proxy");
  assert.equal(find(resources, CONTAINER, "redis-migration-run").parent, "redis-migration");
  assert.equal(find(resources, "distributed-redis:index:RedisShard", "redis-shard-2").parent, "redis");
});

test("shard nodes run the handover entrypoint on the generated config, with hostnames, volumes and health checks", () => {
  const node = find(resources, CONTAINER, "redis-shard-1-1");
  assert.equal(node.inputs["image"], "sha256:id-of-redis:7.2");
  assert.equal(node.inputs["hostname"], "redis-shard-1-1");
  // The entrypoint (plan/shard-entrypoint.ts) starts redis-server on the config and hands over on SIGTERM.
  const [sh, c, script, ...rest] = node.inputs["command"] as string[];
  assert.deepEqual([sh, c, rest], ["sh", "-c", ["dredis-shard"]]);
  assert.match(script!, /^CONF='\/etc\/redis\/redis\.conf'$/m);
  assert.match(script!, /CLUSTER FAILOVER/);
  assert.deepEqual(node.inputs["networksAdvanced"], [{ name: "redis-net", aliases: ["redis-shard-1-1"] }]);
  assert.deepEqual(node.inputs["volumes"], [{ volumeName: "redis-shard-1-1-data", containerPath: "/data" }]);
  const conf = upload(node, "/etc/redis/redis.conf");
  assert.match(conf, /^cluster-enabled yes$/m);
  assert.match(conf, /^cluster-announce-hostname redis-shard-1-1$/m);
  // maxmemory sits in a file of its own, which later resizes do not touch (they are live).
  assert.match(conf, /^include \/etc\/redis\/memory.conf$/m);
  assert.equal(upload(node, "/etc/redis/memory.conf"), "maxmemory 128mb\n");
  assert.deepEqual(node.options.ignoreChanges, ["uploads[1].content"]);
  // Password and persistence: files on the node's volume, written by its settings container, so
  // a new value replaces only that writer (the migration sets it live on the running node).
  assert.match(conf, /^include \/data\/.dredis\/persistence.conf$/m);
  assert.match(conf, /^include \/data\/.dredis\/auth.conf$/m);
  assert.doesNotMatch(conf, /^(appendonly|save|requirepass) /m);
  const settings = find(resources, CONTAINER, "redis-shard-1-1-settings");
  assert.ok(node.dependsOn.includes("redis-shard-1-1-settings"), "its settings are written first");
  assert.deepEqual(settings.inputs["volumes"], node.inputs["volumes"]);
  assert.equal(settings.inputs["attach"], true);
  assert.equal(
    upload(settings, "/tmp/dredis-settings/auth.conf"),
    "requirepass generated-password-0123456789abcd\nmasterauth generated-password-0123456789abcd\n",
  );
  assert.equal(upload(settings, "/tmp/dredis-settings/password"), "generated-password-0123456789abcd");
  assert.equal(
    upload(settings, "/tmp/dredis-settings/persistence.conf"),
    'appendonly yes\nappendfsync everysec\nsave ""\n',
  );
  assert.deepEqual(settings.secretInputs, ["uploads"], "the password reaches the engine only as a secret");
  assert.equal(node.inputs["envs"], undefined, "no password in the node's inputs");
  // Healthy means back in the cluster and synced (test/components/plan/shard-health-check.test.ts).
  assert.deepEqual((node.inputs["healthcheck"] as { tests: string[] }).tests, [
    "CMD-SHELL",
    shardHealthCheckScript(6379, "/data/.dredis/password"),
  ]);
  assert.equal(node.inputs["memory"], Math.ceil(128 * 1.5) + 32);
  assert.equal(node.inputs["restart"], "unless-stopped");
  assert.equal(node.inputs["wait"], true);
  assert.deepEqual(node.secretInputs, [], "no secret in the node's own inputs");
});

test("the network pins nothing inside Docker's ipRange", () => {
  const network = find(resources, "docker:index/network:Network", "redis-net");
  assert.deepEqual(network.inputs["ipamConfigs"], [
    { subnet: "172.28.0.0/16", gateway: "172.28.0.1", ipRange: "172.28.128.0/17" },
  ]);
});

test("the runtime image is built from the package's Dockerfile", () => {
  const image = find(resources, "docker:index/image:Image", "redis-runtime");
  assert.equal(image.inputs["imageName"], "redis-dredis:local");
  const build = image.inputs["build"] as { context: string; dockerfile: string };
  assert.match(build.dockerfile, /\/Dockerfile$/);
  assert.equal(build.dockerfile, `${build.context}Dockerfile`);
  assert.equal(image.inputs["skipPush"], true);
});

test("the migration runs dredis cluster apply once the shards and network exist, and is checked by hooks", () => {
  const run = find(resources, CONTAINER, "redis-migration-run");
  const command = run.inputs["command"] as string[];
  assert.deepEqual(command.slice(0, 3), ["cluster", "apply", "--topology"]);
  const topology = parseTopology(JSON.parse(command[3]!));
  assert.deepEqual(
    topology.shards.map((s) => [s.name, s.master, s.replicas]),
    [0, 1, 2].map((i) => [`shard-${i}`, `redis-shard-${i}-0:6379`, [`redis-shard-${i}-1:6379`]]),
  );
  assert.equal(run.inputs["image"], "sha256:built", "the built image by its ID, not its tag");
  assert.deepEqual(run.inputs["envs"] as Env, [
    "DREDIS_PASSWORD=generated-password-0123456789abcd",
    `TOPOLOGY_HASH=${outputs["topologyHash"] as string}`,
    "DREDIS_MAXMEMORY=128mb",
    "DREDIS_PERSISTENCE=aof",
  ]);
  assert.equal(run.inputs["attach"], true);
  assert.equal(run.inputs["logs"], true);
  assert.equal(run.inputs["mustRun"], false);
  assert.deepEqual(run.secretInputs, ["envs"]);
  assert.deepEqual(run.dependsOn.sort(), ["redis-net", "redis-shard-0", "redis-shard-1", "redis-shard-2"]);
  assert.deepEqual(run.hooks, { afterCreate: ["redis-migration-run-succeeded"] });
  const component = find(resources, "distributed-redis:index:SlotMigration", "redis-migration");
  assert.deepEqual(component.hooks, {
    beforeCreate: ["redis-migration-topology-guard"],
    beforeUpdate: ["redis-migration-topology-guard"],
  });
  assert.equal(component.inputs["topology"], command[3]);
});

test("proxies run dredis proxy on a config their own parser accepts, behind HAProxy", () => {
  for (const i of [0, 1]) {
    const proxy = find(resources, CONTAINER, `redis-proxy-${i}`);
    assert.deepEqual(proxy.inputs["command"], ["proxy", "--config", "/etc/dredis/proxy.yaml"]);
    assert.equal(proxy.inputs["image"], "sha256:built");
    const config = parseProxyConfig(parse(upload(proxy, "/etc/dredis/proxy.yaml")));
    assert.equal(config.listen.port, 6380);
    assert.equal(config.workers, 2);
    assert.equal(config.clientPassword, "generated-password-0123456789abcd");
    assert.deepEqual(config.seeds, outputs["seedNodes"]);
    assert.match(
      (proxy.inputs["healthcheck"] as { tests: string[] }).tests.join(" "),
      /127\.0\.0\.1:9121\/readyz/,
    );
    assert.deepEqual(proxy.inputs["networksAdvanced"], [
      { name: "redis-net", aliases: [`redis-proxy-${i}`, "redis-proxy-hosts"] },
    ]);
  }
  const lb = find(resources, CONTAINER, "redis-proxy-lb");
  assert.equal(lb.inputs["image"], "sha256:id-of-haproxy:2.8");
  assert.deepEqual(lb.inputs["ports"], [{ internal: 6380, external: 6380 }]);
  assert.equal(
    upload(lb, "/usr/local/etc/haproxy/haproxy.cfg"),
    renderHaproxyCfg({
      bind: { host: "0.0.0.0", port: 6380 },
      // The hosts by the alias they share, checked for readiness: neither a new host nor a new
      // password changes this file (a change would replace HAProxy, and the endpoint with it).
      backends: [],
      discover: { host: "redis-proxy-hosts", port: 6380, slots: 64 },
      httpCheck: { port: 9121, path: "/readyz" },
      check: { intervalMs: 2000, fall: 3, rise: 2 },
    }),
  );
  assert.deepEqual(lb.dependsOn.sort(), ["redis-proxy-0", "redis-proxy-1"]);
  assert.deepEqual(find(resources, "distributed-redis:index:ProxyFleet", "redis-proxy").dependsOn, [
    "redis-migration",
  ]);
});

test("outputs give apps the endpoint, proxies, seeds, the password as a secret and the topology hash", async () => {
  assert.equal(outputs["endpoint"], "127.0.0.1:6380");
  assert.deepEqual(outputs["proxyAddresses"], ["redis-proxy-0:6380", "redis-proxy-1:6380"]);
  assert.equal((outputs["seedNodes"] as string[]).length, 6);
  assert.equal(outputs["password"], "generated-password-0123456789abcd");
  assert.match(outputs["topologyHash"] as string, /^[0-9a-f]{16}$/);
  assert.equal(outputs["dockerNetwork"], "redis-net");
});
