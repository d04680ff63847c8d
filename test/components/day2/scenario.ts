/**
 * A day-2 change as two `pulumi up` runs of the example stack under mocks, and what the engine
 * would do between them (see engine.ts). Import after `installRecorder()`.
 */
import assert from "node:assert/strict";
import type { ClusterSpec } from "../../../components/plan/spec.ts";
import { createStack } from "../../../components/stack.ts";
import { disruption, planUpdate, type Classify, type Disruption, type Plan } from "./engine.ts";
import { record, type Outputs, type State } from "./record.ts";

export interface Deployment {
  spec: ClusterSpec;
  password?: string;
  /** The rotation's previous password (DistributedRedisArgs.previousPassword). */
  previousPassword?: string;
  /** Provider outputs that differ from the defaults in this run (e.g. a rebuilt image's digest). */
  outputs?: Outputs;
}

export interface Change {
  olds: Map<string, State>;
  news: Map<string, State>;
  plan: Plan;
  disruption: Disruption;
  /** Action on the one resource named `name`, whatever its type. */
  action(name: string): string;
}

const NAME = "redis";
const CONTAINER = "docker:index/container:Container";

export async function change(before: Deployment, after: Deployment): Promise<Change> {
  const run = async (d: Deployment) => {
    const states = await record(
      (opts) =>
        createStack(
          { name: NAME, spec: d.spec, password: d.password, previousPassword: d.previousPassword },
          opts,
        ),
      d.outputs,
    );
    assertClassified(states, d.spec);
    return states;
  };
  const olds = await run(before);
  const news = await run(after);
  const plan = planUpdate(olds, news);
  return {
    olds,
    news,
    plan,
    disruption: disruption(plan, olds, news, classify),
    action(name) {
      const steps = [...plan.values()].filter((s) => s.key.endsWith(`::${name}`));
      if (steps.length !== 1) throw new Error(`${steps.length} resources named ${name}`);
      return steps[0]!.action;
    },
  };
}

/**
 * Shard nodes hold data: a Docker container (and its volume) per node, a StatefulSet per shard
 * on Kubernetes. Proxy hosts: a Docker container (and its keepalived) per host, one Deployment on
 * Kubernetes. The endpoint: HAProxy, or the fleet's Service.
 */
export const classify: Classify = (state) => {
  const shardNode = /^redis-shard-(\d+)-\d+(-data)?$/.exec(state.name);
  if (
    shardNode &&
    (state.type === "docker:index/container:Container" || state.type === "docker:index/volume:Volume")
  )
    return { role: "data", group: `shard-${shardNode[1]}`, nodes: 1 };
  const shard = /^redis-shard-(\d+)$/.exec(state.name);
  if (shard && state.type === "kubernetes:apps/v1:StatefulSet")
    return {
      role: "data",
      group: `shard-${shard[1]}`,
      nodes: Number((state.inputs["spec"] as { replicas: number }).replicas),
    };
  const host = /^(redis-proxy-\d+)(-keepalived)?$/.exec(state.name);
  if (host && state.type === "docker:index/container:Container")
    return { role: "proxy", group: host[1]!, nodes: 1 };
  if (state.name === "redis-proxy" && state.type === "kubernetes:apps/v1:Deployment")
    return {
      role: "proxy",
      group: "redis-proxy",
      nodes: Number((state.inputs["spec"] as { replicas: number }).replicas),
    };
  if (
    (state.name === "redis-proxy-lb" && state.type === "docker:index/container:Container") ||
    (state.name === "redis-proxy" && state.type === "kubernetes:core/v1:Service")
  )
    return { role: "endpoint", group: "endpoint", nodes: 1 };
  return undefined;
};

/**
 * Every shard and the proxies are recognised by `classify`: were a component to rename them, the
 * invariants would otherwise hold vacuously.
 */
function assertClassified(states: Map<string, State>, spec: ClusterSpec): void {
  const roles = [...states.values()].map(classify).filter((r) => r !== undefined);
  const shards = new Set(roles.filter((r) => r.role === "data").map((r) => r.group));
  assert.equal(shards.size, spec.shards, `classify finds ${shards.size} of ${spec.shards} shards`);
  assert.ok(
    roles.some((r) => r.role === "proxy"),
    "classify finds no proxy host",
  );
  assert.ok(
    roles.some((r) => r.role === "endpoint") || spec.proxyMode === "master-backup",
    "classify finds no endpoint",
  );
}

/** Proxy hosts down at once: one group per host on Docker, one Deployment of all hosts on Kubernetes. */
export function proxyHostsDown(d: Disruption): number {
  return Math.max(
    d.maxGroupsDown.proxy,
    d.outages.some((o) => o.step.key.includes("Deployment")) ? d.maxDownInGroup.proxy : 0,
  );
}

/** Data-holding resources the plan replaces or restarts (by any step that takes a node down). */
export function dataNodesTouched(c: Change): string[] {
  const replaced = [...c.plan.values()].filter((s) => {
    const state = c.news.get(s.key) ?? c.olds.get(s.key)!;
    return s.action === "replace" && classify(state)?.role === "data";
  });
  const down = c.disruption.outages.filter((o) => o.role.role === "data").map((o) => o.step);
  return [
    ...new Set(
      [...replaced, ...down].map(
        (s) => `${s.key} (${s.action}: ${s.replaceBecause.join(", ") || s.changed.join(", ")})`,
      ),
    ),
  ];
}

/**
 * The one-shot workloads (a Docker container run with `attach`, a Kubernetes Job) this update
 * runs: the migration, or whatever applies live changes inside the network.
 */
export function workloadsRun(c: Change): string[] {
  return [...c.plan.values()]
    .filter((s) => s.action === "create" || s.action === "replace")
    .map((s) => c.news.get(s.key)!)
    .filter(
      (r) => r.type === "kubernetes:batch/v1:Job" || (r.type === CONTAINER && r.inputs["attach"] === true),
    )
    .map((r) => r.name);
}

/**
 * The invariants for any day-2 change: at most one node of a shard down at once, at most
 * one shard with a node down at once, at most one proxy host down at once, the endpoint never down.
 */
export function assertRollsOneAtATime(c: Change): void {
  const d = c.disruption;
  const outages = d.outages.map((o) => `${o.step.key} (${o.step.action}, ${o.down} down)`).join("\n  ");
  assert.ok(
    d.maxDownInGroup.data <= 1,
    `${d.maxDownInGroup.data} nodes of one shard down at once:\n  ${outages}`,
  );
  assert.ok(
    d.maxGroupsDown.data <= 1,
    `${d.maxGroupsDown.data} shards with a node down at once:\n  ${outages}`,
  );
  assert.ok(proxyHostsDown(d) <= 1, `${proxyHostsDown(d)} proxy hosts down at once:\n  ${outages}`);
  assert.equal(d.maxGroupsDown.endpoint, 0, `the endpoint goes down:\n  ${outages}`);
}

/** A change Redis takes live: no shard node replaced or restarted, and the workload that applies it runs. */
export function assertAppliedLive(c: Change): void {
  assert.deepEqual(
    dataNodesTouched(c),
    [],
    "shard nodes replaced or restarted for a change Redis takes live",
  );
  assert.notDeepEqual(
    workloadsRun(c),
    [],
    "nothing runs inside the network to apply the change to the running nodes",
  );
}

/** A change that does not concern the shards leaves every shard node alone. */
export function assertShardsUntouched(c: Change): void {
  assert.deepEqual(dataNodesTouched(c), []);
}
