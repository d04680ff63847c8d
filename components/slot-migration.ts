/**
 * SlotMigration: brings the running cluster to the desired topology, from inside its network.
 *
 * A one-shot workload of the runtime image runs `dredis cluster apply --topology <json>`:
 * it creates the cluster on the first deploy, adds shards and rebalances when shards were added,
 * drains shards about to be removed, and otherwise only checks the cluster. The workload is
 * replaced on every deployment (a `replacementTrigger` that changes each run), so it runs until
 * the cluster equals the topology, whatever happened to earlier runs. Removed shards' resources
 * are deleted by Pulumi after all creates and updates, i.e. after this run, and only once it
 * succeeded (the `drained` hook below).
 *
 * Hooks (run where `pulumi up` runs):
 * - on this component (beforeCreate/beforeUpdate, also at preview): refuses unsafe changes and
 *   logs the planned step. The component registers its topology as its inputs for this: it is
 *   how the hook sees the old and the new topology, since the workload itself is replaced, never
 *   updated;
 * - on the workload (afterCreate): fails the deployment when the run failed, with its logs, and
 *   records the run's outcome for:
 * - on every shard resource (beforeDelete, bound by DistributedRedis): refuses to delete a shard
 *   that left the topology unless this deployment's run succeeded.
 */
import { randomUUID } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { parseTopology } from "../src/cluster/topology.ts";
import { platformDrivers } from "./drivers.ts";
import { createMigrationHooks, type MigrationHooks } from "./hooks.ts";
import { migrationTimeoutMinutes } from "./plan/migration.ts";
import { argError, type Platform } from "./plan/spec.ts";
import { checkComponentName, hashTopology } from "./plan/topology.ts";
import { guardedInputs } from "./change-guard.ts";
import type { ShardTlsSpec } from "./shard-tls.ts";

export interface SlotMigrationArgs {
  /**
   * Where the workload runs (the shards' platform).
   * @example "docker"
   */
  platform: Platform;
  /**
   * Name of the cluster; labels the Kubernetes Job.
   * @example "redis"
   */
  clusterName: string;
  /**
   * The desired topology as JSON (`Topology` of `src/cluster/topology.ts`): each shard's name,
   * master and replicas. Derived from config, never from `CLUSTER NODES`.
   * @example '{"shards":[{"name":"shard-0","master":"redis-shard-0-0:6379","replicas":["redis-shard-0-1:6379"]}]}'
   */
  topology: string;
  /**
   * Desired `maxmemory` of every node, in MB, applied live by the workload.
   * @example 512
   */
  maxmemoryMb: number;
  /**
   * Persistence of every node, applied live by the workload (CONFIG SET, then CONFIG REWRITE);
   * left as it is when unset.
   * @example "rdb"
   */
  persistence?: "aof" | "rdb" | "none";
  /**
   * How long Pulumi waits for the workload's run, in minutes.
   * @default sized to move all the data of the topology's shards at `maxmemoryMb` each
   * @example 240
   */
  timeoutMinutes?: number;
  /**
   * The runtime image (`dredis`).
   * @example "ghcr.io/example/distributed-redis:0.1.0"
   */
  image: pulumi.Input<string>;
  /**
   * Password of the shards. Treated as a secret.
   * @example config.requireSecret("password")
   */
  password: pulumi.Input<string>;
  /**
   * During a password rotation, the password the nodes have now: the workload makes every node
   * accept both (replicas then authenticate with `password`). A change of `password` without it
   * is refused. Treated as a secret.
   * @example config.requireSecret("previousPassword")
   */
  previousPassword?: pulumi.Input<string>;
  /**
   * Docker only: the network of the shards. Required on Docker.
   * @example network.name
   */
  dockerNetwork?: pulumi.Input<string>;
  /**
   * Kubernetes only: namespace of the Job.
   * @default "default"
   * @example "redis"
   */
  namespace?: string;
  /**
   * Kubernetes only: the Secret (key `password`) holding the password.
   * @example "redis-auth"
   */
  passwordSecret?: string;
  /**
   * The hooks to bind, when the caller created them first to bind their `drained` hook to the
   * shards' resources (DistributedRedis does); created from this component's name otherwise.
   */
  hooks?: MigrationHooks;
  /** TLS-only shards: `dredis cluster apply --tls ...` (DistributedRedis's `shardTls`, as `parseShardTls` validated it). */
  shardTls?: ShardTlsSpec;
}

export class SlotMigration extends pulumi.ComponentResource {
  /** Digest of the topology this run applies. */
  public readonly topologyHash: pulumi.Output<string>;

  constructor(name: string, args: SlotMigrationArgs, opts?: pulumi.ComponentResourceOptions) {
    checkComponentName(args.clusterName);
    const topology = parseTopology(safeJson(args.topology), "SlotMigration args topology");
    const topologyJson = JSON.stringify(topology);
    const topologyHash = hashTopology(topology);
    const hooks = args.hooks ?? createMigrationHooks(name, { clusterName: args.clusterName, topology });
    const own = opts?.hooks;
    super(
      "distributed-redis:index:SlotMigration",
      name,
      {
        topologyHash,
        maxmemoryMb: args.maxmemoryMb,
        // What the guard compares (DistributedRedis's ChangeGuard registers the same, before the shards).
        ...guardedInputs({
          clusterName: args.clusterName,
          topologyJson,
          shardTls: args.shardTls !== undefined,
          password: args.password,
          previousPassword: args.previousPassword,
        }),
      },
      {
        ...opts,
        // The caller's hooks run too, before ours.
        hooks: {
          ...own,
          beforeCreate: [...(own?.beforeCreate ?? []), hooks.guard],
          beforeUpdate: [...(own?.beforeUpdate ?? []), hooks.guard],
        },
      },
    );

    const workloadOpts: pulumi.CustomResourceOptions = {
      parent: this,
      // The workload waits for the shards this component waits for.
      dependsOn: opts?.dependsOn,
      hooks: { afterCreate: [hooks.succeeded] },
      // A new workload, so a new run, on every deployment: a run that failed before is retried
      // (the engine records a resource whose afterCreate hook failed as created), a cluster that
      // drifted is brought back, and a converged cluster costs a quick check.
      replacementTrigger: randomUUID(),
      // The providers' defaults (Docker 20 min, a Kubernetes Job 10 min) are too short for big moves.
      customTimeouts: {
        create: `${args.timeoutMinutes ?? migrationTimeoutMinutes(topology.shards.length, args.maxmemoryMb)}m`,
      },
    };
    // `dredis cluster apply` reads the desired size from DREDIS_MAXMEMORY and resizes every node
    // in place (refused below what a node holds); it is in the inputs too, so a resize re-runs it.
    platformDrivers[args.platform].migration(
      `${name}-run`,
      {
        clusterName: args.clusterName,
        topology,
        topologyHash,
        maxmemoryMb: args.maxmemoryMb,
        persistence: args.persistence,
        image: args.image,
        password: args.password,
        previousPassword: args.previousPassword,
        dockerNetwork: args.dockerNetwork,
        namespace: args.namespace,
        passwordSecret: args.passwordSecret,
        shardTls: args.shardTls,
      },
      workloadOpts,
    );

    this.topologyHash = pulumi.output(topologyHash);
    this.registerOutputs({ topologyHash: this.topologyHash });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw argError("SlotMigration args", "topology", `not valid JSON: ${(err as Error).message}`);
  }
}
