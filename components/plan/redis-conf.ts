/**
 * The redis.conf every shard node runs in a container. Credentials live in a second file
 * (`auth.conf`, included at the end) so the main file can sit in plain config while the password
 * stays a secret.
 */
import {
  persistenceConfig,
  renderRedisConf,
  shardNodeConfig,
  type RedisConfig,
  type ShardTlsFiles,
} from "../../src/cluster/redis-conf.ts";
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
  /**
   * Where the persistence directives live, when in a file of their own (see
   * `renderPersistenceConf`): Docker writes it beside the data, so a new mode reaches a restarted
   * or replaced node without changing the container; the migration sets it live on every node.
   */
  persistenceConfPath?: string;
  /**
   * TLS only: `port 0`, the node's port becomes its `tls-port`, the cluster bus and replication
   * run over TLS, and clients must present a certificate of the CA (plan/shard-tls.ts).
   */
  tls?: ShardTlsFiles;
}

/** The directives `persistence` sets, whatever the mode: left out of redis.conf when included. */
const PERSISTENCE_KEYS = new Set(
  (["aof", "rdb", "none"] as const).flatMap((mode) => Object.keys(persistenceConfig(mode))),
);

/** The redis.conf directives of a shard node in a container, as an object. */
export function shardRedisConfig(options: ShardRedisConfOptions): RedisConfig {
  const authConf = options.authConfPath ?? `${REDIS_CONF_DIR}/auth.conf`;
  const config = shardNodeConfig({
    port: REDIS_PORT,
    bind: "0.0.0.0",
    logfile: "",
    dir: options.dataDir ?? REDIS_DATA_DIR,
    endpoints: "hostname",
    announceHostname: options.announceHostname,
    persistence: options.persistence,
    maxmemoryMb: options.maxmemoryMb,
    maxmemoryFile: options.memoryConfPath,
    include: authConf,
    tls: options.tls,
  });
  if (options.persistenceConfPath === undefined) return config;
  // Included after memory.conf and before auth.conf, keeping auth.conf last.
  const kept = Object.entries(config).filter(([key]) => !PERSISTENCE_KEYS.has(key) && key !== "include");
  const include = [options.memoryConfPath, options.persistenceConfPath, authConf].filter(
    (f): f is string => f !== undefined,
  );
  return { ...Object.fromEntries(kept), include };
}

/** persistence.conf: the node's persistence directives, included by redis.conf. */
export function renderPersistenceConf(persistence: ClusterSpec["persistence"]): string {
  return renderRedisConf(persistenceConfig(persistence));
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
