/**
 * The redis.conf every shard node runs. Credentials live in a second file (`auth.conf`, included
 * at the end) so the main file can sit in plain config while the password stays a secret.
 */
import { renderRedisConf, type RedisConfig } from "../../src/local/redis-server.ts";
import type { ClusterSpec } from "./spec.ts";
import { REDIS_PORT } from "./topology.ts";

/** Where both platforms put redis.conf and auth.conf inside a shard container. */
export const REDIS_CONF_DIR = "/etc/redis";
/** The shard's volume: data files and the cluster's nodes.conf, which must survive restarts. */
export const REDIS_DATA_DIR = "/data";

export interface ShardRedisConfOptions {
  persistence: ClusterSpec["persistence"];
  maxmemoryMb: number;
  /**
   * The name this node announces to the cluster. Omitted where the platform passes it on the
   * command line instead (Kubernetes: one config for all pods of a StatefulSet).
   */
  announceHostname?: string;
  /** @default "/data" */
  dataDir?: string;
  /** @default "/etc/redis/auth.conf" */
  authConfPath?: string;
}

/** The redis.conf directives of a shard node, as an object (see `renderRedisConf`). */
export function shardRedisConfig(options: ShardRedisConfOptions): RedisConfig {
  return {
    port: REDIS_PORT,
    bind: "0.0.0.0",
    // A password is always set (auth.conf), which is what protected mode asks for.
    "protected-mode": false,
    daemonize: false,
    logfile: "",
    dir: options.dataDir ?? REDIS_DATA_DIR,
    "cluster-enabled": true,
    "cluster-config-file": "nodes.conf",
    "cluster-node-timeout": 5000,
    // Hostnames survive restarts and rescheduling; IP addresses do not.
    ...(options.announceHostname ? { "cluster-announce-hostname": options.announceHostname } : {}),
    "cluster-preferred-endpoint-type": "hostname",
    ...persistenceConfig(options.persistence),
    maxmemory: `${options.maxmemoryMb}mb`,
    // A cluster used as a store must refuse writes when full, never drop keys silently.
    "maxmemory-policy": "noeviction",
    include: options.authConfPath ?? `${REDIS_CONF_DIR}/auth.conf`,
  };
}

function persistenceConfig(persistence: ClusterSpec["persistence"]): RedisConfig {
  switch (persistence) {
    case "aof":
      return { appendonly: true, appendfsync: "everysec", save: "" };
    case "rdb":
      return { appendonly: false, save: "3600 1 300 100 60 10000" };
    case "none":
      return { appendonly: false, save: "" };
  }
}

export function renderShardRedisConf(options: ShardRedisConfOptions): string {
  return renderRedisConf(shardRedisConfig(options));
}

/** auth.conf: clients and the proxies authenticate with it, and replicas with their master. */
export function renderAuthConf(password: string): string {
  return renderRedisConf({ requirepass: password, masterauth: password });
}
