/**
 * The redis.conf every shard node runs in a container. Credentials live in a second file
 * (`auth.conf`, included at the end) so the main file can sit in plain config while the password
 * stays a secret.
 */
import { renderRedisConf, shardNodeConfig, type RedisConfig } from "../../src/cluster/redis-conf.ts";
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
  /**
   * Where `maxmemory` lives, when in a file of its own (see `renderMemoryConf`) rather than in
   * redis.conf: Docker keeps the file as first created, since the migration resizes nodes live.
   */
  memoryConfPath?: string;
}

/** The redis.conf directives of a shard node in a container, as an object. */
export function shardRedisConfig(options: ShardRedisConfOptions): RedisConfig {
  return shardNodeConfig({
    port: REDIS_PORT,
    bind: "0.0.0.0",
    logfile: "",
    dir: options.dataDir ?? REDIS_DATA_DIR,
    endpoints: "hostname",
    announceHostname: options.announceHostname,
    persistence: options.persistence,
    maxmemoryMb: options.maxmemoryMb,
    maxmemoryFile: options.memoryConfPath,
    include: options.authConfPath ?? `${REDIS_CONF_DIR}/auth.conf`,
  });
}

export function renderShardRedisConf(options: ShardRedisConfOptions): string {
  return renderRedisConf(shardRedisConfig(options));
}

/** memory.conf: the node's first `maxmemory`; later sizes are set live and saved by CONFIG REWRITE. */
export function renderMemoryConf(maxmemoryMb: number): string {
  return renderRedisConf({ maxmemory: `${maxmemoryMb}mb` });
}

/** auth.conf: clients and the proxies authenticate with it, and replicas with their master. */
export function renderAuthConf(password: string): string {
  return renderRedisConf({ requirepass: password, masterauth: password });
}
