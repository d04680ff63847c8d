/** The Docker driver: containers on one user-defined network of a Docker engine. */
import * as pulumi from "@pulumi/pulumi";
import { clusterApplyArgv, ENV } from "../../src/contract.ts";
import { planDockerAddresses } from "../plan/addresses.ts";
import { adminTlsArgs } from "../plan/shard-tls.ts";
import { argError } from "../plan/spec.ts";
import type { ShardTlsSpec } from "../shard-tls.ts";
import type { PlatformDriver } from "../platform.ts";
import { createDockerInfra } from "./infra.ts";
import { createDockerMigration } from "./migration.ts";
import { createDockerProxyFleet } from "./proxy-fleet.ts";
import { createDockerShard } from "./shard.ts";
import { shardTlsUploads } from "./shard-tls-files.ts";

/** Every Docker workload joins the deployment's network, which DistributedRedis creates. */
function requireNetwork(component: string, network: pulumi.Input<string> | undefined): pulumi.Input<string> {
  if (network === undefined) throw argError(`${component} args`, "dockerNetwork", "required on docker");
  return network;
}

export const dockerDriver: PlatformDriver = {
  infra(name, spec, _password, opts) {
    const infra = createDockerInfra(name, spec, planDockerAddresses(spec.dockerSubnet, spec.fixedIp), opts);
    return {
      shared: [infra.network],
      runtimeImage: infra.runtimeImage,
      redisImage: infra.redisImage,
      haproxyImage: infra.haproxyImage,
      dockerNetwork: infra.network.name,
    };
  },

  shard(name, inputs, parent) {
    const network = requireNetwork("RedisShard", inputs.dockerNetwork);
    const shard = createDockerShard(
      name,
      {
        shard: inputs.shard,
        persistence: inputs.spec.persistence,
        image: inputs.image,
        network,
        password: inputs.password,
        drainGuard: inputs.drainGuard,
        rollAfter: inputs.rollAfter ?? [],
        tls: dockerShardTls(inputs.shardTls),
      },
      parent,
    );
    return [shard.containers.at(-1)!];
  },

  proxyFleet(name, inputs, parent) {
    const { spec } = inputs;
    const network = requireNetwork("ProxyFleet", inputs.dockerNetwork);
    const fleet = createDockerProxyFleet(
      name,
      {
        mode: spec.proxyMode,
        hosts: spec.proxyHosts,
        workers: spec.proxyWorkers,
        settings: { crossSlot: spec.crossSlot, readFrom: spec.readFrom },
        port: spec.port,
        seeds: spec.seeds,
        password: inputs.password,
        users: inputs.users,
        previousPassword: inputs.previousPassword,
        image: inputs.image,
        haproxyImage: inputs.haproxyImage ?? "haproxy:2.8",
        network,
        addresses: planDockerAddresses(spec.dockerSubnet, spec.fixedIp),
        tls: inputs.tls?.platform === "docker" ? inputs.tls : undefined,
        shardTls: dockerShardTls(inputs.shardTls),
      },
      parent,
    );
    return {
      endpointHost: pulumi.output(fleet.endpointHost),
      proxyAddresses: pulumi.output(fleet.proxyAddresses),
    };
  },

  migration(name, inputs, opts) {
    const network = requireNetwork("SlotMigration", inputs.dockerNetwork);
    const tls = dockerShardTls(inputs.shardTls);
    return createDockerMigration(
      name,
      {
        command: [
          ...clusterApplyArgv(inputs.topology),
          ...(inputs.dropPreviousPassword ? ["--drop-previous-password"] : []),
          ...(tls === undefined ? [] : adminTlsArgs(tls)),
        ],
        envs: [
          pulumi.interpolate`${ENV.password}=${pulumi.secret(inputs.password)}`,
          ...(inputs.previousPassword === undefined
            ? []
            : [pulumi.interpolate`${ENV.previousPassword}=${pulumi.secret(inputs.previousPassword)}`]),
          `TOPOLOGY_HASH=${inputs.topologyHash}`,
          `${ENV.maxmemory}=${inputs.maxmemoryMb}mb`,
          ...(inputs.persistence === undefined ? [] : [`${ENV.persistence}=${inputs.persistence}`]),
        ],
        image: inputs.image,
        network,
        uploads: shardTlsUploads(tls),
      },
      opts,
    );
  },
};

function dockerShardTls(
  tls: ShardTlsSpec | undefined,
): Extract<ShardTlsSpec, { platform: "docker" }> | undefined {
  return tls?.platform === "docker" ? tls : undefined;
}
