/**
 * A shard on Kubernetes: one StatefulSet (master and replicas; pod ordinal = node ordinal) with
 * a headless Service giving each pod its stable hostname, a PVC per pod, anti-affinity between
 * the shard's pods, a PodDisruptionBudget, and the redis.conf + auth.conf in a Secret.
 *
 * The StatefulSet updates `OnDelete`: a new pod spec (memory, password, persistence, image)
 * restarts no pod. What Redis takes live (memory, password, persistence) the migration Job sets
 * on every node; the Secret is mounted as files, which the kubelet refreshes in running pods, so
 * the probes and the handover read the current password and a pod that restarts later starts with
 * the current spec and config. A change that needs a restart (redisImage) reaches each pod at its
 * next restart: `dredis cluster roll` (see docs/pulumi.md) restarts them one at a time, replicas
 * first, each master after its handover.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ENV } from "../../src/contract.ts";
import { shardHealthCheckScript } from "../plan/health-check.ts";
import type { ClusterSpec } from "../plan/spec.ts";
import {
  renderShardEntrypoint,
  SHARD_HANDOVER_TIMEOUT_SECONDS,
  SHARD_STOP_GRACE_SECONDS,
  shardEntrypointCommand,
  shardHandoverCommand,
} from "../plan/shard-entrypoint.ts";
import { CLUSTER_BUS_PORT, REDIS_PORT, type ShardPlan } from "../plan/topology.ts";
import { SHARD_TLS_NODE_DIR, shardTlsFiles } from "../plan/shard-tls.ts";
import type { ShardTlsSpec } from "../shard-tls.ts";
import { REDIS_CONF_DIR, REDIS_DATA_DIR, renderAuthConf, renderShardRedisConf } from "../plan/redis-conf.ts";
import {
  antiAffinity,
  contentHash,
  labelsFor,
  passwordHash,
  nonRootPod,
  REDIS_UID,
  restrictedContainer,
} from "./common.ts";

export interface KubernetesShardInputs {
  clusterName: string;
  shard: ShardPlan;
  spec: Pick<
    ClusterSpec,
    "persistence" | "namespace" | "clusterDomain" | "storageGb" | "storageClass" | "podAntiAffinity"
  >;
  image: pulumi.Input<string>;
  password: pulumi.Input<string>;
  drainGuard?: pulumi.ResourceHook;
  /** The previous shard's StatefulSet: one shard's pods roll at a time. */
  rollAfter: pulumi.Resource[];
  /** TLS-only nodes: the Secret (tls.crt, tls.key, ca.crt) is mounted at SHARD_TLS_NODE_DIR. */
  tls?: Extract<ShardTlsSpec, { platform: "kubernetes" }>;
}

export interface KubernetesShard {
  config: k8s.core.v1.Secret;
  service: k8s.core.v1.Service;
  statefulSet: k8s.apps.v1.StatefulSet;
  disruptionBudget: k8s.policy.v1.PodDisruptionBudget;
}

/** The Secret's `password` key as mounted: refreshed by the kubelet after a rotation. */
const PASSWORD_FILE = `${REDIS_CONF_DIR}/password`;

export function createKubernetesShard(
  name: string,
  inputs: KubernetesShardInputs,
  parent: pulumi.Resource,
): KubernetesShard {
  const { shard, spec } = inputs;
  const password = pulumi.secret(inputs.password);
  const hooks = inputs.drainGuard ? { beforeDelete: [inputs.drainGuard] } : undefined;
  const labels = labelsFor(inputs.clusterName, "shard", { "dredis.io/shard": shard.name });
  const metadata = (objectName: string) => ({ name: objectName, namespace: spec.namespace, labels });
  // One config for all pods of the StatefulSet: each pod announces its own name from the command line.
  // A whole Secret volume, not subPath: the kubelet swaps renewed files in, and the entrypoint reloads them.
  const tls = inputs.tls === undefined ? undefined : shardTlsFiles(SHARD_TLS_NODE_DIR);
  const redisConf = renderShardRedisConf({
    persistence: spec.persistence,
    maxmemoryMb: shard.maxmemoryMb,
    tls,
  });
  const announce = `$(${ENV.podName}).${shard.resourceName}.${spec.namespace}.svc.${spec.clusterDomain}`;

  const config = new k8s.core.v1.Secret(
    `${name}-config`,
    {
      metadata: metadata(`${shard.resourceName}-config`),
      stringData: { "redis.conf": redisConf, "auth.conf": password.apply(renderAuthConf), password },
    },
    { parent, hooks },
  );
  const service = new k8s.core.v1.Service(
    name,
    {
      metadata: metadata(shard.resourceName),
      spec: {
        clusterIP: "None",
        // Nodes must find each other (cluster bus) before they are ready.
        publishNotReadyAddresses: true,
        selector: labels,
        ports: [
          { name: "redis", port: REDIS_PORT, targetPort: "redis" },
          { name: "bus", port: CLUSTER_BUS_PORT, targetPort: "bus" },
        ],
      },
    },
    { parent, hooks },
  );
  const memory = `${shard.memoryLimitMb}Mi`;
  const entrypoint = renderShardEntrypoint({
    configPath: `${REDIS_CONF_DIR}/redis.conf`,
    handoverTimeoutSeconds: SHARD_HANDOVER_TIMEOUT_SECONDS,
    passwordFile: PASSWORD_FILE,
    tls,
  });
  const statefulSet = new k8s.apps.v1.StatefulSet(
    name,
    {
      metadata: metadata(shard.resourceName),
      spec: {
        serviceName: shard.resourceName,
        replicas: shard.nodes.length,
        podManagementPolicy: "Parallel",
        // See the top of this file: no restart of every pod for a change Redis takes live.
        updateStrategy: { type: "OnDelete" },
        selector: { matchLabels: labels },
        template: {
          metadata: {
            labels,
            annotations: {
              "dredis.io/config-hash": contentHash(redisConf),
              "dredis.io/auth-hash": passwordHash(inputs.clusterName, password),
            },
          },
          spec: {
            affinity: antiAffinity(labels, spec.podAntiAffinity),
            securityContext: nonRootPod(REDIS_UID),
            // The preStop handover and SHUTDOWN's save both run within it.
            terminationGracePeriodSeconds: SHARD_STOP_GRACE_SECONDS,
            containers: [
              {
                name: "redis",
                image: inputs.image,
                command: shardEntrypointCommand(entrypoint, ["--cluster-announce-hostname", announce]),
                // A pod being deleted (a roll, a drain, an eviction) hands its slots over before its
                // SIGTERM; the entrypoint would too, but the kubelet counts the grace period from here.
                lifecycle: { preStop: { exec: { command: shardHandoverCommand(entrypoint) } } },
                // No REDISCLI_AUTH: a variable keeps the password the pod started with.
                env: [{ name: ENV.podName, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
                ports: [
                  { name: "redis", containerPort: REDIS_PORT },
                  { name: "bus", containerPort: CLUSTER_BUS_PORT },
                ],
                // Ready once back in the cluster and, as a replica, synced: the rolling update (one
                // pod at a time) and the PodDisruptionBudget wait for that, not for a bare PONG.
                readinessProbe: {
                  exec: { command: ["sh", "-c", shardHealthCheckScript(REDIS_PORT, PASSWORD_FILE, tls)] },
                  periodSeconds: 5,
                  timeoutSeconds: 3,
                },
                livenessProbe: {
                  tcpSocket: { port: "redis" },
                  initialDelaySeconds: 15,
                  periodSeconds: 10,
                  failureThreshold: 6,
                },
                resources: { requests: { cpu: "100m", memory }, limits: { memory } },
                securityContext: restrictedContainer,
                volumeMounts: [
                  { name: "data", mountPath: REDIS_DATA_DIR },
                  { name: "config", mountPath: REDIS_CONF_DIR, readOnly: true },
                  ...(inputs.tls ? [{ name: "tls", mountPath: SHARD_TLS_NODE_DIR, readOnly: true }] : []),
                ],
              },
            ],
            volumes: [
              { name: "config", secret: { secretName: `${shard.resourceName}-config` } },
              ...(inputs.tls ? [{ name: "tls", secret: { secretName: inputs.tls.secretName } }] : []),
            ],
          },
        },
        // A removed shard (deleted only once drained) takes its volumes along, so re-adding its
        // index later starts from empty nodes, not a stale nodes.conf; scaling down keeps them.
        persistentVolumeClaimRetentionPolicy: { whenDeleted: "Delete", whenScaled: "Retain" },
        volumeClaimTemplates: [
          {
            metadata: { name: "data" },
            spec: {
              accessModes: ["ReadWriteOnce"],
              ...(spec.storageClass ? { storageClassName: spec.storageClass } : {}),
              resources: { requests: { storage: `${spec.storageGb}Gi` } },
            },
          },
        ],
      },
    },
    { parent, dependsOn: [config, service, ...inputs.rollAfter], hooks },
  );
  const disruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
    name,
    {
      metadata: metadata(shard.resourceName),
      spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
    },
    { parent, hooks },
  );
  return { config, service, statefulSet, disruptionBudget };
}
