/**
 * The component used from another language, under the real engine: a Python program (the `pulumi`
 * SDK from PyPI in a virtualenv made here) adds this repository as a package from its local path
 * (`pulumi package add`, which runs the component plugin through the Node host and generates the
 * Python SDK through the Python host) and declares a DistributedRedis with the staging stack's
 * settings. Its preview lists what the staging preview of the TypeScript program lists, under the
 * component, with the Python arguments reaching the Kubernetes objects; a bad argument fails the
 * preview with the key named.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { parsePreview, REPO, urnName, urnType, type Preview } from "./support/engine.ts";
import { createPythonProject, type PythonProject } from "./support/python.ts";
import { STAGING_RESOURCES, withoutRandomPassword } from "../components/support/expected-resources.ts";

const STACK_TYPE = "pulumi:pulumi:Stack";
const COMPONENT_TYPE = "distributed-redis:index:DistributedRedis";
const REPO_PATH = REPO.replace(/\/$/, "");

// stacks/Pulumi.staging.yaml, as keyword arguments of the generated SDK (snake_case). `shards`
// comes from the stack's config so that a second stack can give a bad value.
const PROGRAM = `import pulumi
import pulumi_distributed_redis as distributed_redis

config = pulumi.Config()
# A stack with tlsArgs set also gives the object args (types of the generated SDK) and the users.
extra = {}
if config.get_bool("tlsArgs"):
    extra = dict(
        tls=distributed_redis.ProxyTlsArgs(secret_name="redis-proxy-tls", verify_clients=True),
        shard_tls=distributed_redis.ShardTlsArgs(
            issuer_ref=distributed_redis.ShardTlsIssuerRefArgs(name="internal-ca", kind="ClusterIssuer"),
        ),
        users=config.require_secret_object("users"),
    )
if config.get_bool("badShardTls"):
    extra = dict(shard_tls=distributed_redis.ShardTlsArgs(server_name="shards.internal"))
redis = distributed_redis.DistributedRedis(
    "redis",
    platform="kubernetes",
    namespace="redis-staging",
    image="ghcr.io/example/distributed-redis:0.1.0",
    shards=config.get_int("shards") or 3,
    replicas_per_shard=1,
    shard_memory_mb=512,
    storage_gb=5,
    proxy_mode="master-backup",
    proxy_workers=2,
    service_type="LoadBalancer",
    fixed_ip="10.20.0.50",
    pod_anti_affinity="preferred",
    password=config.require_secret("password"),
    **extra,
)
pulumi.export("endpoint", redis.endpoint)
`;

describe("a Python program declaring DistributedRedis", () => {
  let py: PythonProject;
  let added: { stdout: string; stderr: string };
  before(() => {
    py = createPythonProject("dredis-python");
    added = py.pulumiOk(["package", "add", REPO_PATH]);
    py.writeProgram(PROGRAM);
  });
  after(() => py?.dispose());

  test("pulumi package add <repo path> generates the Python SDK, installs it and records the package", () => {
    assert.match(added.stderr, /Added package Distributed Redis/);
    assert.match(added.stdout, /import pulumi_distributed_redis as distributed_redis/);
    const project = parse(readFileSync(join(py.dir, "Pulumi.yaml"), "utf8")) as {
      packages?: Record<string, string>;
    };
    assert.deepEqual(project.packages, { "distributed-redis": REPO_PATH });
    assert.match(readFileSync(join(py.dir, "requirements.txt"), "utf8"), /^sdks\/distributed-redis$/m);
    // The SDK's typed args come from the component's schema (components/provider.ts).
    const sdk = readFileSync(
      join(py.dir, "sdks/distributed-redis/pulumi_distributed_redis/distributed_redis.py"),
      "utf8",
    );
    assert.match(sdk, /platform: pulumi\.Input\[_builtins\.str\]/);
    assert.match(sdk, /replicas_per_shard: pulumi\.Input\[Optional\[_builtins\.int\]\] = None/);
    assert.match(
      sdk,
      /super\(DistributedRedis, __self__\).__init__\(\s*'distributed-redis:index:DistributedRedis'/,
    );
    assert.ok(existsSync(join(py.dir, "venv/lib")), "the virtualenv is the project's");
  });

  describe("preview", () => {
    let preview: Preview;
    before(() => {
      py.pulumiOk(["stack", "init", "staging", "--secrets-provider", "passphrase"]);
      py.pulumiOk(["config", "set", "--secret", "password", "python-test-password"]);
      preview = parsePreview(py.pulumiOk(["preview", "--json"]).stdout);
    });

    test("lists the staging stack's resources, counted by type", () => {
      const counts: Record<string, number> = {};
      for (const step of preview.steps) {
        const type = urnType(step.urn);
        if (type === STACK_TYPE || type.startsWith("pulumi:providers:")) continue;
        assert.equal(step.op, "create", step.urn);
        counts[type] = (counts[type] ?? 0) + 1;
      }
      assert.deepEqual(counts, withoutRandomPassword(STAGING_RESOURCES));
    });

    test("the component is the stack's child, and every other resource descends from it", () => {
      const byUrn = new Map(preview.steps.map((step) => [step.urn, step]));
      const component = preview.steps.filter((step) => urnType(step.urn) === COMPONENT_TYPE);
      assert.equal(component.length, 1);
      assert.equal(urnName(component[0]!.urn), "redis");
      assert.equal(urnType(component[0]!.newState!.parent!), STACK_TYPE);
      for (const step of preview.steps) {
        const type = urnType(step.urn);
        if (type === STACK_TYPE || type === COMPONENT_TYPE || type.startsWith("pulumi:providers:")) continue;
        let parent = step.newState?.parent;
        while (parent && urnType(parent) !== COMPONENT_TYPE) parent = byUrn.get(parent)?.newState?.parent;
        assert.ok(parent, `${step.urn} descends from the DistributedRedis`);
        assert.ok(urnName(step.urn).startsWith("redis-"), `${step.urn} is named after the component`);
      }
    });

    test("the Python arguments reach the objects the component makes", () => {
      interface K8sInputs {
        metadata: { namespace: string; annotations?: Record<string, string> };
        spec: { replicas?: number; type?: string };
      }
      const find = (type: string, name: string): K8sInputs => {
        const step = preview.steps.find((s) => urnType(s.urn) === type && urnName(s.urn) === name);
        assert.ok(step?.newState?.inputs, `${type} ${name} is in the preview`);
        return step.newState.inputs as unknown as K8sInputs;
      };
      const shard = find("kubernetes:apps/v1:StatefulSet", "redis-shard-0");
      assert.equal(shard.metadata.namespace, "redis-staging");
      assert.equal(shard.spec.replicas, 2, "replicas_per_shard=1: a master and a replica");
      // proxy_mode="master-backup": the proxy pair elects a leader, so its RBAC exists.
      assert.equal(
        find("kubernetes:rbac.authorization.k8s.io/v1:Role", "redis-proxy").metadata.namespace,
        "redis-staging",
      );
      const endpoint = find("kubernetes:core/v1:Service", "redis-proxy");
      assert.equal(endpoint.spec.type, "LoadBalancer");
      assert.equal(endpoint.metadata.annotations?.["metallb.io/loadBalancerIPs"], "10.20.0.50");
    });

    test("a bad argument fails the preview, naming the key", () => {
      py.pulumiOk(["stack", "init", "bad", "--secrets-provider", "passphrase"]);
      py.pulumiOk(["config", "set", "--secret", "password", "python-test-password"]);
      py.pulumiOk(["config", "set", "--type", "int", "shards", "2"]);
      const result = py.pulumi(["preview"]);
      assert.notEqual(result.status, 0);
      assert.match(result.stdout + result.stderr, /shards: Redis Cluster needs at least 3 shards/);
      py.pulumiOk(["stack", "select", "staging"]);
    });

    test("tls, shardTls and users from Python reach the proxies and the shards; a half-given shardTls fails naming the key", () => {
      py.pulumiOk(["stack", "init", "tls", "--secrets-provider", "passphrase"]);
      py.pulumiOk(["config", "set", "--secret", "password", "python-test-password"]);
      py.pulumiOk(["config", "set", "--type", "bool", "tlsArgs", "true"]);
      py.pulumiOk(["config", "set", "--secret", "--path", "users.app", "on >app-password ~app:* +@read"]);
      const tls = parsePreview(py.pulumiOk(["preview", "--json"]).stdout);
      const inputsOf = (type: string) =>
        tls.steps
          .filter((s) => urnType(s.urn) === type)
          .map((s) => s.newState!.inputs as Record<string, unknown>);
      const certificates = inputsOf("kubernetes:cert-manager.io/v1:Certificate");
      assert.equal(certificates.length, 1, "shard_tls.issuer_ref: one Certificate for the shards");
      assert.deepEqual((certificates[0]!["spec"] as { issuerRef: unknown }).issuerRef, {
        name: "internal-ca",
        kind: "ClusterIssuer",
        group: "cert-manager.io",
      });
      const migration = tls.steps.find((s) => urnType(s.urn) === "distributed-redis:index:SlotMigration");
      assert.equal(migration?.newState?.inputs?.["shardTls"], true);
      // The proxies' config (a Secret) mounts the proxy certificate's Secret: tls.secret_name.
      const json = JSON.stringify(tls.steps.map((s) => s.newState?.inputs));
      assert.match(json, /redis-proxy-tls/);

      py.pulumiOk(["stack", "init", "badtls", "--secrets-provider", "passphrase"]);
      py.pulumiOk(["config", "set", "--secret", "password", "python-test-password"]);
      py.pulumiOk(["config", "set", "--type", "bool", "badShardTls", "true"]);
      const bad = py.pulumi(["preview"]);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stdout + bad.stderr, /shardTls\.secretName: required on kubernetes/);
      py.pulumiOk(["stack", "select", "staging"]);
    });
  });
});
