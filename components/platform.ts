/**
 * What a platform provides to the components: its shared infrastructure, a shard, a proxy fleet
 * and the migration workload. Each platform implements it once (`docker/index.ts`,
 * `kubernetes/index.ts`), and `drivers.ts` holds one driver per `Platform`, so the components
 * never test which platform they run on and a new platform does not compile until it has a driver.
 *
 * The components validate their args; a driver checks only the args its platform requires
 * (e.g. `dockerNetwork` on Docker) and names the component in its error.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { Topology } from "../src/cluster/topology.ts";
import type { ClusterSpec } from "./plan/spec.ts";
import type { ShardPlan } from "./plan/topology.ts";
import type { ShardTlsSpec } from "./shard-tls.ts";
import type { ProxyTlsSpec } from "./tls.ts";

export type { Platform } from "./plan/spec.ts";

/** What the platform's shared pieces give the rest of the deployment. */
export interface PlatformInfra {
  /** What the migration workload needs besides the shards. */
  shared: pulumi.Resource[];
  runtimeImage: pulumi.Input<string>;
  redisImage: pulumi.Input<string>;
  haproxyImage?: pulumi.Input<string>;
  dockerNetwork?: pulumi.Output<string>;
  /** Kubernetes: the Secret (key `password`, and `previousPassword` during a rotation). */
  passwordSecret?: string;
}

export interface ShardInputs {
  clusterName: string;
  shard: ShardPlan;
  spec: Pick<
    ClusterSpec,
    "persistence" | "namespace" | "clusterDomain" | "storageGb" | "storageClass" | "podAntiAffinity"
  >;
  image: pulumi.Input<string>;
  password: pulumi.Input<string>;
  dockerNetwork?: pulumi.Input<string>;
  /** A beforeDelete hook for every resource of the shard. */
  drainGuard?: pulumi.ResourceHook;
  /** What the shard's nodes wait for: the previous shard's, so nodes are replaced one at a time. */
  rollAfter?: pulumi.Resource[];
  /** The nodes serve TLS only (validated for this platform). */
  shardTls?: ShardTlsSpec;
}

export interface ProxyFleetInputs {
  clusterName: string;
  spec: Pick<
    ClusterSpec,
    | "proxyMode"
    | "proxyHosts"
    | "proxyWorkers"
    | "crossSlot"
    | "readFrom"
    | "port"
    | "dockerSubnet"
    | "fixedIp"
    | "namespace"
    | "clusterDomain"
    | "serviceType"
    | "podAntiAffinity"
  > & { seeds: string[] };
  password: pulumi.Input<string>;
  /** ACL users of the proxies besides the default one; a secret. */
  users?: pulumi.Input<Record<string, string>>;
  /** During a password rotation, the password before `password`, which the proxies still accept from clients. */
  previousPassword?: pulumi.Input<string>;
  image: pulumi.Input<string>;
  haproxyImage?: pulumi.Input<string>;
  dockerNetwork?: pulumi.Input<string>;
  /** TLS for the fleet's clients (validated for this platform). */
  tls?: ProxyTlsSpec;
  /** The shards serve TLS only: the proxies reach them over TLS (validated for this platform). */
  shardTls?: ShardTlsSpec;
}

export interface ProxyFleetEndpoints {
  endpointHost: pulumi.Output<string>;
  proxyAddresses: pulumi.Output<string[]>;
}

export interface MigrationInputs {
  clusterName: string;
  topology: Topology;
  topologyHash: string;
  maxmemoryMb: number;
  /** Set live on every node by every run, when given. */
  persistence?: ClusterSpec["persistence"];
  image: pulumi.Input<string>;
  password: pulumi.Input<string>;
  /**
   * Step 1 of a password rotation: the nodes accept it as well as `password` (Kubernetes reads it
   * from `passwordSecret`'s key `previousPassword`).
   */
  previousPassword?: pulumi.Input<string>;
  /** Step 2 of a rotation (`--drop-previous-password`), for the run after the proxies moved. */
  dropPreviousPassword?: boolean;
  dockerNetwork?: pulumi.Input<string>;
  namespace?: string;
  passwordSecret?: string;
  /** The shards serve TLS only: `dredis cluster apply --tls ...` (validated for this platform). */
  shardTls?: ShardTlsSpec;
}

/**
 * Options of every shared resource: under the cluster, and after its change guard, so a run the
 * guard refuses touches none of them (a new password in the auth Secret that a restarted pod
 * would read, a new shard Certificate, a replaced network) any more than a shard.
 */
export interface InfraOptions {
  parent: pulumi.Resource;
  dependsOn: pulumi.Resource[];
}

export interface PlatformDriver {
  /** The shared pieces: Docker's network and images, Kubernetes's auth Secret. */
  infra(
    name: string,
    spec: ClusterSpec,
    password: pulumi.Output<string>,
    opts: InfraOptions,
    previousPassword?: pulumi.Output<string>,
    /** Kubernetes: a cert-manager Certificate is made when it names an issuer. */
    shardTls?: ShardTlsSpec,
  ): PlatformInfra;
  /** One shard's nodes, children of `parent` (a RedisShard); returns what the next shard waits for. */
  shard(name: string, inputs: ShardInputs, parent: pulumi.Resource): pulumi.Resource[];
  /** The proxies and what balances them, children of `parent` (a ProxyFleet). */
  proxyFleet(name: string, inputs: ProxyFleetInputs, parent: pulumi.Resource): ProxyFleetEndpoints;
  /** The one-shot workload that runs `dredis cluster apply`. */
  migration(name: string, inputs: MigrationInputs, opts: pulumi.CustomResourceOptions): pulumi.CustomResource;
}
