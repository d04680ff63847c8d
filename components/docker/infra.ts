/**
 * What every Docker deployment shares: its user-defined network (Docker allocates from the
 * upper half, we pin addresses in the lower half) and its images, built or pulled once.
 */
import { fileURLToPath } from "node:url";
import * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import type { DockerAddressPlan } from "../plan/addresses.ts";
import type { ClusterSpec } from "../plan/spec.ts";
import type { InfraOptions } from "../platform.ts";

/** The package root: the build context of the runtime image (see Dockerfile, .dockerignore). */
const packageRoot = fileURLToPath(new URL("../..", import.meta.url));

export interface DockerInfra {
  network: docker.Network;
  runtimeImage: pulumi.Input<string>;
  redisImage: pulumi.Output<string>;
  /** Pulled only for a load-balanced fleet. */
  haproxyImage: pulumi.Output<string> | undefined;
}

export function createDockerInfra(
  name: string,
  spec: Pick<ClusterSpec, "image" | "redisImage" | "haproxyImage" | "proxyMode">,
  addresses: DockerAddressPlan,
  opts: InfraOptions,
): DockerInfra {
  const network = new docker.Network(
    `${name}-net`,
    {
      name: `${name}-net`,
      driver: "bridge",
      ipamConfigs: [{ subnet: addresses.subnet, gateway: addresses.gateway, ipRange: addresses.ipRange }],
    },
    { ...opts },
  );
  // Containers name images by ID, not by tag: the provider keeps a tag in its state as it was, so
  // a rebuilt or re-pulled image would never reach a container named by tag.
  const pull = (resourceName: string, image: string) =>
    new docker.RemoteImage(resourceName, { name: image, keepLocally: true }, { ...opts }).imageId;
  const runtimeImage =
    spec.image !== undefined
      ? pull(`${name}-runtime-image`, spec.image)
      : // With skipPush, repoDigest is the built image's ID: it changes with every rebuild.
        new docker.Image(
          `${name}-runtime`,
          {
            imageName: `${name}-dredis:local`,
            build: { context: packageRoot, dockerfile: `${packageRoot}Dockerfile` },
            skipPush: true,
          },
          { ...opts },
        ).repoDigest;
  return {
    network,
    runtimeImage,
    redisImage: pull(`${name}-redis-image`, spec.redisImage),
    haproxyImage:
      spec.proxyMode === "load-balanced" ? pull(`${name}-haproxy-image`, spec.haproxyImage) : undefined,
  };
}
