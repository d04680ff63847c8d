/**
 * The staging stack (stacks/Pulumi.staging.yaml) under mocks: Kubernetes, 3 x 1, a master-backup
 * proxy pair. The pods elect a leader through a Lease, the leader labels its own pod, and the
 * Service selects that label; the fixed IP goes through the MetalLB and kube-vip annotations.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { countByType, find, installMocks, startRun, unwrap, type Recorded } from "./support/mocks.ts";
import { validateKubernetesObjects } from "./support/kubernetes.ts";
import { stackSpec } from "./support/stack-config.ts";
import { STAGING_RESOURCES } from "./support/expected-resources.ts";

installMocks();
const k8s = await import("@pulumi/kubernetes");
const { createStack } = await import("../../components/stack.ts");

let resources: Recorded[];
let endpoint: string;
before(async () => {
  const run = startRun();
  const provider = new k8s.Provider("staging-cluster", { context: "staging" });
  const redis = createStack(
    { name: "redis", spec: stackSpec("staging") },
    { ...run.opts, providers: [provider] },
  );
  resources = await run.settle();
  endpoint = await unwrap(redis.endpoint);
});

type Pod = {
  metadata: { labels: Record<string, string> };
  spec: Record<string, unknown> & { containers: Record<string, unknown>[] };
};
const podOf = (r: Recorded) => (r.inputs["spec"] as { template: Pod }).template;

test("every Kubernetes object matches the official schema", async () => {
  assert.equal(await validateKubernetesObjects(resources), 1 + 3 * 4 + 5 + 3);
});

test("the providers given to the stack reach every Kubernetes object", () => {
  const objects = resources.filter((r) => r.type.startsWith("kubernetes:"));
  assert.ok(objects.length > 0);
  for (const object of objects)
    assert.match(
      object.provider ?? "",
      /::staging-cluster::staging-cluster-id$/,
      `${object.type} ${object.name}`,
    );
});

test("creates 3 shards, two proxy pods with leader-election RBAC, and no Lease (runtime state)", () => {
  assert.deepEqual(countByType(resources), STAGING_RESOURCES);
});

test("the Role grants exactly what leader election needs: its Lease and labelling pods", () => {
  const role = find(resources, "kubernetes:rbac.authorization.k8s.io/v1:Role", "redis-proxy");
  assert.deepEqual(role.inputs["rules"], [
    {
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      verbs: ["get", "list", "watch", "create", "update"],
    },
    { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "patch"] },
  ]);
  const binding = find(resources, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "redis-proxy");
  assert.deepEqual(binding.inputs["subjects"], [
    { kind: "ServiceAccount", name: "redis-proxy", namespace: "redis-staging" },
  ]);
});

test("two proxy pods run with --leader-election and the Lease settings in their environment", () => {
  const deployment = find(resources, "kubernetes:apps/v1:Deployment", "redis-proxy");
  assert.equal((deployment.inputs["spec"] as { replicas: number }).replicas, 2);
  const pod = podOf(deployment);
  assert.equal(pod.spec["serviceAccountName"], "redis-proxy");
  const proxy = pod.spec.containers[0]!;
  assert.deepEqual(proxy["args"], ["proxy", "--config", "/etc/dredis/proxy.yaml", "--leader-election"]);
  assert.deepEqual(proxy["env"], [
    { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "LEASE_NAME", value: "redis-proxy-leader" },
  ]);
  assert.ok(
    "preferredDuringSchedulingIgnoredDuringExecution" in
      (pod.spec["affinity"] as { podAntiAffinity: object }).podAntiAffinity,
  );
});

test("the Service selects only the leader's label and asks MetalLB / kube-vip for the fixed IP", () => {
  const service = find(resources, "kubernetes:core/v1:Service", "redis-proxy");
  const deployment = find(resources, "kubernetes:apps/v1:Deployment", "redis-proxy");
  const spec = service.inputs["spec"] as { selector: Record<string, string>; type: string };
  assert.deepEqual(spec.selector, { ...podOf(deployment).metadata.labels, "dredis.io/role": "active" });
  assert.ok(
    !("dredis.io/role" in podOf(deployment).metadata.labels),
    "the Deployment never selects on the role",
  );
  assert.deepEqual((service.inputs["metadata"] as { annotations: object }).annotations, {
    "metallb.io/loadBalancerIPs": "10.20.0.50",
    "kube-vip.io/loadbalancerIPs": "10.20.0.50",
  });
  assert.equal(endpoint, "10.20.0.50:6379");
});

test("shards prefer, rather than require, separate nodes as configured", () => {
  const set = find(resources, "kubernetes:apps/v1:StatefulSet", "redis-shard-0");
  const affinity = podOf(set).spec["affinity"] as { podAntiAffinity: Record<string, unknown> };
  assert.deepEqual(Object.keys(affinity.podAntiAffinity), [
    "preferredDuringSchedulingIgnoredDuringExecution",
  ]);
});
