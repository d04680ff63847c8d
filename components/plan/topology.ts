/**
 * The topology plan: from a validated spec to every shard's and node's name, hostname and
 * address, the desired-topology document the migration workload applies, and its hash.
 *
 * Names depend only on the component name and a shard's index, never on how many shards there
 * are, so adding shards leaves every existing resource exactly as it was.
 */
import { createHash } from "node:crypto";
import { parseTopology, type Topology } from "../../src/cluster/topology.ts";
import { DredisError, ErrorCodes } from "../../src/errors.ts";
import type { ClusterSpec, Platform } from "./spec.ts";

/** Port every shard node serves clients on (each node has its own hostname). */
export const REDIS_PORT = 6379;
/** Redis Cluster's node-to-node bus: the client port + 10000, Redis's own default. */
export const CLUSTER_BUS_PORT = REDIS_PORT + 10000;

export interface NodePlan {
  /** Position in the shard: 0 starts as master, the rest as its replicas (the pod ordinal on Kubernetes). */
  ordinal: number;
  /** Pulumi name and Docker container name / Kubernetes pod name, e.g. "redis-shard-0-1". */
  resourceName: string;
  /** The name other nodes and clients resolve (announced with `cluster-announce-hostname`). */
  hostname: string;
  /** `hostname:6379`. */
  address: string;
}

export interface ShardPlan {
  index: number;
  /** Name in the topology document, e.g. "shard-0". */
  name: string;
  /** Pulumi name prefix and workload name, e.g. "redis-shard-0". */
  resourceName: string;
  nodes: NodePlan[];
  maxmemoryMb: number;
  /** Container memory limit: room for replication buffers and the copy-on-write of a rewrite fork. */
  memoryLimitMb: number;
}

export interface ClusterPlan {
  name: string;
  shards: ShardPlan[];
  /** The desired topology, as `dredis cluster apply --topology` reads it. */
  topology: Topology;
  /** Short, stable digest of `topology`: changes exactly when the topology does. */
  topologyHash: string;
  /** Every node's address, for cluster-mode clients. */
  seeds: string[];
  /**
   * The nodes of the first 3 shards: they exist at every shard count (the cluster never has
   * fewer), so the proxies' config, and with it the proxies, stays the same when shards change.
   */
  proxySeeds: string[];
}

/** Plans the cluster of component `name`. */
export function planCluster(name: string, spec: ClusterSpec): ClusterPlan {
  checkComponentName(name);
  const shards = Array.from({ length: spec.shards }, (_, index) => planShard(name, index, spec));
  const topology = parseTopology({
    shards: shards.map((shard) => ({
      name: shard.name,
      master: shard.nodes[0]!.address,
      replicas: shard.nodes.slice(1).map((node) => node.address),
    })),
  });
  return {
    name,
    shards,
    topology,
    topologyHash: hashTopology(topology),
    seeds: shards.flatMap((shard) => shard.nodes.map((node) => node.address)),
    proxySeeds: shards.slice(0, 3).flatMap((shard) => shard.nodes.map((node) => node.address)),
  };
}

type ShardSpec = Pick<
  ClusterSpec,
  "platform" | "replicasPerShard" | "shardMemoryMb" | "namespace" | "clusterDomain"
>;

/**
 * Kubernetes caps a StatefulSet's name at 52 characters (its pods' revision label adds 11) and
 * every derived name must stay a DNS label: "<name>-shard-127-5" is the longest one.
 */
export function checkComponentName(name: string): void {
  if (!/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(name) || name.length > 40)
    throw new DredisError(
      ErrorCodes.CONFIG,
      `invalid component name "${name}": expected at most 40 lower-case letters, digits and '-', ` +
        "starting with a letter (it prefixes every Docker container and Kubernetes object)",
    );
}

/** The name a node is reached by: a Docker network alias, or its pod's name in the shard's headless Service. */
const nodeHostname: Record<Platform, (node: string, shard: string, spec: ShardSpec) => string> = {
  docker: (node) => node,
  kubernetes: (node, shard, spec) => `${node}.${shard}.${spec.namespace}.svc.${spec.clusterDomain}`,
};

/** Plans shard `index` of component `name`: a function of those two and the spec, nothing else. */
export function planShard(name: string, index: number, spec: ShardSpec): ShardPlan {
  const resourceName = `${name}-shard-${index}`;
  const nodes = Array.from({ length: 1 + spec.replicasPerShard }, (_, ordinal) => {
    const nodeName = `${resourceName}-${ordinal}`;
    const hostname = nodeHostname[spec.platform](nodeName, resourceName, spec);
    return { ordinal, resourceName: nodeName, hostname, address: `${hostname}:${REDIS_PORT}` };
  });
  return {
    index,
    name: `shard-${index}`,
    resourceName,
    nodes,
    maxmemoryMb: spec.shardMemoryMb,
    memoryLimitMb: memoryLimitFor(spec.shardMemoryMb),
  };
}

/** maxmemory plus half again (replication and client buffers, fork copy-on-write) plus 32 MB for the process. */
export function memoryLimitFor(maxmemoryMb: number): number {
  return Math.ceil(maxmemoryMb * 1.5) + 32;
}

export function hashTopology(topology: Topology): string {
  return createHash("sha256").update(JSON.stringify(topology)).digest("hex").slice(0, 16);
}
