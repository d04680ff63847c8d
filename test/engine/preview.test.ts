/**
 * `pulumi preview` of the staging and prod stacks by the real engine, Node language host and
 * Kubernetes provider (no cluster: the provider previews without one). The engine's plan lists the
 * resources, names and parents the mock tests assert (test/components/stack-*.test.ts), with the
 * password set as a config secret (so no RandomPassword, whose provider does not build here), and
 * a bad stack config fails the preview naming the key.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  createWorkspace,
  parsePreview,
  urnName,
  urnType,
  type Preview,
  type Workspace,
} from "./support/engine.ts";
import {
  PROD_RESOURCES,
  STAGING_RESOURCES,
  withoutRandomPassword,
} from "../components/support/expected-resources.ts";

const STACK_TYPE = "pulumi:pulumi:Stack";

function countByType(preview: Preview): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const step of preview.steps) {
    const type = urnType(step.urn);
    if (type === STACK_TYPE || type.startsWith("pulumi:providers:")) continue;
    counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

/** name -> parent name, for every resource of the program (the stack's own name is "stack"). */
function parents(preview: Preview): Map<string, string> {
  const byName = new Map<string, string>();
  for (const step of preview.steps) {
    const type = urnType(step.urn);
    if (type === STACK_TYPE || type.startsWith("pulumi:providers:")) continue;
    const parent = step.newState?.parent;
    assert.ok(parent, `${step.urn} has a parent`);
    byName.set(`${type} ${urnName(step.urn)}`, urnType(parent) === STACK_TYPE ? "stack" : urnName(parent));
  }
  return byName;
}

function assertNamedAfterParents(preview: Preview): void {
  for (const [key, parent] of parents(preview)) {
    const name = key.slice(key.indexOf(" ") + 1);
    if (parent === "stack") assert.equal(key, "distributed-redis:index:DistributedRedis redis");
    else assert.ok(name.startsWith(parent === "redis" ? "redis-" : parent), `${key} under ${parent}`);
  }
}

describe("staging preview", () => {
  let ws: Workspace;
  let preview: Preview;
  before(() => {
    ws = createWorkspace("staging");
    preview = parsePreview(ws.pulumiOk(["preview", "--json", "--stack", "staging"]).stdout);
  });
  after(() => ws?.dispose());

  test("creates what the mock test counts (less the RandomPassword: the password is a config secret)", () => {
    assert.ok(
      preview.steps.every((s) => s.op === "create"),
      "a first preview only creates",
    );
    assert.deepEqual(countByType(preview), withoutRandomPassword(STAGING_RESOURCES));
  });

  test("every child is named after and parented to its component, as the engine records it", () => {
    assertNamedAfterParents(preview);
    const p = parents(preview);
    assert.equal(p.get("distributed-redis:index:RedisShard redis-shard-2"), "redis");
    assert.equal(p.get("kubernetes:apps/v1:StatefulSet redis-shard-2"), "redis-shard-2");
    assert.equal(p.get("kubernetes:batch/v1:Job redis-migration-run"), "redis-migration");
    assert.equal(p.get("kubernetes:apps/v1:Deployment redis-proxy"), "redis-proxy");
  });

  test("the proxy Service carries the fixed IP annotations into the engine's plan", () => {
    const service = preview.steps.find(
      (s) => urnType(s.urn) === "kubernetes:core/v1:Service" && urnName(s.urn) === "redis-proxy",
    );
    const metadata = service?.newState?.inputs?.["metadata"] as { annotations: Record<string, string> };
    assert.equal(metadata.annotations["metallb.io/loadBalancerIPs"], "10.20.0.50");
  });
});

describe("prod preview", () => {
  let ws: Workspace;
  let preview: Preview;
  before(() => {
    ws = createWorkspace("prod");
    preview = parsePreview(ws.pulumiOk(["preview", "--json", "--stack", "prod"]).stdout);
  });
  after(() => ws?.dispose());

  test("lists every resource the mock test expects, with the same names and parents", () => {
    assert.deepEqual(countByType(preview), PROD_RESOURCES);
    assertNamedAfterParents(preview);
    const p = parents(preview);
    assert.equal(p.get("kubernetes:apps/v1:StatefulSet redis-shard-5"), "redis-shard-5");
    assert.equal(p.get("kubernetes:batch/v1:Job redis-migration-run"), "redis-migration");
  });

  test("the StatefulSets go to the namespace of the stack file with 3 pods per shard", () => {
    const sets = preview.steps.filter((s) => urnType(s.urn) === "kubernetes:apps/v1:StatefulSet");
    assert.equal(sets.length, 6);
    for (const set of sets) {
      const inputs = set.newState!.inputs!;
      assert.equal((inputs["metadata"] as { namespace: string }).namespace, "redis");
      assert.equal((inputs["spec"] as { replicas: number }).replicas, 3);
    }
  });
});

describe("invalid stack config", () => {
  let ws: Workspace;
  before(() => {
    ws = createWorkspace("staging");
  });
  after(() => ws?.dispose());

  test("fails `pulumi preview` naming each bad key as the stack file spells it", () => {
    ws.setConfig({ shards: 2, proxyMod: "load-balanced" });
    const result = ws.pulumi(["preview", "--stack", "staging"]);
    assert.notEqual(result.status, 0);
    const out = result.stdout + result.stderr;
    assert.match(out, /invalid stack config:/);
    assert.match(out, /distributed-redis:shards: Redis Cluster needs at least 3 shards/);
    assert.match(out, /distributed-redis:proxyMod: unknown key/);
  });
});
