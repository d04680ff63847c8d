/** The Kubernetes driver: StatefulSets, a Deployment and a Job in one namespace. */
import * as pulumi from "@pulumi/pulumi";
import { clusterApplyArgv, ENV } from "../../src/contract.ts";
import { argError } from "../plan/spec.ts";
import type { PlatformDriver } from "../platform.ts";
import { secretEnv } from "./common.ts";
import { createKubernetesInfra, createShardCertificate } from "./infra.ts";
import { adminTlsArgs } from "../plan/shard-tls.ts";
import type { ShardTlsSpec } from "../shard-tls.ts";
import { createKubernetesMigration } from "./migration.ts";
import { createKubernetesProxyFleet } from "./proxy-fleet.ts";
import { createKubernetesShard } from "./shard.ts";

export const kubernetesDriver: PlatformDriver = {
  infra(name, spec, password, opts, previousPassword, shardTls) {
    // The schema requires it on Kubernetes: a cluster cannot pull an image built on this machine.
    if (spec.image === undefined) throw argError("DistributedRedis args", "image", "required on kubernetes");
    if (!spec.image.includes("@sha256:"))
      pulumi.log.warn(
        `image ${spec.image} is named by tag: pods keep running whatever the tag named when they ` +
          "started; name it by digest (repo@sha256:...) so a new image reaches them",
      );
    const infra = createKubernetesInfra(name, spec.namespace, password, opts, previousPassword);
    const tls = kubernetesShardTls(shardTls);
    const certificate = tls && createShardCertificate(name, spec.namespace, tls, opts);
    return {
      shared: [infra.authSecret, ...(certificate ? [certificate] : [])],
      runtimeImage: spec.image,
      redisImage: spec.redisImage,
      passwordSecret: infra.authSecretName,
    };
  },

  shard(name, inputs, parent) {
    const shard = createKubernetesShard(
      name,
      {
        clusterName: inputs.clusterName,
        shard: inputs.shard,
        spec: inputs.spec,
        image: inputs.image,
        password: inputs.password,
        drainGuard: inputs.drainGuard,
        rollAfter: inputs.rollAfter ?? [],
        tls: kubernetesShardTls(inputs.shardTls),
      },
      parent,
    );
    return [shard.statefulSet];
  },

  proxyFleet(name, inputs, parent) {
    const { spec } = inputs;
    const fleet = createKubernetesProxyFleet(
      name,
      {
        clusterName: inputs.clusterName,
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
        spec,
        tls: inputs.tls?.platform === "kubernetes" ? inputs.tls : undefined,
        shardTls: kubernetesShardTls(inputs.shardTls),
      },
      parent,
    );
    return { endpointHost: fleet.endpointHost, proxyAddresses: pulumi.output(fleet.proxyAddresses) };
  },

  migration(name, inputs, opts) {
    if (inputs.passwordSecret === undefined)
      throw argError("SlotMigration args", "passwordSecret", "required on kubernetes");
    const tls = kubernetesShardTls(inputs.shardTls);
    return createKubernetesMigration(
      name,
      {
        clusterName: inputs.clusterName,
        namespace: inputs.namespace ?? "default",
        topologyHash: inputs.topologyHash,
        args: [
          ...clusterApplyArgv(inputs.topology),
          ...(inputs.dropPreviousPassword ? ["--drop-previous-password"] : []),
          ...(tls === undefined ? [] : adminTlsArgs(tls)),
        ],
        env: [
          secretEnv(ENV.password, inputs.passwordSecret, "password"),
          ...(inputs.previousPassword === undefined
            ? []
            : [secretEnv(ENV.previousPassword, inputs.passwordSecret, "previousPassword")]),
          { name: "TOPOLOGY_HASH", value: inputs.topologyHash },
          { name: ENV.maxmemory, value: `${inputs.maxmemoryMb}mb` },
          ...(inputs.persistence === undefined ? [] : [{ name: ENV.persistence, value: inputs.persistence }]),
        ],
        image: inputs.image,
        tlsSecretName: tls?.secretName,
      },
      opts,
    );
  },
};

function kubernetesShardTls(
  tls: ShardTlsSpec | undefined,
): Extract<ShardTlsSpec, { platform: "kubernetes" }> | undefined {
  return tls?.platform === "kubernetes" ? tls : undefined;
}
