import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { parseTopology } from "../../../src/cluster/topology.ts";
import { clusterSpecSchema, type ClusterSpec } from "../../../components/plan/spec.ts";
import { checkComponentName, planCluster } from "../../../components/plan/topology.ts";

const specArb = fc.record({
  platform: fc.constantFrom("docker" as const, "kubernetes" as const),
  shards: fc.integer({ min: 3, max: 40 }),
  replicasPerShard: fc.integer({ min: 0, max: 3 }),
  shardMemoryMb: fc.integer({ min: 32, max: 4096 }),
  namespace: fc.constantFrom("default", "redis", "team-a"),
});
const nameArb = fc.constantFrom("redis", "cache", "r2", "prod-sessions");

type SpecInput = {
  platform: "docker" | "kubernetes";
  shards: number;
  replicasPerShard: number;
  shardMemoryMb: number;
  namespace: string;
};

function spec(input: SpecInput): ClusterSpec {
  return clusterSpecSchema.parse({ ...input, image: "dredis:test" });
}

test("existing shards keep names, hostnames and addresses when shards are added", () => {
  fc.assert(
    fc.property(nameArb, specArb, fc.integer({ min: 1, max: 20 }), (name, input, extra) => {
      const before = planCluster(name, spec(input));
      const after = planCluster(name, spec({ ...input, shards: input.shards + extra }));
      assert.equal(after.shards.length, before.shards.length + extra);
      assert.deepEqual(after.shards.slice(0, before.shards.length), before.shards);
      assert.deepEqual(after.topology.shards.slice(0, before.shards.length), before.topology.shards);
      // The proxies' config depends on these only, so it never changes with the shard count.
      assert.deepEqual(after.proxySeeds, before.proxySeeds);
    }),
  );
});

test("every name and address is unique and every node is in the topology once", () => {
  fc.assert(
    fc.property(nameArb, specArb, (name, input) => {
      const plan = planCluster(name, spec(input));
      const nodes = plan.shards.flatMap((s) => s.nodes);
      assert.equal(nodes.length, input.shards * (1 + input.replicasPerShard));
      assert.equal(new Set(nodes.map((n) => n.resourceName)).size, nodes.length);
      assert.equal(new Set(nodes.map((n) => n.hostname)).size, nodes.length);
      assert.deepEqual(
        plan.seeds,
        nodes.map((n) => n.address),
      );
      // The topology document is what the CLI parses: it must pass its own schema.
      assert.deepEqual(parseTopology(JSON.parse(JSON.stringify(plan.topology))), plan.topology);
    }),
  );
});

test("kubernetes hostnames resolve through each shard's headless service", () => {
  const plan = planCluster(
    "redis",
    spec({ platform: "kubernetes", shards: 3, replicasPerShard: 1, shardMemoryMb: 64, namespace: "team-a" }),
  );
  assert.deepEqual(plan.topology.shards[1], {
    name: "shard-1",
    master: "redis-shard-1-0.redis-shard-1.team-a.svc.cluster.local:6379",
    replicas: ["redis-shard-1-1.redis-shard-1.team-a.svc.cluster.local:6379"],
  });
});

/** A second deployment derived from the first by one edit, or none: equal topologies must occur. */
const editArb = fc.oneof(
  fc.constant((s: SpecInput) => s),
  fc.constant((s: SpecInput) => ({ ...s, shardMemoryMb: s.shardMemoryMb + 1 })),
  fc.constant((s: SpecInput) => ({ ...s, namespace: s.namespace === "default" ? "redis" : "default" })),
  fc.constant((s: SpecInput) => ({
    ...s,
    platform: s.platform === "docker" ? ("kubernetes" as const) : ("docker" as const),
  })),
  fc.integer({ min: 1, max: 3 }).map((n) => (s: SpecInput) => ({ ...s, shards: s.shards + n })),
  fc
    .integer({ min: 1, max: 2 })
    .map((n) => (s: SpecInput) => ({ ...s, replicasPerShard: s.replicasPerShard + n })),
);

test("the topology hash changes exactly when the topology does", () => {
  fc.assert(
    fc.property(nameArb, nameArb, specArb, editArb, (nameA, nameB, a, edit) => {
      const planA = planCluster(nameA, spec(a));
      const planB = planCluster(nameB, spec(edit(a)));
      const sameTopology = JSON.stringify(planA.topology) === JSON.stringify(planB.topology);
      assert.equal(planA.topologyHash === planB.topologyHash, sameTopology);
    }),
    { numRuns: 300 },
  );
  // Memory is not topology: resizing alone keeps the hash (the workload carries maxmemory apart).
  const base = {
    platform: "docker" as const,
    shards: 3,
    replicasPerShard: 1,
    shardMemoryMb: 64,
    namespace: "default",
  };
  assert.equal(
    planCluster("redis", spec(base)).topologyHash,
    planCluster("redis", spec({ ...base, shardMemoryMb: 128 })).topologyHash,
  );
  assert.notEqual(
    planCluster("redis", spec(base)).topologyHash,
    planCluster("redis", spec({ ...base, shards: 4 })).topologyHash,
  );
});

test("component names that cannot prefix every object are refused, naming the rule", () => {
  for (const bad of ["Redis", "1redis", "redis_x", "a".repeat(41), "redis-"]) {
    assert.throws(() => checkComponentName(bad), /invalid component name .*at most 40 lower-case letters/);
  }
  checkComponentName("a".repeat(40));
});
