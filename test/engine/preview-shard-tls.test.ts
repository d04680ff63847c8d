/**
 * `pulumi preview` of the staging stack (Kubernetes) with TLS to the shards from a cert-manager
 * issuer, by the real engine and Kubernetes provider (no cluster): the Certificate custom resource
 * is planned under the component with the issuer and the cluster's server name, the nodes, the
 * proxies and the migration Job mount its Secret and speak TLS. Half-given settings are refused at
 * the mock level (test/components/shard-tls.test.ts): a failing preview costs the engine about
 * two minutes here, and preview.test.ts already shows such errors reach the user.
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

const find = (preview: Preview, type: string, name: string) => {
  const step = preview.steps.find((s) => urnType(s.urn) === type && urnName(s.urn) === name);
  assert.ok(step?.newState?.inputs, `no ${type} ${name} in the plan`);
  return step.newState;
};

describe("staging preview with shardTls from a cert-manager issuer", () => {
  let ws: Workspace;
  let preview: Preview;
  before(() => {
    ws = createWorkspace("staging");
    ws.setConfig({ shardTlsIssuer: "internal-ca", shardTlsIssuerKind: "ClusterIssuer" });
    preview = parsePreview(ws.pulumiOk(["preview", "--json", "--stack", "staging"]).stdout);
  });
  after(() => ws?.dispose());

  test("plans the Certificate under the component, for the cluster's server name, from the issuer", () => {
    const certificate = find(preview, "kubernetes:cert-manager.io/v1:Certificate", "redis-shard-tls");
    assert.equal(urnName(certificate.parent!), "redis");
    const inputs = certificate.inputs!;
    assert.equal(inputs["apiVersion"], "cert-manager.io/v1");
    assert.equal(inputs["kind"], "Certificate");
    const spec = inputs["spec"] as Record<string, unknown>;
    assert.equal(spec["secretName"], "redis-shard-tls");
    assert.deepEqual(spec["dnsNames"], ["redis-shards.redis-staging.svc.cluster.local"]);
    assert.deepEqual(spec["issuerRef"], {
      name: "internal-ca",
      kind: "ClusterIssuer",
      group: "cert-manager.io",
    });
  });

  test("the nodes, the proxies and the migration Job mount its Secret and speak TLS", () => {
    const set = find(preview, "kubernetes:apps/v1:StatefulSet", "redis-shard-0").inputs!;
    const pod = (set["spec"] as { template: { spec: Record<string, unknown> } }).template.spec as {
      volumes: { name: string; secret?: { secretName: string } }[];
      containers: { readinessProbe: { exec: { command: string[] } } }[];
    };
    assert.deepEqual(pod.volumes.find((v) => v.name === "tls")?.secret, { secretName: "redis-shard-tls" });
    assert.match(
      pod.containers[0]!.readinessProbe.exec.command[2]!,
      /redis-cli --tls --cacert \/etc\/redis-tls\/ca\.crt/,
    );

    const proxy = find(preview, "kubernetes:apps/v1:Deployment", "redis-proxy").inputs!;
    const proxyPod = (
      proxy["spec"] as {
        template: { spec: { volumes: { name: string; secret?: { secretName: string } }[] } };
      }
    ).template.spec;
    assert.deepEqual(proxyPod.volumes.find((v) => v.name === "shard-tls")?.secret, {
      secretName: "redis-shard-tls",
    });

    const job = find(preview, "kubernetes:batch/v1:Job", "redis-migration-run").inputs!;
    const args = (job["spec"] as { template: { spec: { containers: { args: string[] }[] } } }).template.spec
      .containers[0]!.args;
    assert.deepEqual(args.slice(args.indexOf("--tls")), [
      "--tls",
      ...["--cacert", "/etc/dredis-shard-tls/ca.crt", "--cert", "/etc/dredis-shard-tls/tls.crt"],
      ...["--key", "/etc/dredis-shard-tls/tls.key", "--sni", "redis-shards.redis-staging.svc.cluster.local"],
    ]);
  });
});
