/**
 * A proxy fleet on Kubernetes: a Deployment of proxy pods with their config in a Secret,
 * readiness on the admin port's /readyz, anti-affinity, a PodDisruptionBudget and a Service.
 * - load-balanced: the Service selects every ready proxy;
 * - master-backup: two pods elect a leader through a Lease (in the runtime), the leader labels
 *   its own pod `dredis.io/role=active`, and the Service selects only that label. (A Service that
 *   selected both and relied on readiness would never settle Pulumi's Service await.)
 * A fixed IP is requested through the MetalLB and kube-vip annotations.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../plan/spec.ts";
import { PROXY_CONFIG_PATH, renderProxyConf, type ProxySettings } from "../plan/proxy-conf.ts";
import { PROXY_TLS_DIR } from "../plan/tls.ts";
import type { ProxyTlsSpec } from "../tls.ts";
import type { ShardTlsSpec } from "../shard-tls.ts";
import { SHARD_TLS_CLIENT_DIR } from "../plan/shard-tls.ts";
import { ACTIVE_ROLE, ENV, POD_ROLE_LABEL, PROXY_ADMIN_PORT } from "../../src/contract.ts";
import {
  antiAffinity,
  contentHash,
  labelsFor,
  passwordHash,
  nonRootPod,
  restrictedContainer,
  RUNTIME_UID,
  type Labels,
} from "./common.ts";

export interface KubernetesProxyFleetInputs {
  clusterName: string;
  mode: "master-backup" | "load-balanced";
  hosts: number;
  workers: number;
  /** Proxy settings of the spec (crossSlot, readFrom). */
  settings?: ProxySettings | undefined;
  port: number;
  seeds: string[];
  password: pulumi.Input<string>;
  users?: pulumi.Input<Record<string, string>> | undefined;
  previousPassword?: pulumi.Input<string> | undefined;
  image: pulumi.Input<string>;
  spec: Pick<ClusterSpec, "namespace" | "clusterDomain" | "serviceType" | "fixedIp" | "podAntiAffinity">;
  /** TLS for clients from the user's TLS Secret, mounted (its renewals reach the proxies without a restart). */
  tls?: Extract<ProxyTlsSpec, { platform: "kubernetes" }>;
  /** TLS-only shards: their Secret (CA, client certificate) mounted for the proxies' backendTls. */
  shardTls?: Extract<ShardTlsSpec, { platform: "kubernetes" }>;
}

export interface KubernetesProxyFleet {
  config: k8s.core.v1.Secret;
  rbac: pulumi.Resource[];
  deployment: k8s.apps.v1.Deployment;
  disruptionBudget: k8s.policy.v1.PodDisruptionBudget;
  service: k8s.core.v1.Service;
  endpointHost: pulumi.Output<string>;
  proxyAddresses: string[];
}

export function createKubernetesProxyFleet(
  name: string,
  inputs: KubernetesProxyFleetInputs,
  parent: pulumi.Resource,
): KubernetesProxyFleet {
  const { spec } = inputs;
  const masterBackup = inputs.mode === "master-backup";
  const labels = labelsFor(inputs.clusterName, "proxy");
  const metadata = (extra: { labels?: Labels; annotations?: Record<string, string> } = {}) => ({
    name,
    namespace: spec.namespace,
    labels: extra.labels ?? labels,
    ...(extra.annotations ? { annotations: extra.annotations } : {}),
  });
  const render = ([password, users, previousPassword]: [
    string,
    Record<string, string> | undefined,
    string | undefined,
  ]) =>
    renderProxyConf({
      seeds: inputs.seeds,
      port: inputs.port,
      workers: inputs.workers,
      settings: inputs.settings,
      password,
      users,
      previousPassword,
      ...(inputs.tls ? { tls: inputs.tls } : {}),
      ...(inputs.shardTls ? { shardTls: { serverName: inputs.shardTls.serverName } } : {}),
    });

  const config = new k8s.core.v1.Secret(
    `${name}-config`,
    {
      metadata: { ...metadata(), name: `${name}-config` },
      stringData: {
        "proxy.yaml": pulumi
          .secret(pulumi.all([inputs.password, inputs.users, inputs.previousPassword]))
          .apply(render),
      },
    },
    { parent },
  );
  const rbac = masterBackup ? createLeaderElectionRbac(name, metadata(), parent) : [];
  const leaseEnv = [
    { name: ENV.podName, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: ENV.podNamespace, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: ENV.leaseName, value: `${name}-leader` },
  ];
  const deployment = new k8s.apps.v1.Deployment(
    name,
    {
      metadata: metadata(),
      spec: {
        replicas: masterBackup ? 2 : inputs.hosts,
        selector: { matchLabels: labels },
        template: {
          metadata: {
            labels,
            annotations: {
              // The config's hash leaves the password out; the password has its own, slow hash.
              "dredis.io/config-hash": contentHash(render(["<password>", undefined, undefined])),
              // With a previous password (a rotation), both: adding or removing it rolls the proxies.
              "dredis.io/auth-hash": passwordHash(
                inputs.clusterName,
                inputs.previousPassword === undefined
                  ? inputs.password
                  : pulumi.interpolate`${inputs.password}\n${inputs.previousPassword}`,
              ),
              // Users may hold passwords too: a changed one rolls the proxies, with a slow hash.
              ...(inputs.users !== undefined
                ? {
                    "dredis.io/users-hash": passwordHash(
                      inputs.clusterName,
                      pulumi.output(inputs.users).apply((u) => JSON.stringify(u)),
                    ),
                  }
                : {}),
            },
          },
          spec: {
            ...(masterBackup ? { serviceAccountName: name } : {}),
            affinity: antiAffinity(labels, spec.podAntiAffinity),
            securityContext: nonRootPod(RUNTIME_UID),
            containers: [
              {
                name: "proxy",
                image: inputs.image,
                args: [
                  "proxy",
                  "--config",
                  PROXY_CONFIG_PATH,
                  ...(masterBackup ? ["--leader-election"] : []),
                ],
                env: masterBackup ? leaseEnv : [],
                ports: [
                  { name: "redis", containerPort: inputs.port },
                  { name: "admin", containerPort: PROXY_ADMIN_PORT },
                ],
                readinessProbe: { httpGet: { path: "/readyz", port: "admin" }, periodSeconds: 5 },
                livenessProbe: {
                  httpGet: { path: "/healthz", port: "admin" },
                  initialDelaySeconds: 10,
                  periodSeconds: 10,
                },
                resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "1Gi" } },
                securityContext: restrictedContainer,
                volumeMounts: [
                  { name: "config", mountPath: "/etc/dredis", readOnly: true },
                  ...(inputs.tls ? [{ name: "tls", mountPath: PROXY_TLS_DIR, readOnly: true }] : []),
                  ...(inputs.shardTls
                    ? [{ name: "shard-tls", mountPath: SHARD_TLS_CLIENT_DIR, readOnly: true }]
                    : []),
                ],
              },
            ],
            volumes: [
              { name: "config", secret: { secretName: `${name}-config` } },
              // Not a subPath mount: the kubelet updates a whole Secret volume in place when it changes.
              ...(inputs.tls ? [{ name: "tls", secret: { secretName: inputs.tls.secretName } }] : []),
              ...(inputs.shardTls
                ? [{ name: "shard-tls", secret: { secretName: inputs.shardTls.secretName } }]
                : []),
            ],
          },
        },
      },
    },
    { parent, dependsOn: [config, ...rbac] },
  );
  const disruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
    name,
    { metadata: metadata(), spec: { maxUnavailable: 1, selector: { matchLabels: labels } } },
    { parent },
  );
  const fixedIpAnnotations: Record<string, string> = spec.fixedIp
    ? { "metallb.io/loadBalancerIPs": spec.fixedIp, "kube-vip.io/loadbalancerIPs": spec.fixedIp }
    : {};
  const service = new k8s.core.v1.Service(
    name,
    {
      metadata: metadata({ annotations: fixedIpAnnotations }),
      spec: {
        type: spec.serviceType,
        selector: masterBackup ? { ...labels, [POD_ROLE_LABEL]: ACTIVE_ROLE } : labels,
        ports: [{ name: "redis", port: inputs.port, targetPort: "redis" }],
      },
    },
    { parent, dependsOn: [deployment] },
  );
  const inCluster = `${name}.${spec.namespace}.svc.${spec.clusterDomain}`;
  const endpointHost =
    spec.fixedIp !== undefined
      ? pulumi.output(spec.fixedIp)
      : spec.serviceType === "LoadBalancer"
        ? service.status.apply(
            (s) => s?.loadBalancer?.ingress?.[0]?.ip ?? s?.loadBalancer?.ingress?.[0]?.hostname ?? inCluster,
          )
        : pulumi.output(inCluster);
  return {
    config,
    rbac,
    deployment,
    disruptionBudget,
    service,
    endpointHost,
    proxyAddresses: [`${inCluster}:${inputs.port}`],
  };
}

/** What the leader-election runtime needs: its Lease, and labelling its own pod. */
function createLeaderElectionRbac(
  name: string,
  metadata: { name: string; namespace: string; labels: Labels },
  parent: pulumi.Resource,
): pulumi.Resource[] {
  const account = new k8s.core.v1.ServiceAccount(name, { metadata }, { parent });
  const role = new k8s.rbac.v1.Role(
    name,
    {
      metadata,
      rules: [
        {
          apiGroups: ["coordination.k8s.io"],
          resources: ["leases"],
          verbs: ["get", "list", "watch", "create", "update"],
        },
        { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "patch"] },
      ],
    },
    { parent },
  );
  const binding = new k8s.rbac.v1.RoleBinding(
    name,
    {
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace: metadata.namespace }],
    },
    { parent, dependsOn: [account, role] },
  );
  return [account, role, binding];
}
