/**
 * Changes that replace containers replace one node at a time. Mocks have no engine; what decides
 * its schedule is asserted: the engine starts a resource's step only once the steps of everything
 * in its dependsOn completed, and a Docker container's create completes when its health check
 * passes (`wait`). So containers chained by dependsOn, each healthy before the next goes, are
 * replaced one at a time, in chain order.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ClusterSpec } from "../../components/plan/spec.ts";
import { installMocks, ofType, startRun, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");

const CONTAINER = "docker:index/container:Container";

async function deploy(spec: ClusterSpec): Promise<Recorded[]> {
  const run = startRun();
  createStack({ name: "redis", spec }, run.opts);
  return run.settle();
}

/** Follows dependsOn from the one resource nothing in `group` waits for; fails unless it is one chain. */
function chainOrder(group: Recorded[]): string[] {
  const names = new Set(group.map((r) => r.name));
  // (A Kubernetes shard's Service shares its StatefulSet's name: a resource never waits for itself.)
  const waitsFor = new Map(
    group.map((r) => [r.name, r.dependsOn.filter((d) => names.has(d) && d !== r.name)]),
  );
  const heads = group.filter((r) => waitsFor.get(r.name)!.length === 0);
  assert.equal(heads.length, 1, `one chain, not several: ${heads.map((r) => r.name).join(", ")}`);
  const order = [heads[0]!.name];
  for (;;) {
    const next = group.filter((r) => waitsFor.get(r.name)!.includes(order.at(-1)!));
    if (next.length === 0) break;
    assert.equal(next.length, 1, `${order.at(-1)} is waited for by one resource only`);
    order.push(next[0]!.name);
  }
  assert.equal(order.length, group.length, `every resource is in the chain: ${order.join(" -> ")}`);
  return order;
}

test("docker: shard containers form one chain, shard by shard, each shard's replicas before its master", async () => {
  const resources = await deploy({ ...stackSpec("dev"), replicasPerShard: 2 });
  const nodes = ofType(resources, CONTAINER).filter((c) => /^redis-shard-\d+-\d+$/.test(c.name));
  assert.deepEqual(
    chainOrder(nodes),
    [0, 1, 2].flatMap((s) => [1, 2, 0].map((n) => `redis-shard-${s}-${n}`)),
  );
  for (const node of nodes) {
    assert.equal(node.inputs["wait"], true, `${node.name}: its create completes only when healthy`);
    assert.equal(node.inputs["stopTimeout"], 60, `${node.name}: time to hand over before it is killed`);
    assert.equal(node.inputs["destroyGraceSeconds"], 60, `${node.name}: stopped, not killed, when replaced`);
    assert.equal(node.options.deleteBeforeReplace, true);
  }
});

test("docker: growing the cluster appends the new shards to the chain and leaves the old links alone", async () => {
  const three = await deploy(stackSpec("dev"));
  const five = await deploy({ ...stackSpec("dev"), shards: 5 });
  const deps = (resources: Recorded[]) =>
    new Map(ofType(resources, CONTAINER).map((c) => [c.name, c.dependsOn.join(",")]));
  for (const [name, before] of deps(three))
    if (name.startsWith("redis-shard-")) assert.equal(deps(five).get(name), before);
  // After the previous shard's master, and its own settings writer.
  assert.equal(deps(five).get("redis-shard-3-1"), "redis-shard-2-0,redis-shard-3-1-settings");
});

test("docker: proxies are replaced one host at a time, each with its keepalived back first", async () => {
  const balanced = await deploy({ ...stackSpec("dev"), proxyHosts: 3 });
  const proxies = ofType(balanced, CONTAINER).filter((c) => /^redis-proxy-\d$/.test(c.name));
  assert.deepEqual(chainOrder(proxies), ["redis-proxy-0", "redis-proxy-1", "redis-proxy-2"]);
  for (const proxy of proxies) assert.equal(proxy.inputs["wait"], true, proxy.name);

  const pair = await deploy({ ...stackSpec("dev"), proxyMode: "master-backup", proxyHosts: 2 });
  const second = pair.find((r) => r.name === "redis-proxy-1")!;
  assert.deepEqual(second.dependsOn.sort(), ["redis-proxy-0", "redis-proxy-0-keepalived"]);
});

test("kubernetes: one shard's StatefulSet rolls at a time", async () => {
  const sets = ofType(await deploy(stackSpec("prod")), "kubernetes:apps/v1:StatefulSet");
  assert.deepEqual(
    chainOrder(sets),
    [0, 1, 2, 3, 4, 5].map((s) => `redis-shard-${s}`),
  );
});

test("docker: a new shardMemoryMb changes only what is applied live (ignored upload) or in place (memory)", async () => {
  const small = ofType(await deploy(stackSpec("dev")), CONTAINER).filter((c) =>
    c.name.startsWith("redis-shard-"),
  );
  const big = ofType(await deploy({ ...stackSpec("dev"), shardMemoryMb: 512 }), CONTAINER).filter((c) =>
    c.name.startsWith("redis-shard-"),
  );
  // The settings writers do not change either (no password or persistence in this change).
  const nodesOnly = (c: Recorded) => /^redis-shard-\d+-\d+$/.test(c.name);
  assert.deepEqual(
    small.filter((c) => !nodesOnly(c)).map((c) => JSON.stringify(c.inputs)),
    big.filter((c) => !nodesOnly(c)).map((c) => JSON.stringify(c.inputs)),
  );
  const bigNodes = big.filter(nodesOnly);
  small.filter(nodesOnly).forEach((before, i) => {
    const after = bigNodes[i]!;
    const changed = Object.keys(after.inputs).filter(
      (key) => JSON.stringify(after.inputs[key]) !== JSON.stringify(before.inputs[key]),
    );
    // `memory` is updated in place by the provider (docker update), not replaced; `memorySwap` goes
    // with it (docker-memory.test.ts: Docker refuses a memory above the swap total already set).
    assert.deepEqual(changed.sort(), ["memory", "memorySwap", "uploads"], before.name);
    const uploads = (r: Recorded) => r.inputs["uploads"] as { file: string; content: string }[];
    assert.deepEqual(uploads(after).slice(0, 1), uploads(before).slice(0, 1), "redis.conf unchanged");
    assert.equal(uploads(after)[1]!.file, "/etc/redis/memory.conf");
    assert.deepEqual(after.options.ignoreChanges, ["uploads[1].content"]);
  });
});
