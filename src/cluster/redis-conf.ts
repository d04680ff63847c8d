/**
 * redis.conf as data: the directives of a cluster shard node, and their rendering as text. Pure,
 * so the deploy-time plan (containers, pods) and the local platform (processes) render one file.
 */

export type RedisConfig = Record<string, string | number | boolean | readonly string[]>;

/** Renders a config object as redis.conf text. Arrays repeat the directive (e.g. `save`). */
export function renderRedisConf(config: RedisConfig): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) lines.push(`${key} ${formatValue(v as string | number | boolean)}`);
  }
  return lines.join("\n") + "\n";
}

function formatValue(v: string | number | boolean): string {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") return String(v);
  return v === "" || /[\s"']/.test(v) ? JSON.stringify(v) : v;
}

export type Persistence = "aof" | "rdb" | "none";

export interface ShardNodeConfOptions {
  port: number;
  bind: string;
  /** Data files and the cluster's nodes.conf, which must survive restarts. */
  dir: string;
  /** A path, or "" for standard output (containers). */
  logfile: string;
  persistence: Persistence;
  /** `maxmemory`; no limit when unset. */
  maxmemoryMb?: number;
  /**
   * How nodes are announced: by hostname (containers: names survive restarts and rescheduling,
   * IP addresses do not; `announceHostname` is the name, or it is passed on the command line),
   * or by IP address (processes on one host).
   */
  endpoints: "hostname" | "ip";
  announceHostname?: string;
  /** `maxmemory` in a file of its own, included, instead of in this one. */
  maxmemoryFile?: string;
  /** A file included last (auth.conf: credentials kept apart from the rest). */
  include?: string;
  /** Serve clients, the cluster bus and replication over TLS only (`port` becomes the `tls-port`). */
  tls?: ShardTlsFiles;
}

/** The PEM files of a TLS-only shard node. */
export interface ShardTlsFiles {
  /** The node's certificate: presented to its clients, and on the cluster bus and in replication as a client. */
  certFile: string;
  keyFile: string;
  /** The CA that signs the other nodes' and the clients' certificates. */
  caFile: string;
  /** Whether clients must present a certificate of that CA (Redis's `tls-auth-clients`). @default true */
  authClients?: boolean;
}

/** redis.conf directives of a TLS-only node on `port`: the plain port is closed (`port 0`). */
export function tlsNodeConfig(port: number, tls: ShardTlsFiles): RedisConfig {
  return {
    port: 0,
    "tls-port": port,
    "tls-cert-file": tls.certFile,
    "tls-key-file": tls.keyFile,
    "tls-ca-cert-file": tls.caFile,
    "tls-auth-clients": tls.authClients ?? true,
    // The bus (tls-port + 10000) and replication links run over TLS too.
    "tls-cluster": true,
    "tls-replication": true,
  };
}

/** The redis.conf directives of a shard node. */
export function shardNodeConfig(options: ShardNodeConfOptions): RedisConfig {
  return {
    port: options.port,
    bind: options.bind,
    // Containers always set a password (auth.conf); local processes bind loopback only.
    "protected-mode": false,
    daemonize: false,
    logfile: options.logfile,
    dir: options.dir,
    "cluster-enabled": true,
    "cluster-config-file": "nodes.conf",
    "cluster-node-timeout": 5000,
    ...(options.announceHostname ? { "cluster-announce-hostname": options.announceHostname } : {}),
    ...(options.endpoints === "hostname" ? { "cluster-preferred-endpoint-type": "hostname" } : {}),
    ...persistenceConfig(options.persistence),
    ...(options.maxmemoryMb !== undefined && options.maxmemoryFile === undefined
      ? { maxmemory: `${options.maxmemoryMb}mb` }
      : {}),
    // A cluster used as a store must refuse writes when full, never drop keys silently.
    "maxmemory-policy": "noeviction",
    ...(options.tls ? tlsNodeConfig(options.port, options.tls) : {}),
    ...includes([options.maxmemoryFile, options.include]),
  };
}

/** `include` directives (a repeated directive is an array), for the files given. */
function includes(files: (string | undefined)[]): RedisConfig {
  const given = files.filter((f): f is string => f !== undefined);
  return given.length === 0 ? {} : { include: given.length === 1 ? given[0]! : given };
}

/** The redis.conf settings of a persistence mode (also what `dredis cluster apply` sets live). */
export function persistenceConfig(persistence: Persistence): RedisConfig {
  switch (persistence) {
    case "aof":
      return { appendonly: true, appendfsync: "everysec", save: "" };
    case "rdb":
      return { appendonly: false, save: "3600 1 300 100 60 10000" };
    case "none":
      return { appendonly: false, save: "" };
  }
}

export function renderShardNodeConf(options: ShardNodeConfOptions): string {
  return renderRedisConf(shardNodeConfig(options));
}
