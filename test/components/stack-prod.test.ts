/**
 * The prod stack (stacks/Pulumi.prod.yaml) under mocks: Kubernetes, 6 shards x 2 replicas, 4
 * load-balanced proxies behind a LoadBalancer Service. Every object is checked against the
 * official Kubernetes schema.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { parse } from "yaml";
import { parseProxyConfig } from "../../src/proxy/config.ts";
import { parseTopology } from "../../src/cluster/topology.ts";
import { countByType, find, installMocks, startRun, unwrap, type Recorded } from "./support/mocks.ts";
import { validateKubernetesObjects } from "./support/kubernetes.ts";
import { stackSpec } from "./support/stack-config.ts";
import { PROD_RESOURCES } from "./support/expected-resources.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");

let resources: Recorded[];
let endpoint: string;
before(async () => {
  const run = startRun();
  const redis = createStack(
    { name: "redis", spec: stackSpec("prod"), password: "from-config-secret" },
    run.opts,
  );
  resources = await run.settle();
  endpoint = await unwrap(redis.endpoint);
});

type Pod = {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
  spec: Record<string, unknown> & { containers: Record<string, unknown>[] };
};
const podOf = (r: Recorded) => (r.inputs["spec"] as { template: Pod }).template;

test("every Kubernetes object matches the official schema", async () => {
  assert.equal(await validateKubernetesObjects(resources), 1 + 6 * 4 + 5);
  // The check itself can fail: a StatefulSet with a bad field does not pass.
  const set = find(resources, "kubernetes:apps/v1:StatefulSet", "redis-shard-0");
  const broken = {
    ...set,
    inputs: { ...set.inputs, spec: { ...(set.inputs["spec"] as object), replicas: "three" } },
  };
  await assert.rejects(
    validateKubernetesObjects([broken]),
    /StatefulSet redis-shard-0 does not match the Kubernetes schema/,
  );
});

test("creates one StatefulSet, headless Service, PDB and config Secret per shard, a proxy Deployment and a Job", () => {
  assert.deepEqual(countByType(resources), PROD_RESOURCES);
  assert.equal(find(resources, "kubernetes:apps/v1:StatefulSet", "redis-shard-5").parent, "redis-shard-5");
  assert.equal(find(resources, "kubernetes:batch/v1:Job", "redis-migration-run").parent, "redis-migration");
});

test("a shard's StatefulSet runs master and replicas with stable hostnames, volumes, probes and limits", () => {
  const set = find(resources, "kubernetes:apps/v1:StatefulSet", "redis-shard-4");
  const spec = set.inputs["spec"] as Record<string, unknown>;
  assert.equal(spec["replicas"], 3);
  assert.equal(spec["serviceName"], "redis-shard-4");
  assert.deepEqual((set.inputs["metadata"] as { namespace: string }).namespace, "redis");
  const pod = podOf(set);
  const redis = pod.spec.containers[0]!;
  assert.equal(redis["image"], "redis:7.2");
  // The entrypoint (plan/shard-entrypoint.ts) starts redis-server on the config with the pod's
  // hostname; its handover runs as the preStop hook, within the grace period.
  const [sh, c, script, ...rest] = redis["command"] as string[];
  assert.deepEqual(
    [sh, c, rest],
    [
      "sh",
      "-c",
      ["dredis-shard", "--cluster-announce-hostname", "$(POD_NAME).redis-shard-4.redis.svc.cluster.local"],
    ],
  );
  assert.match(script!, /^CONF='\/etc\/redis\/redis\.conf'$/m);
  assert.deepEqual(redis["lifecycle"], {
    preStop: { exec: { command: ["sh", "-c", script, "dredis-shard", "handover"] } },
  });
  assert.equal(pod.spec["terminationGracePeriodSeconds"], 60);
  assert.deepEqual(redis["resources"] as object, {
    requests: { cpu: "100m", memory: "6176Mi" },
    limits: { memory: "6176Mi" },
  });
  assert.ok(redis["readinessProbe"] && redis["livenessProbe"]);
  assert.deepEqual(pod.spec["affinity"], {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: pod.metadata.labels }, topologyKey: "kubernetes.io/hostname" },
      ],
    },
  });
  assert.equal(pod.metadata.labels["dredis.io/shard"], "shard-4");
  assert.deepEqual(spec["volumeClaimTemplates"], [
    {
      metadata: { name: "data" },
      spec: {
        accessModes: ["ReadWriteOnce"],
        storageClassName: "fast-ssd",
        resources: { requests: { storage: "50Gi" } },
      },
    },
  ]);
  const service = find(resources, "kubernetes:core/v1:Service", "redis-shard-4");
  assert.equal((service.inputs["spec"] as { clusterIP: string }).clusterIP, "None");
  const config = find(resources, "kubernetes:core/v1:Secret", "redis-shard-4-config");
  assert.match((config.inputs["stringData"] as Record<string, string>)["redis.conf"]!, /^maxmemory 4096mb$/m);
  assert.deepEqual(config.secretInputs, ["stringData"]);
});

test("the migration Job applies the 6-shard topology with the password from a Secret", () => {
  const job = find(resources, "kubernetes:batch/v1:Job", "redis-migration-run");
  assert.equal(
    (job.inputs["metadata"] as { name?: string }).name,
    undefined,
    "auto-named for create-before-delete",
  );
  const container = podOf(job).spec.containers[0]!;
  const args = container["args"] as string[];
  assert.deepEqual(args.slice(0, 3), ["cluster", "apply", "--topology"]);
  const topology = parseTopology(JSON.parse(args[3]!));
  assert.equal(topology.shards.length, 6);
  assert.equal(topology.shards[0]!.replicas.length, 2);
  assert.deepEqual((container["env"] as object[])[0], {
    name: "DREDIS_PASSWORD",
    valueFrom: { secretKeyRef: { name: "redis-auth", key: "password" } },
  });
  assert.equal(
    podOf(job).metadata.annotations["dredis.io/topology-hash"],
    (container["env"] as { value?: string }[])[1]!.value,
  );
  assert.equal(podOf(job).spec["restartPolicy"], "Never");
  assert.deepEqual(
    job.dependsOn.sort(),
    ["redis-auth", ...[0, 1, 2, 3, 4, 5].map((i) => `redis-shard-${i}`)].sort(),
  );
  assert.deepEqual(job.hooks, { afterCreate: ["redis-migration-run-succeeded"] });
});

test("the load-balanced fleet is a Deployment of 4 ready-checked proxies behind a LoadBalancer Service", () => {
  const deployment = find(resources, "kubernetes:apps/v1:Deployment", "redis-proxy");
  assert.equal((deployment.inputs["spec"] as { replicas: number }).replicas, 4);
  const proxy = podOf(deployment).spec.containers[0]!;
  assert.equal(proxy["image"], "ghcr.io/example/distributed-redis:0.1.0");
  assert.deepEqual(proxy["args"], ["proxy", "--config", "/etc/dredis/proxy.yaml"]);
  assert.deepEqual(proxy["readinessProbe"], {
    httpGet: { path: "/readyz", port: "admin" },
    periodSeconds: 5,
  });
  const config = find(resources, "kubernetes:core/v1:Secret", "redis-proxy-config");
  const parsed = parseProxyConfig(
    parse((config.inputs["stringData"] as Record<string, string>)["proxy.yaml"]!),
  );
  assert.equal(parsed.workers, 4);
  assert.equal(parsed.clientPassword, "from-config-secret");
  const service = find(resources, "kubernetes:core/v1:Service", "redis-proxy");
  const spec = service.inputs["spec"] as { type: string; selector: Record<string, string> };
  assert.equal(spec.type, "LoadBalancer");
  assert.deepEqual(spec.selector, podOf(deployment).metadata.labels);
  assert.equal(endpoint, "203.0.113.10:6379");
});
