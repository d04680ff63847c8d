/**
 * The slot migration on Kubernetes: a Job of the runtime image, replaced (so run) on every
 * deployment by SlotMigration's replacementTrigger; its pod template carries the topology hash
 * for people reading the cluster. Pulumi awaits it: a failed Job fails the deployment. No
 * `ttlSecondsAfterFinished`: a Job the TTL controller deleted would be re-created, and so re-run,
 * by the next refresh.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { SHARD_TLS_CLIENT_DIR } from "../plan/shard-tls.ts";
import { labelsFor, nonRootPod, restrictedContainer, RUNTIME_UID } from "./common.ts";

export interface KubernetesMigrationInputs {
  clusterName: string;
  namespace: string;
  topologyHash: string;
  args: string[];
  env: k8s.types.input.core.v1.EnvVar[];
  image: pulumi.Input<string>;
  /** TLS-only shards: the Secret with their CA and the client certificate, mounted for `--tls`. */
  tlsSecretName?: string | undefined;
}

export function createKubernetesMigration(
  name: string,
  inputs: KubernetesMigrationInputs,
  opts: pulumi.CustomResourceOptions,
): k8s.batch.v1.Job {
  const labels = labelsFor(inputs.clusterName, "migration");
  const annotations = { "dredis.io/topology-hash": inputs.topologyHash };
  return new k8s.batch.v1.Job(
    name,
    {
      // No metadata.name: an auto-named Job can be replaced create-before-delete.
      metadata: { namespace: inputs.namespace, labels, annotations },
      spec: {
        // `dredis cluster apply` is idempotent and resumes, so a retry is safe.
        backoffLimit: 2,
        template: {
          metadata: { labels, annotations },
          spec: {
            restartPolicy: "Never",
            securityContext: nonRootPod(RUNTIME_UID),
            containers: [
              {
                name: "apply",
                image: inputs.image,
                args: inputs.args,
                env: inputs.env,
                resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
                securityContext: restrictedContainer,
                ...(inputs.tlsSecretName === undefined
                  ? {}
                  : {
                      volumeMounts: [{ name: "shard-tls", mountPath: SHARD_TLS_CLIENT_DIR, readOnly: true }],
                    }),
              },
            ],
            ...(inputs.tlsSecretName === undefined
              ? {}
              : { volumes: [{ name: "shard-tls", secret: { secretName: inputs.tlsSecretName } }] }),
          },
        },
      },
    },
    opts,
  );
}
