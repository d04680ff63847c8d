/**
 * A shard on Docker: per node, a volume and a redis-server container on the cluster's network,
 * reachable under its stable hostname (a network alias), restarted by Docker when it dies.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ENV } from "../../src/contract.ts";
import type { ClusterSpec } from "../plan/spec.ts";
import type { ShardPlan } from "../plan/topology.ts";
import { REDIS_CONF_DIR, REDIS_DATA_DIR, renderAuthConf, renderShardRedisConf } from "../plan/redis-conf.ts";

export interface DockerShardInputs {
  shard: ShardPlan;
  persistence: ClusterSpec["persistence"];
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  password: pulumi.Input<string>;
  drainGuard?: pulumi.ResourceHook;
}

export interface DockerShard {
  volumes: docker.Volume[];
  containers: docker.Container[];
}

export function createDockerShard(
  name: string,
  inputs: DockerShardInputs,
  parent: pulumi.Resource,
): DockerShard {
  const password = pulumi.secret(inputs.password);
  const hooks = inputs.drainGuard ? { beforeDelete: [inputs.drainGuard] } : undefined;
  const volumes: docker.Volume[] = [];
  const containers: docker.Container[] = [];
  for (const node of inputs.shard.nodes) {
    const volume = new docker.Volume(
      `${name}-${node.ordinal}-data`,
      { name: `${node.resourceName}-data` },
      // The data outlives a container replacement; deleting the shard is what deletes it.
      { parent, hooks },
    );
    volumes.push(volume);
    containers.push(
      new docker.Container(
        `${name}-${node.ordinal}`,
        {
          name: node.resourceName,
          hostname: node.hostname,
          image: inputs.image,
          command: ["redis-server", `${REDIS_CONF_DIR}/redis.conf`],
          uploads: [
            {
              file: `${REDIS_CONF_DIR}/redis.conf`,
              content: renderShardRedisConf({
                persistence: inputs.persistence,
                maxmemoryMb: inputs.shard.maxmemoryMb,
                announceHostname: node.hostname,
              }),
            },
            { file: `${REDIS_CONF_DIR}/auth.conf`, content: password.apply(renderAuthConf) },
          ],
          // redis-cli reads REDISCLI_AUTH, so the health check never puts the password on a command line.
          envs: [pulumi.interpolate`${ENV.redisCliAuth}=${password}`],
          networksAdvanced: [{ name: inputs.network, aliases: [node.hostname] }],
          volumes: [{ volumeName: volume.name, containerPath: REDIS_DATA_DIR }],
          healthcheck: {
            tests: ["CMD-SHELL", "redis-cli ping | grep -q PONG"],
            interval: "5s",
            timeout: "3s",
            retries: 5,
            startPeriod: "10s",
          },
          memory: inputs.shard.memoryLimitMb,
          restart: "unless-stopped",
          // Healthy before anything that depends on the shard (the migration) starts.
          wait: true,
          waitTimeout: 120,
        },
        // The container name is fixed (it is the node's identity), so a replacement must free it first.
        { parent, deleteBeforeReplace: true, hooks },
      ),
    );
  }
  return { volumes, containers };
}
