/**
 * What every Kubernetes deployment shares: the Secret holding the password, and during a rotation
 * the previous one (the migration Job's step 1 reads both).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labelsFor } from "./common.ts";

export function createKubernetesInfra(
  name: string,
  namespace: string,
  password: pulumi.Input<string>,
  parent: pulumi.Resource,
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
    { parent },
  );
  return { authSecret, authSecretName };
}
