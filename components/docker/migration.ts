/**
 * The slot migration on Docker: a one-shot container of the runtime image on the cluster's
 * network. Pulumi waits for it to exit (`attach`) and keeps its exit code and logs, which the
 * afterCreate hook checks. SlotMigration's replacementTrigger replaces the container, i.e. runs
 * it again, on every deployment.
 */
import * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";

export interface DockerMigrationInputs {
  command: string[];
  envs: pulumi.Input<string>[];
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  /** Files written into the container before it starts (the shards' TLS files). */
  uploads?: { file: string; content: pulumi.Input<string> }[];
}

export function createDockerMigration(
  name: string,
  inputs: DockerMigrationInputs,
  opts: pulumi.CustomResourceOptions,
): docker.Container {
  return new docker.Container(
    name,
    {
      name,
      image: inputs.image,
      command: inputs.command,
      envs: inputs.envs,
      networksAdvanced: [{ name: inputs.network }],
      ...(inputs.uploads?.length ? { uploads: inputs.uploads } : {}),
      attach: true,
      logs: true,
      // A failed run is reported by the hook with its logs, not by the provider without them.
      mustRun: false,
      restart: "no",
    },
    { ...opts, deleteBeforeReplace: true },
  );
}
