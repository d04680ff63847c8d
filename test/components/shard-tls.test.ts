/**
 * TLS to the shards under mocks (`shardTls`): TLS-only nodes (plain port closed), the
 * certificate from secrets (Docker: written with the node's settings, into the proxies and the
 * migration) or from a Kubernetes Secret (mounted into the nodes, the proxies and the migration
 * Job), a cert-manager Certificate when an issuer is given; every client of the nodes over TLS:
 * the proxies' backendTls, the migration's flags, the health checks and the entrypoint; and bad
 * args refused with the key named. What this renders boots for real in boot/shard-tls.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { parseProxyConfig } from "../../src/proxy/config.ts";
import { find, installMocks, ofType, startRun, type Recorded } from "./support/mocks.ts";
import { validateKubernetesObjects } from "./support/kubernetes.ts";
import { kubernetesWithIssuer } from "../support/kubernetes-args.ts";

installMocks();
const { DistributedRedis } = await import("../../components/distributed-redis.ts");

const CA = "-----BEGIN CERTIFICATE-----\nMIIB...shards-ca\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIB...shards\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIGH...shards-key\n-----END PRIVATE KEY-----\n";
const CONTAINER = "docker:index/container:Container";
const MIGRATION = "distributed-redis:index:SlotMigration";

type Upload = { file: string; content: string };
const filesOf = (r: Recorded) =>
  Object.fromEntries((r.inputs["uploads"] as Upload[]).map((u) => [u.file, u.content]));
const conf = (text: string) =>
  Object.fromEntries(
    text
      .trim()
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)]),
  );

test("Docker: TLS-only nodes with the certificate as settings, and the proxies, the migration, health check and entrypoint over TLS", async () => {
  const run = startRun();
  new DistributedRedis(
    "dk",
    {
      platform: "docker",
      password: "pw-0123456789",
      shardTls: {
        ca: CA,
        certificate: pulumi.secret(CERT),
        privateKey: pulumi.secret(KEY),
        serverName: "shards.internal",
      },
    },
    run.opts,
  );
  const resources = await run.settle();

  const node = find(resources, CONTAINER, "dk-shard-0-0");
  const redisConf = conf(filesOf(node)["/etc/redis/redis.conf"]!);
  assert.equal(redisConf["port"], "0", "the plain port is closed");
  assert.equal(redisConf["tls-port"], "6379");
  assert.equal(redisConf["tls-cluster"], "yes");
  assert.equal(redisConf["tls-replication"], "yes");
  assert.equal(redisConf["tls-auth-clients"], "yes");
  assert.equal(redisConf["tls-cert-file"], "/data/.dredis/tls.crt");
  assert.equal(redisConf["tls-key-file"], "/data/.dredis/tls.key");
  assert.equal(redisConf["tls-ca-cert-file"], "/data/.dredis/ca.crt");
  // The files travel with the node's settings: a renewal replaces only the writer.
  const writer = find(resources, CONTAINER, "dk-shard-0-0-settings");
  const settings = filesOf(writer);
  assert.equal(settings["/tmp/dredis-settings/tls.crt"], CERT);
  assert.equal(settings["/tmp/dredis-settings/tls.key"], KEY);
  assert.equal(settings["/tmp/dredis-settings/ca.crt"], CA);
  assert.ok(writer.secretInputs.includes("uploads"), "the key travels as a secret");
  assert.match(
    (writer.inputs["command"] as string[])[2]!,
    /for f in auth\.conf persistence\.conf password tls\.crt tls\.key ca\.crt;/,
  );
  const tlsCli =
    "--tls --cacert /data/.dredis/ca.crt --cert /data/.dredis/tls.crt --key /data/.dredis/tls.key";
  const health = (node.inputs["healthcheck"] as { tests: string[] }).tests[1]!;
  assert.ok(health.includes(`redis-cli ${tlsCli} -p 6379`), health);
  const entrypoint = (node.inputs["command"] as string[])[2]!;
  assert.ok(entrypoint.includes(`TLS_ARGS='${tlsCli}'`), "the entrypoint's redis-cli calls go over TLS");

  for (const host of ["dk-proxy-0", "dk-proxy-1"]) {
    const files = filesOf(find(resources, CONTAINER, host));
    assert.equal(files["/etc/dredis-shard-tls/ca.crt"], CA);
    assert.equal(files["/etc/dredis-shard-tls/tls.crt"], CERT);
    assert.equal(files["/etc/dredis-shard-tls/tls.key"], KEY);
    const config = parseProxyConfig(parse(files["/etc/dredis/proxy.yaml"]!));
    assert.deepEqual(config.backendTls, {
      caFile: "/etc/dredis-shard-tls/ca.crt",
      certFile: "/etc/dredis-shard-tls/tls.crt",
      keyFile: "/etc/dredis-shard-tls/tls.key",
      serverName: "shards.internal",
      minVersion: "TLSv1.2",
    });
    assert.equal(config.tls, undefined, "clients -> proxy stays as `tls` says (unset: plain)");
  }

  const migration = find(resources, CONTAINER, "dk-migration-run");
  assert.deepEqual((migration.inputs["command"] as string[]).slice(-9), [
    "--tls",
    "--cacert",
    "/etc/dredis-shard-tls/ca.crt",
    "--cert",
    "/etc/dredis-shard-tls/tls.crt",
    "--key",
    "/etc/dredis-shard-tls/tls.key",
    "--sni",
    "shards.internal",
  ]);
  assert.equal(filesOf(migration)["/etc/dredis-shard-tls/tls.key"], KEY);
  assert.ok(migration.secretInputs.includes("uploads"));
  // What the migration's guard compares with the next deployment (hooks.test.ts: no turning it off).
  assert.equal(find(resources, MIGRATION, "dk-migration").inputs["shardTls"], true);
});

test("Docker without shardTls: nothing of it is rendered (plain nodes, no uploads on the migration)", async () => {
  const run = startRun();
  new DistributedRedis("plain", { platform: "docker", password: "pw-0123456789" }, run.opts);
  const resources = await run.settle();
  const redisConf = conf(filesOf(find(resources, CONTAINER, "plain-shard-0-0"))["/etc/redis/redis.conf"]!);
  assert.equal(redisConf["port"], "6379");
  assert.equal(redisConf["tls-port"], undefined);
  assert.equal(find(resources, CONTAINER, "plain-migration-run").inputs["uploads"], undefined);
  const proxy = parseProxyConfig(
    parse(filesOf(find(resources, CONTAINER, "plain-proxy-0"))["/etc/dredis/proxy.yaml"]!),
  );
  assert.equal(proxy.backendTls, undefined);
  // What the migration's guard compares with the next deployment (hooks.test.ts: no turning it on).
  assert.equal(find(resources, MIGRATION, "plain-migration").inputs["shardTls"], false);
});

test("Kubernetes with an issuer: a cert-manager Certificate fills the Secret the nodes, proxies and migration Job mount", async () => {
  const run = startRun();
  new DistributedRedis("kube", kubernetesWithIssuer(), run.opts);
  const resources = await run.settle();
  const certificates = ofType(resources, "kubernetes:cert-manager.io/v1:Certificate");
  assert.equal(certificates.length, 1, "one Certificate for the cluster");
  const certificate = certificates[0]!;
  assert.deepEqual(certificate.inputs["metadata"], {
    name: "kube-shard-tls",
    namespace: "redis",
    labels: {
      "app.kubernetes.io/name": "distributed-redis",
      "app.kubernetes.io/instance": "kube",
      "app.kubernetes.io/component": "shard-tls",
    },
  });
  const spec = certificate.inputs["spec"] as Record<string, unknown>;
  assert.equal(spec["secretName"], "kube-shard-tls");
  assert.deepEqual(spec["dnsNames"], ["kube-shards.redis.svc.cluster.local"]);
  assert.deepEqual(spec["issuerRef"], {
    name: "internal-ca",
    kind: "ClusterIssuer",
    group: "cert-manager.io",
  });
  assert.deepEqual(spec["usages"], ["server auth", "client auth", "digital signature", "key encipherment"]);

  const statefulSet = find(resources, "kubernetes:apps/v1:StatefulSet", "kube-shard-1");
  type Pod = {
    volumes: { name: string; secret: { secretName: string } }[];
    containers: {
      command: string[];
      volumeMounts: { name: string; mountPath: string }[];
      readinessProbe: { exec: { command: string[] } };
      lifecycle: { preStop: { exec: { command: string[] } } };
    }[];
  };
  const pod = (statefulSet.inputs["spec"] as { template: { spec: Pod } }).template.spec;
  assert.deepEqual(
    pod.volumes.find((v) => v.name === "tls"),
    { name: "tls", secret: { secretName: "kube-shard-tls" } },
  );
  const redis = pod.containers[0]!;
  assert.deepEqual(
    redis.volumeMounts.find((m) => m.name === "tls"),
    { name: "tls", mountPath: "/etc/redis-tls", readOnly: true },
  );
  const tlsCli =
    "--tls --cacert /etc/redis-tls/ca.crt --cert /etc/redis-tls/tls.crt --key /etc/redis-tls/tls.key";
  assert.ok(redis.readinessProbe.exec.command[2]!.includes(`redis-cli ${tlsCli} -p 6379`));
  assert.ok(redis.lifecycle.preStop.exec.command[2]!.includes(`TLS_ARGS='${tlsCli}'`));
  const redisConf = conf(
    (
      find(resources, "kubernetes:core/v1:Secret", "kube-shard-1-config").inputs["stringData"] as Record<
        string,
        string
      >
    )["redis.conf"]!,
  );
  assert.equal(redisConf["port"], "0");
  assert.equal(redisConf["tls-port"], "6379");
  assert.equal(redisConf["tls-cert-file"], "/etc/redis-tls/tls.crt");

  const proxyConfig = parseProxyConfig(
    parse(
      (
        find(resources, "kubernetes:core/v1:Secret", "kube-proxy-config").inputs["stringData"] as Record<
          string,
          string
        >
      )["proxy.yaml"]!,
    ),
  );
  assert.equal(proxyConfig.backendTls?.serverName, "kube-shards.redis.svc.cluster.local");
  assert.equal(proxyConfig.backendTls?.caFile, "/etc/dredis-shard-tls/ca.crt");
  const deployment = find(resources, "kubernetes:apps/v1:Deployment", "kube-proxy");
  const proxyPod = (deployment.inputs["spec"] as { template: { spec: Pod } }).template.spec;
  assert.deepEqual(
    proxyPod.volumes.find((v) => v.name === "shard-tls"),
    { name: "shard-tls", secret: { secretName: "kube-shard-tls" } },
  );
  assert.deepEqual(
    proxyPod.containers[0]!.volumeMounts.find((m) => m.name === "shard-tls"),
    { name: "shard-tls", mountPath: "/etc/dredis-shard-tls", readOnly: true },
  );

  const job = ofType(resources, "kubernetes:batch/v1:Job")[0]!;
  type JobPod = {
    volumes: { name: string }[];
    containers: { args: string[]; volumeMounts: { mountPath: string }[] }[];
  };
  const jobPod = (job.inputs["spec"] as { template: { spec: JobPod } }).template.spec;
  assert.deepEqual(jobPod.containers[0]!.args.slice(-9), [
    "--tls",
    "--cacert",
    "/etc/dredis-shard-tls/ca.crt",
    "--cert",
    "/etc/dredis-shard-tls/tls.crt",
    "--key",
    "/etc/dredis-shard-tls/tls.key",
    "--sni",
    "kube-shards.redis.svc.cluster.local",
  ]);
  assert.equal(jobPod.containers[0]!.volumeMounts[0]!.mountPath, "/etc/dredis-shard-tls");
  // The Certificate comes before the migration, which needs its Secret.
  assert.ok(job.dependsOn.includes("kube-shard-tls"), `the Job waits for: ${job.dependsOn.join(", ")}`);
  assert.ok(
    (await validateKubernetesObjects(resources.filter((r) => !r.type.includes("cert-manager")))) > 0,
    "the other objects match the Kubernetes schema",
  );
});

test("Kubernetes with a Secret the user manages: mounted, no Certificate, the nodes' own names checked", async () => {
  const run = startRun();
  new DistributedRedis(
    "own",
    {
      platform: "kubernetes",
      image: "registry.example/dredis@sha256:abc",
      password: "pw",
      shardTls: { secretName: "my-shard-tls" },
    },
    run.opts,
  );
  const resources = await run.settle();
  assert.equal(ofType(resources, "kubernetes:cert-manager.io/v1:Certificate").length, 0);
  const proxyConfig = parseProxyConfig(
    parse(
      (
        find(resources, "kubernetes:core/v1:Secret", "own-proxy-config").inputs["stringData"] as Record<
          string,
          string
        >
      )["proxy.yaml"]!,
    ),
  );
  assert.equal(proxyConfig.backendTls?.serverName, undefined);
  const job = ofType(resources, "kubernetes:batch/v1:Job")[0]!;
  const args = (job.inputs["spec"] as { template: { spec: { containers: { args: string[] }[] } } }).template
    .spec.containers[0]!.args;
  assert.ok(args.includes("--tls") && !args.includes("--sni"));
  assert.equal(find(resources, MIGRATION, "own-migration").inputs["shardTls"], true);
});

test("half-given shardTls is refused before anything is created, naming the key and what to add", () => {
  const make = (args: Record<string, unknown>) => () => new DistributedRedis("bad", args as never, {});
  const docker = (shardTls: Record<string, unknown>) => make({ platform: "docker", shardTls });
  const kube = (shardTls: Record<string, unknown>) => make({ platform: "kubernetes", image: "i", shardTls });
  assert.throws(
    docker({ ca: CA, certificate: CERT }),
    /shardTls\.privateKey: required with shardTls\.certificate: a certificate and its private key go together/,
  );
  assert.throws(
    docker({ ca: CA, privateKey: KEY }),
    /shardTls\.certificate: required with shardTls\.privateKey: a certificate and its private key go together/,
  );
  assert.throws(
    docker({ certificate: CERT, privateKey: KEY }),
    /shardTls\.ca: required: the CA \(PEM\) that signed shardTls\.certificate/,
  );
  assert.throws(docker({}), /shardTls\.certificate: required on docker/);
  assert.throws(
    docker({ ca: CA, certificate: CERT, privateKey: "" }),
    /shardTls\.privateKey: must not be empty/,
  );
  assert.throws(
    docker({ secretName: "x", ca: CA, certificate: CERT, privateKey: KEY }),
    /shardTls\.secretName: Kubernetes only/,
  );
  assert.throws(docker({ issuerRef: { name: "ca" } }), /shardTls\.issuerRef: Kubernetes only/);
  assert.throws(
    kube({}),
    /shardTls\.secretName: required on kubernetes: a Secret with tls\.crt, tls\.key and ca\.crt, or set shardTls\.issuerRef/,
  );
  assert.throws(kube({ secretName: "s", certificate: CERT }), /shardTls\.certificate: Docker only/);
  assert.throws(kube({ issuerRef: {} }), /shardTls\.issuerRef\.name:/);
  assert.throws(kube({ issuerRef: { name: "ca", kind: "Vault" } }), /shardTls\.issuerRef\.kind:/);
  assert.throws(
    kube({ secretName: "s", serverName: "bad name" }),
    /shardTls\.serverName: expected a DNS name/,
  );
  assert.throws(kube({ secretName: "s", sni: "x" }), /shardTls\.sni: unknown key/);
});

test("the stack's shardTls* keys make the shardTls arg: certificate and key as secrets, the issuer as issuerRef", async () => {
  const { shardTlsFromConfig, parseStackConfig } = await import("../../components/stack.ts");
  pulumi.runtime.setAllConfig(
    {
      "distributed-redis:platform": "docker",
      "distributed-redis:shardTlsCa": CA,
      "distributed-redis:shardTlsCertificate": CERT,
      "distributed-redis:shardTlsPrivateKey": KEY,
      "distributed-redis:shardTlsServerName": "shards.internal",
    },
    ["distributed-redis:shardTlsCertificate", "distributed-redis:shardTlsPrivateKey"],
  );
  const docker = shardTlsFromConfig(new pulumi.Config())!;
  assert.equal(await pulumi.isSecret(docker.privateKey as pulumi.Output<string>), true);
  assert.equal(await pulumi.isSecret(docker.certificate as pulumi.Output<string>), true);
  assert.equal(docker.ca, CA);
  assert.equal(docker.serverName, "shards.internal");
  assert.deepEqual(Object.keys(docker).sort(), ["ca", "certificate", "privateKey", "serverName"]);

  pulumi.runtime.setAllConfig({
    "distributed-redis:shardTlsIssuer": "internal-ca",
    "distributed-redis:shardTlsIssuerKind": "ClusterIssuer",
  });
  assert.deepEqual(shardTlsFromConfig(new pulumi.Config()), {
    issuerRef: { name: "internal-ca", kind: "ClusterIssuer" },
  });
  // A kind without an issuer reaches the validation, which names the missing name.
  pulumi.runtime.setAllConfig({ "distributed-redis:shardTlsIssuerKind": "Issuer" });
  const kindOnly = shardTlsFromConfig(new pulumi.Config())!;
  assert.throws(
    () => new DistributedRedis("k", { platform: "kubernetes", image: "i", shardTls: kindOnly }, {}),
    /shardTls\.issuerRef\.name:/,
  );
  // They are not cluster spec keys, so the spec's strict check lets them through.
  assert.equal(
    parseStackConfig({ platform: "kubernetes", image: "i", shardTlsIssuer: "x" }).platform,
    "kubernetes",
  );
  pulumi.runtime.setAllConfig({});
  assert.equal(shardTlsFromConfig(new pulumi.Config()), undefined);
});
