/**
 * What every Kubernetes deployment shares: the Secret holding the password, and during a rotation
 * the previous one (the migration Job's step 1 reads both); with `shardTls.issuerRef`, the
 * cert-manager Certificate that fills the shards' TLS Secret.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { certificateSpec } from "../plan/shard-tls.ts";
import type { ShardTlsSpec } from "../shard-tls.ts";
import type { InfraOptions } from "../platform.ts";
import { labelsFor } from "./common.ts";

/**
 * The shards' Certificate (cert-manager.io/v1): cert-manager issues it from the user's issuer into
 * `secretName` and renews it there; the nodes, proxies and migration mount that Secret.
 */
export function createShardCertificate(
  name: string,
  namespace: string,
  tls: Extract<ShardTlsSpec, { platform: "kubernetes" }>,
  opts: InfraOptions,
): k8s.apiextensions.CustomResource | undefined {
  if (tls.issuerRef === undefined) return undefined;
  return new k8s.apiextensions.CustomResource(
    `${name}-shard-tls`,
    {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: `${name}-shard-tls`, namespace, labels: labelsFor(name, "shard-tls") },
      spec: certificateSpec({
        secretName: tls.secretName,
        dnsNames: [tls.serverName!],
        issuerRef: tls.issuerRef,
      }),
    },
    { ...opts },
  );
}

export function createKubernetesInfra(
  name: string,
  namespace: string,
  password: pulumi.Input<string>,
  opts: InfraOptions,
  previousPassword?: pulumi.Input<string>,
): { authSecret: k8s.core.v1.Secret; authSecretName: string } {
  const authSecretName = `${name}-auth`;
  const authSecret = new k8s.core.v1.Secret(
    authSecretName,
    {
      metadata: { name: authSecretName, namespace, labels: labelsFor(name, "auth") },
      stringData: {
        password: pulumi.secret(password),
        ...(previousPassword === undefined ? {} : { previousPassword: pulumi.secret(previousPassword) }),
      },
    },
    { ...opts },
  );
  return { authSecret, authSecretName };
}
