/**
 * RedisShard: one master and its replicas as one workload, with stable hostnames, persistent
 * volumes, health checks and a memory size. The nodes boot as empty cluster nodes; the
 * SlotMigration joins them into the cluster (masters, replicas, slots).
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { platformDrivers } from "./drivers.ts";
import { clusterSpecShape, parseSpec, type Platform } from "./plan/spec.ts";
import { checkComponentName, planShard } from "./plan/topology.ts";
import type { ShardTlsSpec } from "./shard-tls.ts";

export interface RedisShardArgs {
  /**
   * Where the shard runs.
   * @example "kubernetes"
   */
  platform: Platform;
  /**
   * Name of the cluster the shard belongs to; with `index` it fixes the nodes' names and hostnames
   * (`<clusterName>-shard-<index>-<ordinal>`).
   * @example "redis"
   */
  clusterName: string;
  /**
   * Position of the shard in the cluster, from 0.
   * @example 3
   */
  index: number;
  /**
   * Password of the `default` user, for clients and for replication. Treated as a secret.
   * @example config.requireSecret("password")
   */
  password: pulumi.Input<string>;
  /**
   * Replicas of the master.
   * @default 1
   * @example 2
   */
  replicasPerShard?: number;
  /**
   * `maxmemory` of every node, in MB; the container limit adds room for buffers and forks.
   * @default 256
   * @example 4096
   */
  shardMemoryMb?: number;
  /**
   * How nodes persist data: append-only file, RDB snapshots, or not at all.
   * @default "aof"
   * @example "rdb"
   */
  persistence?: "aof" | "rdb" | "none";
  /**
   * Redis image. On Docker, an image name or ID the engine has (DistributedRedis pulls it).
   * @default "redis:7.2"
   * @example "redis:7.2.5"
   */
  redisImage?: pulumi.Input<string>;
  /**
   * Docker only: the user-defined network the nodes join. Required on Docker.
   * @example network.name
   */
  dockerNetwork?: pulumi.Input<string>;
  /**
   * Kubernetes only: namespace of the shard's objects (it must exist).
   * @default "default"
   * @example "redis"
   */
  namespace?: string;
  /**
   * Kubernetes only: the cluster's DNS domain, part of every node's hostname.
   * @default "cluster.local"
   * @example "cluster.example"
   */
  clusterDomain?: string;
  /**
   * Kubernetes only: size of each node's volume, in GiB.
   * @default 1
   * @example 50
   */
  storageGb?: number;
  /**
   * Kubernetes only: StorageClass of the volumes; the cluster's default when unset.
   * @example "fast-ssd"
   */
  storageClass?: string;
  /**
   * Kubernetes only: whether a master and its replicas must (required) or should (preferred)
   * run on different nodes.
   * @default "required"
   * @example "preferred"
   */
  podAntiAffinity?: "required" | "preferred";
  /**
   * A beforeDelete hook bound to every resource of the shard, which refuses the delete of a shard
   * that may still own slots (DistributedRedis passes its slot migration's `drained` hook).
   */
  drainGuard?: pulumi.ResourceHook;
  /**
   * Resources this shard's nodes wait for (the previous shard's `rollTail`), so a change that
   * replaces nodes replaces them one at a time across the cluster.
   */
  rollAfter?: pulumi.Resource[];
  /**
   * The nodes serve TLS only, with the certificate this names: DistributedRedis's `shardTls` as
   * `parseShardTls` validated it (the proxies and the migration must use the same).
   */
  shardTls?: ShardTlsSpec;
}

const shardArgsSchema = clusterSpecShape
  .pick({
    platform: true,
    replicasPerShard: true,
    shardMemoryMb: true,
    persistence: true,
    namespace: true,
    clusterDomain: true,
    storageGb: true,
    storageClass: true,
    podAntiAffinity: true,
  })
  .extend({ index: z.number().int().min(0).max(1023) });

export class RedisShard extends pulumi.ComponentResource {
  /** `host:port` of each node; node 0 starts as the master. */
  public readonly addresses: pulumi.Output<string[]>;
  /** What the next shard's nodes wait for (its `rollAfter`): this shard's last node to be replaced. */
  public readonly rollTail: pulumi.Resource[];

  constructor(name: string, args: RedisShardArgs, opts?: pulumi.ComponentResourceOptions) {
    super("distributed-redis:index:RedisShard", name, {}, opts);
    const { clusterName, password, redisImage, dockerNetwork, drainGuard, rollAfter, shardTls, ...rest } =
      args;
    checkComponentName(clusterName);
    const spec = parseSpec(shardArgsSchema, rest, "RedisShard args");
    const plan = planShard(clusterName, spec.index, spec);
    const image = redisImage ?? "redis:7.2";

    this.rollTail = platformDrivers[spec.platform].shard(
      name,
      { clusterName, shard: plan, spec, image, password, dockerNetwork, drainGuard, rollAfter, shardTls },
      this,
    );

    this.addresses = pulumi.output(plan.nodes.map((node) => node.address));
    this.registerOutputs({ addresses: this.addresses });
  }
}
