/** What the Kubernetes objects of one DistributedRedis share: labels, hashing, affinity. */
import { createHash } from "node:crypto";
import type * as k8s from "@pulumi/kubernetes";

export type Labels = Record<string, string>;

/** The recommended labels, plus ours: enough to select one shard's or one fleet's pods. */
export function labelsFor(instance: string, component: string, extra: Labels = {}): Labels {
  return {
    "app.kubernetes.io/name": "distributed-redis",
    "app.kubernetes.io/instance": instance,
    "app.kubernetes.io/component": component,
    ...extra,
  };
}

/** A pod-template annotation value that changes with a config file, so pods restart on a change. */
export function contentHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/**
 * A pod-template annotation value that changes with the password: the proxies restart for it
 * (they read their config at start); the shards' StatefulSets update OnDelete, so it restarts none.
 */
export { passwordHash } from "../password-hash.ts";

/** Keeps pods with `labels` on different nodes: required (never together) or preferred. */
export function antiAffinity(
  labels: Labels,
  mode: "required" | "preferred",
): k8s.types.input.core.v1.Affinity {
  const term = { labelSelector: { matchLabels: labels }, topologyKey: "kubernetes.io/hostname" };
  return {
    podAntiAffinity:
      mode === "required"
        ? { requiredDuringSchedulingIgnoredDuringExecution: [term] }
        : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] },
  };
}

/** Reads a value from a Secret into an environment variable. */
export function secretEnv(name: string, secretName: string, key: string): k8s.types.input.core.v1.EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secretName, key } } };
}

/** The runtime image's user (`node` in node:20-slim); Redis's image uses 999. */
export const RUNTIME_UID = 1000;
export const REDIS_UID = 999;

export function nonRootPod(uid: number): k8s.types.input.core.v1.PodSecurityContext {
  return { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid };
}

export const restrictedContainer: k8s.types.input.core.v1.SecurityContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
};
