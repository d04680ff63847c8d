/**
 * The day-2 diff model on hand-made states: what it replaces, what it orders, what it counts as
 * down. Each case is one the engine or a provider decides in a way a plain input diff would miss.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  changedPaths,
  disruption,
  formatPath,
  parsePath,
  planUpdate,
  type Classify,
  type Plan,
} from "./engine.ts";
import type { State } from "./record.ts";

const CONTAINER = "docker:index/container:Container";
const STATEFUL_SET = "kubernetes:apps/v1:StatefulSet";

function state(name: string, inputs: Record<string, unknown>, more: Partial<State> = {}): State {
  const type = more.type ?? CONTAINER;
  return {
    key: `${type}::${name}`,
    type,
    name,
    custom: true,
    inputs,
    dependencies: [],
    propertyDependencies: {},
    deleteBeforeReplace: false,
    ignoreChanges: [],
    replaceOnChanges: [],
    ...more,
  };
}

const graph = (...states: State[]) => new Map(states.map((s) => [s.key, s]));
const step = (plan: Plan, name: string) => [...plan.values()].find((s) => s.key.endsWith(`::${name}`))!;
const node = (name: string, memory: number, conf: string, more: Partial<State> = {}) =>
  state(
    name,
    { name, image: "redis", memory, uploads: [{ file: "/etc/redis/redis.conf", content: conf }] },
    more,
  );
const byShard: Classify = (s) => {
  const match = /^shard-(\d+)-\d+$/.exec(s.name);
  return match ? { role: "data", group: match[1]!, nodes: 1 } : undefined;
};

test("paths: nested changes are reported where they happen, a resized list as a whole", () => {
  assert.deepEqual(
    changedPaths({ a: [{ b: 1 }, { b: 2 }], c: 1 }, { a: [{ b: 1 }, { b: 3 }], c: 1 }).map(formatPath),
    ["a[1].b"],
  );
  assert.deepEqual(changedPaths({ a: [1] }, { a: [1, 2] }).map(formatPath), ["a"]);
  assert.deepEqual(parsePath(".spec.template.spec.containers[*].image"), [
    "spec",
    "template",
    "spec",
    "containers",
    "*",
    "image",
  ]);
  assert.deepEqual(parsePath('metadata.annotations["dredis.io/hash"]'), [
    "metadata",
    "annotations",
    "dredis.io/hash",
  ]);
});

test("docker: memory is updated in place, a changed upload replaces the container, deleting it first", () => {
  const plan = planUpdate(
    graph(node("shard-0-0", 100, "maxmemory 1mb")),
    graph(node("shard-0-0", 200, "maxmemory 1mb")),
  );
  assert.equal(step(plan, "shard-0-0").action, "update");
  const replaced = step(
    planUpdate(
      graph(node("shard-0-0", 100, "maxmemory 1mb")),
      graph(node("shard-0-0", 100, "maxmemory 2mb")),
    ),
    "shard-0-0",
  );
  assert.equal(replaced.action, "replace");
  assert.equal(
    replaced.deleteBeforeReplace,
    true,
    "the provider deletes a container first, whatever the options",
  );
  assert.deepEqual(replaced.replaceBecause, ["uploads[0].content"]);
});

test("ignoreChanges hides a change from the diff; replaceOnChanges turns an update into a replacement", () => {
  const ignored = planUpdate(
    graph(node("shard-0-0", 100, "a")),
    graph(node("shard-0-0", 100, "b", { ignoreChanges: ["uploads"] })),
  );
  assert.equal(step(ignored, "shard-0-0").action, "same");
  const forced = planUpdate(
    graph(node("shard-0-0", 100, "a")),
    graph(node("shard-0-0", 200, "a", { replaceOnChanges: ["memory"] })),
  );
  assert.equal(step(forced, "shard-0-0").action, "replace");
});

test("an input the schema data does not classify is an error, not a guess", () => {
  assert.throws(
    () => planUpdate(graph(state("x", { noSuchInput: 1 })), graph(state("x", { noSuchInput: 2 }))),
    /noSuchInput is in neither list/,
  );
});

test("kubernetes: a pod-template change updates a StatefulSet; a new volume claim template replaces it, named so deleted first", () => {
  const sts = (image: string, storage: string, name?: string) =>
    state(
      "shard-0",
      {
        metadata: name ? { name, namespace: "redis" } : { namespace: "redis" },
        spec: {
          replicas: 2,
          template: { spec: { containers: [{ image }] } },
          volumeClaimTemplates: [{ spec: { resources: { requests: { storage } } } }],
        },
      },
      { type: STATEFUL_SET },
    );
  assert.equal(
    step(planUpdate(graph(sts("redis:7.2", "1Gi", "s")), graph(sts("redis:7.4", "1Gi", "s"))), "shard-0")
      .action,
    "update",
  );
  const named = step(
    planUpdate(graph(sts("redis:7.2", "1Gi", "s")), graph(sts("redis:7.2", "2Gi", "s"))),
    "shard-0",
  );
  assert.deepEqual([named.action, named.deleteBeforeReplace], ["replace", true]);
  const autoNamed = step(
    planUpdate(graph(sts("redis:7.2", "1Gi")), graph(sts("redis:7.2", "2Gi"))),
    "shard-0",
  );
  assert.deepEqual([autoNamed.action, autoNamed.deleteBeforeReplace], ["replace", false]);
});

test("a delete-before-replace replaces dependents whose replace-on-change input came from it, not those that only dependsOn it", () => {
  const proxy = (conf: string) => node("proxy-0", 100, conf);
  const keepalived = state(
    "keepalived-0",
    { networkMode: "container:proxy-0-id" },
    {
      dependencies: [`${CONTAINER}::proxy-0`],
      propertyDependencies: { networkMode: [`${CONTAINER}::proxy-0`] },
    },
  );
  const balancer = state("lb", { memory: 1 }, { dependencies: [`${CONTAINER}::proxy-0`] });
  const plan = planUpdate(graph(proxy("a"), keepalived, balancer), graph(proxy("b"), keepalived, balancer));
  assert.equal(step(plan, "keepalived-0").action, "replace");
  assert.match(step(plan, "keepalived-0").replaceBecause.join(), /networkMode \(from .*proxy-0\)/);
  assert.equal(step(plan, "lb").action, "same");
});

test("replacements that do not wait for each other are down together; a dependsOn chain takes them one at a time", () => {
  const olds = graph(node("shard-0-0", 1, "a"), node("shard-0-1", 1, "a"), node("shard-1-0", 1, "a"));
  const parallel = graph(node("shard-0-0", 1, "b"), node("shard-0-1", 1, "b"), node("shard-1-0", 1, "b"));
  const together = disruption(planUpdate(olds, parallel), olds, parallel, byShard);
  assert.deepEqual([together.maxDownInGroup.data, together.maxGroupsDown.data], [2, 2]);

  const chained = graph(
    node("shard-0-0", 1, "b"),
    node("shard-0-1", 1, "b", { dependencies: [`${CONTAINER}::shard-0-0`] }),
    node("shard-1-0", 1, "b", { dependencies: [`${CONTAINER}::shard-0-1`] }),
  );
  const oneByOne = disruption(planUpdate(olds, chained), olds, chained, byShard);
  assert.deepEqual([oneByOne.maxDownInGroup.data, oneByOne.maxGroupsDown.data], [1, 1]);
  assert.equal(oneByOne.outages.length, 3);
});

test("a parent's dependencies order its children too", () => {
  const parent = state(
    "shard-1",
    {},
    { type: "distributed-redis:index:RedisShard", custom: false, dependencies: [`${CONTAINER}::shard-0-0`] },
  );
  const olds = graph(node("shard-0-0", 1, "a"), parent, node("shard-1-0", 1, "a", { parent: parent.key }));
  const news = graph(node("shard-0-0", 1, "b"), parent, node("shard-1-0", 1, "b", { parent: parent.key }));
  assert.equal(disruption(planUpdate(olds, news), olds, news, byShard).maxGroupsDown.data, 1);
});

test("a rolling StatefulSet update takes one pod down, OnDelete none; deletes of a removed shard are not outages", () => {
  const sts = (name: string, image: string, strategy?: string) =>
    state(
      name,
      {
        metadata: { name },
        spec: {
          replicas: 3,
          ...(strategy ? { updateStrategy: { type: strategy } } : {}),
          template: { spec: { containers: [{ image }] } },
        },
      },
      { type: STATEFUL_SET },
    );
  const classify: Classify = (s) => ({ role: "data", group: s.name, nodes: 3 });
  const olds = graph(sts("a", "r:1"), sts("b", "r:1", "OnDelete"), sts("c", "r:1"));
  const news = graph(sts("a", "r:2"), sts("b", "r:2", "OnDelete"));
  const d = disruption(planUpdate(olds, news), olds, news, classify);
  assert.deepEqual(
    d.outages.map((o) => [o.step.key, o.down]),
    [[`${STATEFUL_SET}::a`, 1]],
  );
  assert.deepEqual(d.retired, ["c"]);
});

test("kubernetes: a named Secret with new data is deleted and created again (Secrets are immutable to the provider by default)", () => {
  const secret = (password: string, name?: string) =>
    state(
      "auth",
      { metadata: name ? { name } : {}, stringData: { password } },
      { type: "kubernetes:core/v1:Secret" },
    );
  const named = step(planUpdate(graph(secret("a", "auth")), graph(secret("b", "auth"))), "auth");
  assert.deepEqual(
    [named.action, named.deleteBeforeReplace, named.replaceBecause],
    ["replace", true, ["stringData.password"]],
  );
  const labelled = state(
    "auth",
    { metadata: { name: "auth", labels: { a: "1" } }, stringData: { password: "a" } },
    { type: "kubernetes:core/v1:Secret" },
  );
  assert.equal(step(planUpdate(graph(secret("a", "auth")), graph(labelled)), "auth").action, "update");
});
