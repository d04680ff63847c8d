/**
 * ProxyFleet: the stateless proxies that give non-cluster clients one standalone-Redis endpoint.
 * - `load-balanced`: N proxy hosts behind one L4 address (HAProxy on Docker, a Service on Kubernetes);
 * - `master-backup`: two proxy hosts and a floating IP (keepalived/VRRP on Docker, Lease-based
 *   leader election and a leader-selecting Service on Kubernetes).
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { platformDrivers } from "./drivers.ts";
import { clusterSpecShape, parseSpec, type Platform } from "./plan/spec.ts";
import { checkComponentName } from "./plan/topology.ts";
import { parseProxyTls, type ProxyTlsArgs } from "./tls.ts";
import type { ShardTlsSpec } from "./shard-tls.ts";

export interface ProxyFleetArgs {
  /**
   * Where the proxies run.
   * @example "docker"
   */
  platform: Platform;
  /**
   * Name of the cluster the fleet serves; labels its Kubernetes objects.
   * @example "redis"
   */
  clusterName: string;
  /**
   * Shard nodes (`host:port`) the proxies discover the slot map from; any few of them suffice.
   * @example ["redis-shard-0-0:6379", "redis-shard-1-0:6379"]
   */
  seeds: string[];
  /**
   * Password for the shards and for clients of the proxies. Treated as a secret.
   * @example config.requireSecret("password")
   */
  password: pulumi.Input<string>;
  /**
   * ACL users of the proxies besides `default` (whose password is `password`): name to rules in
   * Redis's syntax. Treated as a secret.
   * @example { app: "on #<sha256> ~app:* &events:* +@read +@write -@dangerous" }
   */
  users?: pulumi.Input<Record<string, string>>;
  /**
   * During a password rotation (DistributedRedis's `previousPassword`), the password before
   * `password`: the proxies accept both from clients until it is removed.
   */
  previousPassword?: pulumi.Input<string>;
  /**
   * The runtime image (`dredis`, redis-tools, keepalived).
   * @example "ghcr.io/example/distributed-redis:0.1.0"
   */
  image: pulumi.Input<string>;
  /**
   * How the hosts share one endpoint.
   * @default "load-balanced"
   * @example "master-backup"
   */
  proxyMode?: "master-backup" | "load-balanced";
  /**
   * Proxy hosts (load-balanced); master-backup always runs 2.
   * @default 2
   * @example 4
   */
  proxyHosts?: number;
  /**
   * Worker processes per proxy host, sharing its port.
   * @default 2
   * @example 4
   */
  proxyWorkers?: number;
  /**
   * Atomic multi-key commands (RENAME, SMOVE, *STORE...) whose keys span slots: "refuse" answers
   * CROSSSLOT as Redis Cluster does; "emulate" runs them through the busy proxy, losing atomicity
   * or isolation across keys (docs/commands.md says which, per command).
   * @default "refuse"
   */
  crossSlot?: "refuse" | "emulate";
  /**
   * Where the proxies send read-only commands: "master", "replica-preferred" or "replica".
   * Replica reads may be stale (README, reads from replicas).
   * @default "master"
   */
  readFrom?: "master" | "replica-preferred" | "replica";
  /**
   * Port of the endpoint and of every proxy host.
   * @default 6379
   * @example 6380
   */
  port?: number;
  /**
   * Docker only: the user-defined network the proxies join. Required on Docker.
   * @example network.name
   */
  dockerNetwork?: pulumi.Input<string>;
  /**
   * Docker only: that network's subnet; the proxies' static addresses and the floating IP are
   * taken from its lower half, outside Docker's `ipRange`.
   * @default "172.28.0.0/16"
   * @example "10.90.0.0/24"
   */
  dockerSubnet?: string;
  /**
   * Docker only, load-balanced: HAProxy image.
   * @default "haproxy:2.8"
   * @example "haproxy:2.9-alpine"
   */
  haproxyImage?: pulumi.Input<string>;
  /**
   * The endpoint's fixed IP: on Docker master-backup the floating IP (default: the subnet's .5),
   * on Kubernetes the Service's address through the MetalLB and kube-vip annotations.
   * @example "10.0.0.50"
   */
  fixedIp?: string;
  /**
   * Kubernetes only: namespace of the fleet's objects (it must exist).
   * @default "default"
   * @example "redis"
   */
  namespace?: string;
  /**
   * Kubernetes only: the cluster's DNS domain.
   * @default "cluster.local"
   * @example "cluster.example"
   */
  clusterDomain?: string;
  /**
   * Kubernetes only: type of the endpoint's Service.
   * @default "LoadBalancer"
   * @example "ClusterIP"
   */
  serviceType?: "LoadBalancer" | "ClusterIP";
  /**
   * Kubernetes only: whether proxy pods must (required) or should (preferred) run on different nodes.
   * @default "required"
   * @example "preferred"
   */
  podAntiAffinity?: "required" | "preferred";
  /**
   * TLS for clients: the proxies then serve only TLS on `port` (their admin port stays plain HTTP).
   * @example { secretName: "redis-proxy-tls" }
   */
  tls?: ProxyTlsArgs;
  /** TLS-only shards: the proxies reach them over TLS (DistributedRedis's `shardTls`, as `parseShardTls` validated it). */
  shardTls?: ShardTlsSpec;
}

const fleetArgsSchema = clusterSpecShape
  .pick({
    platform: true,
    proxyMode: true,
    proxyHosts: true,
    proxyWorkers: true,
    crossSlot: true,
    readFrom: true,
    port: true,
    dockerSubnet: true,
    fixedIp: true,
    namespace: true,
    clusterDomain: true,
    serviceType: true,
    podAntiAffinity: true,
  })
  .extend({ seeds: z.array(z.string().min(1)).min(1, "at least one seed node is needed") });

export class ProxyFleet extends pulumi.ComponentResource {
  /** Host clients connect to: the floating IP, the load balancer's address, or the Service's name. */
  public readonly endpointHost: pulumi.Output<string>;
  /** Port clients connect to. */
  public readonly endpointPort: pulumi.Output<number>;
  /** `host:port` of each proxy host (Kubernetes: the Service's in-cluster name). */
  public readonly proxyAddresses: pulumi.Output<string[]>;

  constructor(name: string, args: ProxyFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("distributed-redis:index:ProxyFleet", name, {}, opts);
    const {
      clusterName,
      password,
      users,
      previousPassword,
      image,
      haproxyImage,
      dockerNetwork,
      tls: tlsArgs,
      shardTls,
      ...rest
    } = args;
    checkComponentName(clusterName);
    const spec = parseSpec(fleetArgsSchema, rest, "ProxyFleet args");
    const tls = tlsArgs === undefined ? undefined : parseProxyTls(spec.platform, tlsArgs, "ProxyFleet args");
    const fleet = platformDrivers[spec.platform].proxyFleet(
      name,
      {
        clusterName,
        spec,
        password,
        users,
        previousPassword,
        image,
        haproxyImage,
        dockerNetwork,
        tls,
        shardTls,
      },
      this,
    );
    this.endpointHost = fleet.endpointHost;
    this.proxyAddresses = fleet.proxyAddresses;
    this.endpointPort = pulumi.output(spec.port);
    this.registerOutputs({
      endpointHost: this.endpointHost,
      endpointPort: this.endpointPort,
      proxyAddresses: this.proxyAddresses,
    });
  }
}
