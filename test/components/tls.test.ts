/**
 * TLS of the proxy fleet under mocks: on Docker the certificate and key from Pulumi secrets,
 * written into each proxy container and named by its proxy config; on Kubernetes the user's TLS
 * Secret (or cert-manager's) mounted into the proxy pods; bad `tls` args refused with the key.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { parseProxyConfig } from "../../src/proxy/config.ts";
import { find, installMocks, startRun, type Recorded } from "./support/mocks.ts";
import { validateKubernetesObjects } from "./support/kubernetes.ts";

installMocks();
const { DistributedRedis } = await import("../../components/distributed-redis.ts");
const { tlsFromConfig, parseStackConfig } = await import("../../components/stack.ts");

const CERT = "-----BEGIN CERTIFICATE-----\nMIIB...proxy\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIGH...key\n-----END PRIVATE KEY-----\n";
const CA = "-----BEGIN CERTIFICATE-----\nMIIB...clients-ca\n-----END CERTIFICATE-----\n";

type Upload = { file: string; content: string };
const uploadsOf = (r: Recorded) => r.inputs["uploads"] as Upload[];

test("Docker: the certificate, key and client CA from secrets are written into each proxy, whose config serves TLS only with them", async () => {
  const run = startRun();
  new DistributedRedis(
    "dk",
    {
      platform: "docker",
      proxyHosts: 2,
      tls: {
        certificate: pulumi.secret(CERT),
        privateKey: pulumi.secret(KEY),
        clientCa: CA,
        verifyClients: true,
        minVersion: "TLSv1.3",
      },
    },
    run.opts,
  );
  const resources = await run.settle();
  for (const host of ["dk-proxy-0", "dk-proxy-1"]) {
    const proxy = find(resources, "docker:index/container:Container", host);
    const files = Object.fromEntries(uploadsOf(proxy).map((u) => [u.file, u.content]));
    assert.equal(files["/etc/dredis-tls/tls.crt"], CERT);
    assert.equal(files["/etc/dredis-tls/tls.key"], KEY);
    assert.equal(files["/etc/dredis-tls/ca.crt"], CA);
    assert.ok(proxy.secretInputs.includes("uploads"), "the key travels as a secret");
    const config = parseProxyConfig(parse(files["/etc/dredis/proxy.yaml"]!));
    assert.deepEqual(config.tls, {
      port: 6379,
      certFile: "/etc/dredis-tls/tls.crt",
      keyFile: "/etc/dredis-tls/tls.key",
      clientCaFile: "/etc/dredis-tls/ca.crt",
      minVersion: "TLSv1.3",
      plain: false,
    });
  }
  // HAProxy passes TLS through (TCP mode) and checks readiness on the plain admin port.
  const lb = find(resources, "docker:index/container:Container", "dk-proxy-lb");
  assert.match(uploadsOf(lb)[0]!.content, /option httpchk GET \/readyz/);
});

test("Docker master-backup: keepalived checks the TLS-only proxy over TLS", async () => {
  const run = startRun();
  new DistributedRedis(
    "mb",
    {
      platform: "docker",
      proxyMode: "master-backup",
      password: "pw-123456789",
      tls: { certificate: CERT, privateKey: KEY },
    },
    run.opts,
  );
  const resources = await run.settle();
  const keepalived = find(resources, "docker:index/container:Container", "mb-proxy-0-keepalived");
  assert.match(
    uploadsOf(keepalived)[0]!.content,
    /redis-cli --tls --insecure -h 127\.0\.0\.1 -p 6379 -a pw-123456789 --no-auth-warning PING \| grep -qx PONG/,
  );
});

test("Kubernetes: the user's TLS Secret (e.g. cert-manager's) is mounted whole into the proxy pods, and the objects match the schema", async () => {
  const run = startRun();
  new DistributedRedis(
    "kube",
    {
      platform: "kubernetes",
      image: "registry.example/dredis@sha256:abc",
      password: "pw",
      tls: { secretName: "redis-proxy-tls", verifyClients: true },
    },
    run.opts,
  );
  const resources = await run.settle();
  const deployment = find(resources, "kubernetes:apps/v1:Deployment", "kube-proxy");
  const pod = (
    deployment.inputs["spec"] as {
      template: {
        spec: {
          volumes: { name: string; secret: { secretName: string } }[];
          containers: { volumeMounts: { name: string; mountPath: string; subPath?: string }[] }[];
        };
      };
    }
  ).template.spec;
  assert.deepEqual(
    pod.volumes.find((v) => v.name === "tls"),
    { name: "tls", secret: { secretName: "redis-proxy-tls" } },
  );
  const mount = pod.containers[0]!.volumeMounts.find((m) => m.name === "tls")!;
  assert.equal(mount.mountPath, "/etc/dredis-tls");
  assert.equal(mount.subPath, undefined, "a subPath mount would never see a renewal");
  const secret = find(resources, "kubernetes:core/v1:Secret", "kube-proxy-config");
  const config = parseProxyConfig(
    parse((secret.inputs["stringData"] as Record<string, string>)["proxy.yaml"]!),
  );
  assert.equal(config.tls?.clientCaFile, "/etc/dredis-tls/ca.crt");
  assert.equal(config.tls?.port, 6379);
  assert.ok((await validateKubernetesObjects(resources)) > 0);
});

test("bad tls args are refused before anything is created, naming the key and what to do", () => {
  const make = (args: Record<string, unknown>) => () => new DistributedRedis("bad", args as never, {});
  assert.throws(
    make({ platform: "kubernetes", image: "i", tls: { certificate: CERT, privateKey: KEY } }),
    /tls\.certificate: Docker only: on Kubernetes the certificate comes from a Secret; set tls\.secretName/,
  );
  assert.throws(
    make({ platform: "kubernetes", image: "i", tls: {} }),
    /tls\.secretName: required on kubernetes/,
  );
  assert.throws(
    make({ platform: "docker", tls: { certificate: CERT } }),
    /tls\.privateKey: required on docker/,
  );
  assert.throws(
    make({ platform: "docker", tls: { certificate: CERT, privateKey: KEY, verifyClients: true } }),
    /tls\.clientCa: required with verifyClients/,
  );
  assert.throws(
    make({ platform: "docker", tls: { secretName: "x", certificate: CERT, privateKey: KEY } }),
    /tls\.secretName: Kubernetes only/,
  );
  assert.throws(
    make({ platform: "docker", tls: { certificate: CERT, privateKey: KEY, minVersion: "TLSv1.1" } }),
    /tls\.minVersion/,
  );
  assert.throws(
    make({ platform: "docker", tls: { certificate: CERT, privateKey: KEY, sni: "x" } }),
    /tls\.sni: unknown key/,
  );
});

test("the stack's tls* keys make the tls arg: the certificate and key as secrets, the rest as given", async () => {
  pulumi.runtime.setAllConfig(
    {
      "distributed-redis:platform": "docker",
      "distributed-redis:tlsCertificate": CERT,
      "distributed-redis:tlsPrivateKey": KEY,
      "distributed-redis:tlsVerifyClients": "false",
      "distributed-redis:tlsMinVersion": "TLSv1.3",
    },
    ["distributed-redis:tlsCertificate", "distributed-redis:tlsPrivateKey"],
  );
  const tls = tlsFromConfig(new pulumi.Config())!;
  assert.equal(await pulumi.isSecret(tls.privateKey as pulumi.Output<string>), true);
  assert.equal(await pulumi.isSecret(tls.certificate as pulumi.Output<string>), true);
  assert.equal(tls.verifyClients, false);
  assert.equal(tls.minVersion, "TLSv1.3");
  assert.equal(tls.secretName, undefined);
  // They are not cluster spec keys, so the spec's strict check lets them through.
  assert.equal(
    parseStackConfig({ platform: "docker", tlsSecretName: "x", tlsVerifyClients: "true" }).platform,
    "docker",
  );
  pulumi.runtime.setAllConfig({ "distributed-redis:platform": "docker" });
  assert.equal(tlsFromConfig(new pulumi.Config()), undefined);
});
