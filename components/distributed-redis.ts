/**
 * DistributedRedis: a Redis Cluster of master-replica shards, a proxy fleet giving every other
 * client one standalone-Redis endpoint, and the slot migration that keeps the running cluster
 * equal to the configured topology (add shards in config, `pulumi up`, slots move online).
 *
 * What gets created, in order: the password (unless given), the platform's shared pieces
 * (Docker network and images / Kubernetes auth Secret), one RedisShard per shard, the
 * SlotMigration once the shards are healthy, then the ProxyFleet.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createChangeGuard, guardedInputs } from "./change-guard.ts";
import { platformDrivers } from "./drivers.ts";
import { randomUUID } from "node:crypto";
import { createMigrationHooks, createRunSucceededHook } from "./hooks.ts";
import { parseClusterSpec, type Platform } from "./plan/spec.ts";
import { hashTopology, planCluster } from "./plan/topology.ts";
import { ProxyFleet } from "./proxy-fleet.ts";
import { checkUsers } from "./plan/proxy-conf.ts";
import { RedisShard } from "./redis-shard.ts";
import { SlotMigration } from "./slot-migration.ts";
import { parseProxyTls, type ProxyTlsArgs } from "./tls.ts";
import { parseShardTls, type ShardTlsArgs } from "./shard-tls.ts";

export interface DistributedRedisArgs {
  /**
   * Where everything runs: a Docker engine, or a Kubernetes cluster (through the providers given).
   * @example "kubernetes"
   */
  platform: Platform;
  /**
   * Shards (masters). Change it and run `pulumi up` to scale: new shards are created and slots
   * migrate online; removed shards are drained before they are deleted (at most half at once).
   * @default 3
   * @example 6
   */
  shards?: number;
  /**
   * Replicas of each master.
   * @default 1
   * @example 2
   */
  replicasPerShard?: number;
  /**
   * `maxmemory` of each node, in MB (the container limit adds room for buffers and forks).
   * @default 256
   * @example 4096
   */
  shardMemoryMb?: number;
  /**
   * How nodes persist data.
   * @default "aof"
   * @example "rdb"
   */
  persistence?: "aof" | "rdb" | "none";
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
   * How the proxy hosts share one endpoint.
   * @default "load-balanced"
   * @example "master-backup"
   */
  proxyMode?: "master-backup" | "load-balanced";
  /**
   * Proxy hosts in a load-balanced fleet (master-backup always runs 2).
   * @default 2
   * @example 4
   */
  proxyHosts?: number;
  /**
   * Worker processes per proxy host.
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
   * Port of the endpoint (and of each proxy host). On Docker load-balanced, also published on the host.
   * @default 6379
   * @example 6380
   */
  port?: number;
  /**
   * A prebuilt runtime image (`dredis`, redis-tools, keepalived). On Docker, built from this
   * package's Dockerfile when unset, and containers use it by ID; required on Kubernetes, where
   * naming it by digest (`repo@sha256:...`) is what makes a rebuilt image reach the pods.
   * @example "ghcr.io/example/distributed-redis:0.1.0"
   */
  image?: string;
  /**
   * The server the shard nodes run. Valkey 9 moves slots atomically and allows numbered databases
   * in cluster mode. The nodes' entrypoint calls `redis-server`/`redis-cli`, so a Valkey image must
   * keep those names (Valkey's `make install` links them by default).
   * @default "redis"
   * @example "valkey"
   */
  engine?: "redis" | "valkey";
  /**
   * Image of the shard nodes.
   * @default "redis:7.2", or "valkey/valkey:9.0" with `engine: "valkey"`
   * @example "redis:7.2.5"
   */
  redisImage?: string;
  /**
   * Docker only, load-balanced: HAProxy image.
   * @default "haproxy:2.8"
   * @example "haproxy:2.9-alpine"
   */
  haproxyImage?: string;
  /**
   * Password of the shards and of the endpoint. A random one (a `RandomPassword` in the stack's
   * state) when unset; never a literal default.
   * @example config.requireSecret("password")
   */
  password?: pulumi.Input<string>;
  /**
   * Set only to rotate the password: the password the cluster has now, with `password` set to the
   * new one. That `pulumi up` makes every node accept both (the migration workload), moves the
   * proxies to the new one one host at a time, then has every node drop the old one (a second
   * workload, after the proxies). The proxies accept both passwords from clients while it is set:
   * move the applications to the new one, then remove `previousPassword` in the next deployment
   * (the proxies then refuse the old one). A change of
   * `password` without it is refused before anything changes. Shard nodes are not restarted.
   * @example config.requireSecret("previousPassword")
   */
  previousPassword?: pulumi.Input<string>;
  /**
   * ACL users of the endpoint besides `default` (whose password is `password`, with every right):
   * user name to rules in Redis's ACL syntax, enforced by the proxies. Give a password as
   * `#<sha256>` (or `>plaintext`, hashed when loaded). Treated as a secret; a bad rule fails the
   * deployment with the user and the rule named. Changing it restarts no proxy host: they reload.
   * @example config.requireSecretObject("users") // { app: "on #<sha256> ~app:* &events:* +@read +@write -@dangerous" }
   */
  users?: pulumi.Input<Record<string, string>>;
  /**
   * Kubernetes only: namespace of every object (it must exist).
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
   * Kubernetes only: type of the endpoint's Service.
   * @default "LoadBalancer"
   * @example "ClusterIP"
   */
  serviceType?: "LoadBalancer" | "ClusterIP";
  /**
   * The endpoint's fixed IP: on Docker master-backup the floating IP (default: the subnet's .5),
   * on Kubernetes requested through the MetalLB and kube-vip annotations.
   * @example "10.0.0.50"
   */
  fixedIp?: string;
  /**
   * Docker only: subnet of the deployment's network.
   * @default "172.28.0.0/16"
   * @example "10.90.0.0/24"
   */
  dockerSubnet?: string;
  /**
   * Kubernetes only: whether pods of one shard (and the proxies) must or should avoid sharing a node.
   * @default "required"
   * @example "preferred"
   */
  podAntiAffinity?: "required" | "preferred";
  /**
   * How long Pulumi waits for one run of the slot migration before it fails the deployment (the
   * run itself goes on, and the next `pulumi up` picks it up).
   * @default sized to move the whole data set (`migrationTimeoutMinutes` of plan/migration.ts)
   * @example 240
   */
  migrationTimeoutMinutes?: number;
  /**
   * TLS between clients and the proxies (the endpoint then serves only TLS): on Docker the
   * certificate and key from secrets, on Kubernetes a TLS Secret (or cert-manager's) by name.
   * @example { secretName: "redis-proxy-tls", minVersion: "TLSv1.3" }
   */
  tls?: ProxyTlsArgs;
  /**
   * TLS to the shards: the nodes serve only TLS (plain port closed; cluster bus and replication
   * over TLS; clients must present a certificate of the CA), and the proxies, the slot migration,
   * the health checks and the nodes' handover connect over TLS with the same certificate. On
   * Docker the CA, certificate and key from secrets; on Kubernetes a Secret by name, or an issuer
   * for which a cert-manager Certificate is made.
   * @example { issuerRef: { name: "internal-ca", kind: "ClusterIssuer" } }
   */
  shardTls?: ShardTlsArgs;
}

export class DistributedRedis extends pulumi.ComponentResource {
  /** `host:port` non-cluster clients connect to (floating IP, load balancer or Service). */
  public readonly endpoint: pulumi.Output<string>;
  /** Host part of `endpoint`. */
  public readonly endpointHost: pulumi.Output<string>;
  /** Port part of `endpoint`. */
  public readonly endpointPort: pulumi.Output<number>;
  /** `host:port` of each proxy host. */
  public readonly proxyAddresses: pulumi.Output<string[]>;
  /** Every shard node's `host:port`, for cluster-mode clients inside the network. */
  public readonly seedNodes: pulumi.Output<string[]>;
  /** The password of the endpoint and the shards. Secret. */
  public readonly password: pulumi.Output<string>;
  /** The desired topology (JSON) the last migration applied. */
  public readonly topology: pulumi.Output<string>;
  /** Digest of `topology`: changes exactly when the topology does. */
  public readonly topologyHash: pulumi.Output<string>;
  /** Docker only: the network to attach app containers to (undefined on Kubernetes). */
  public readonly dockerNetwork: pulumi.Output<string | undefined>;

  constructor(name: string, args: DistributedRedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super("distributed-redis:index:DistributedRedis", name, {}, opts);
    const {
      password: givenPassword,
      previousPassword: givenPrevious,
      users: givenUsers,
      tls,
      shardTls: shardTlsArgs,
      ...rest
    } = args;
    const spec = parseClusterSpec(rest, "DistributedRedis args");
    // Checked before anything is created, and again by the ProxyFleet it is handed to.
    if (tls !== undefined) parseProxyTls(spec.platform, tls, "DistributedRedis args");
    const shardTls =
      shardTlsArgs === undefined
        ? undefined
        : parseShardTls(
            spec.platform,
            shardTlsArgs,
            { clusterName: name, namespace: spec.namespace, clusterDomain: spec.clusterDomain },
            "DistributedRedis args",
          );
    const plan = planCluster(name, spec);
    const password = pulumi.secret(givenPassword ?? generatePassword(name, this));
    const previousPassword = givenPrevious === undefined ? undefined : pulumi.secret(givenPrevious);
    const users =
      givenUsers === undefined
        ? undefined
        : pulumi.secret(givenUsers).apply((u) => checkUsers(u, "DistributedRedis args"));
    // Refuses an unsafe topology, password or shardTls change before anything is touched, with
    // or without a preview: the shared resources and every shard wait for it (SlotMigration's
    // guard comes after the shards).
    const changeGuard = createChangeGuard(
      `${name}-change-guard`,
      guardedInputs({
        clusterName: name,
        topologyJson: JSON.stringify(plan.topology),
        shardTls: shardTls !== undefined,
        password,
        previousPassword,
      }),
      { parent: this },
    );
    const driver = platformDrivers[spec.platform];
    const platform = driver.infra(
      name,
      spec,
      password,
      { parent: this, dependsOn: [changeGuard] },
      previousPassword,
      shardTls,
    );
    const shardArgs = {
      platform: spec.platform,
      clusterName: name,
      password,
      replicasPerShard: spec.replicasPerShard,
      shardMemoryMb: spec.shardMemoryMb,
      persistence: spec.persistence,
      redisImage: platform.redisImage,
      dockerNetwork: platform.dockerNetwork,
      namespace: spec.namespace,
      clusterDomain: spec.clusterDomain,
      storageGb: spec.storageGb,
      storageClass: spec.storageClass,
      podAntiAffinity: spec.podAntiAffinity,
      shardTls,
    };

    // Created before the shards: their resources are bound to the hook that guards their deletes.
    const migrationHooks = createMigrationHooks(`${name}-migration`, {
      clusterName: name,
      topology: plan.topology,
    });
    // Each shard waits for the one before: a change that replaces nodes replaces one at a time.
    const shards: RedisShard[] = [];
    for (const shard of plan.shards) {
      const rollAfter = shards.at(-1)?.rollTail ?? [];
      shards.push(
        new RedisShard(
          shard.resourceName,
          { ...shardArgs, index: shard.index, drainGuard: migrationHooks.drained, rollAfter },
          { parent: this, dependsOn: [changeGuard] },
        ),
      );
    }

    const migration = new SlotMigration(
      `${name}-migration`,
      {
        platform: spec.platform,
        clusterName: name,
        topology: JSON.stringify(plan.topology),
        maxmemoryMb: spec.shardMemoryMb,
        persistence: spec.persistence,
        timeoutMinutes: spec.migrationTimeoutMinutes,
        image: platform.runtimeImage,
        password,
        previousPassword,
        dockerNetwork: platform.dockerNetwork,
        namespace: spec.namespace,
        passwordSecret: platform.passwordSecret,
        hooks: migrationHooks,
        shardTls,
      },
      { parent: this, dependsOn: [...shards, ...platform.shared] },
    );

    const proxies = new ProxyFleet(
      `${name}-proxy`,
      {
        platform: spec.platform,
        clusterName: name,
        seeds: plan.proxySeeds,
        password,
        users,
        // Clients may still use it until the rotation's next step removes it.
        previousPassword,
        image: platform.runtimeImage,
        proxyMode: spec.proxyMode,
        proxyHosts: spec.proxyHosts,
        proxyWorkers: spec.proxyWorkers,
        crossSlot: spec.crossSlot,
        readFrom: spec.readFrom,
        port: spec.port,
        dockerNetwork: platform.dockerNetwork,
        dockerSubnet: spec.dockerSubnet,
        haproxyImage: platform.haproxyImage,
        fixedIp: spec.fixedIp,
        namespace: spec.namespace,
        clusterDomain: spec.clusterDomain,
        serviceType: spec.serviceType,
        podAntiAffinity: spec.podAntiAffinity,
        tls,
        shardTls,
      },
      // Proxies discover the slot map at start: let the cluster exist first.
      { parent: this, dependsOn: [migration] },
    );

    if (previousPassword !== undefined)
      // Rotation step 2, once every proxy uses the new password: the nodes drop the old one.
      driver.migration(
        `${name}-password-drop`,
        {
          clusterName: name,
          topology: plan.topology,
          topologyHash: hashTopology(plan.topology),
          maxmemoryMb: spec.shardMemoryMb,
          image: platform.runtimeImage,
          password,
          dropPreviousPassword: true,
          dockerNetwork: platform.dockerNetwork,
          namespace: spec.namespace,
          passwordSecret: platform.passwordSecret,
          shardTls,
        },
        {
          parent: this,
          dependsOn: [proxies],
          hooks: { afterCreate: [createRunSucceededHook(`${name}-password-drop`)] },
          // Run on every deployment that has previousPassword, like the migration.
          replacementTrigger: randomUUID(),
        },
      );

    this.endpointHost = proxies.endpointHost;
    this.endpointPort = proxies.endpointPort;
    this.endpoint = pulumi.interpolate`${proxies.endpointHost}:${proxies.endpointPort}`;
    this.proxyAddresses = proxies.proxyAddresses;
    this.seedNodes = pulumi.output(plan.seeds);
    this.password = password;
    this.topology = pulumi.output(JSON.stringify(plan.topology));
    this.topologyHash = migration.topologyHash;
    this.dockerNetwork = pulumi.output(platform.dockerNetwork);
    this.registerOutputs({
      endpoint: this.endpoint,
      endpointHost: this.endpointHost,
      endpointPort: this.endpointPort,
      proxyAddresses: this.proxyAddresses,
      seedNodes: this.seedNodes,
      password: this.password,
      topology: this.topology,
      topologyHash: this.topologyHash,
      dockerNetwork: this.dockerNetwork,
    });
  }
}

function generatePassword(name: string, parent: pulumi.Resource): pulumi.Output<string> {
  // Letters and digits only: the password also goes into config files and VRRP authentication.
  return new random.RandomPassword(`${name}-password`, { length: 32, special: false }, { parent }).result;
}
