/**
 * The redis.conf parameters that mean the same on every node of the cluster, so that `CONFIG SET`
 * through the proxy may set them on every node (masters and replicas) and `dredis cluster apply`
 * copies them to the nodes of a shard that joins later. Everything else is refused through the
 * proxy, with the reason and the way to change it instead (see `configRefusal`).
 *
 * Shared by the busy proxy (src/proxy/busy/config.ts) and the cluster admin
 * (src/cluster/admin/config-sync.ts), so both agree on what "cluster-wide" is.
 */

/**
 * Cluster-wide parameters, with the aliases Redis accepts for them. A name the nodes' Redis does
 * not know (e.g. `set-max-listpack-entries` before 7.2) is answered by the nodes' own error.
 */
export const CLUSTER_WIDE_PARAMETERS: readonly string[] = [
  // Encodings: how small collections are stored.
  "hash-max-listpack-entries",
  "hash-max-listpack-value",
  "hash-max-ziplist-entries",
  "hash-max-ziplist-value",
  "list-max-listpack-size",
  "list-max-ziplist-size",
  "list-compress-depth",
  "set-max-intset-entries",
  "set-max-listpack-entries",
  "set-max-listpack-value",
  "zset-max-listpack-entries",
  "zset-max-listpack-value",
  "zset-max-ziplist-entries",
  "zset-max-ziplist-value",
  "stream-node-max-bytes",
  "stream-node-max-entries",
  "hll-sparse-max-bytes",
  // Keyspace notifications.
  "notify-keyspace-events",
  // Slow log and latency monitoring.
  "slowlog-log-slower-than",
  "slowlog-max-len",
  "latency-monitor-threshold",
  "latency-tracking",
  "latency-tracking-info-percentiles",
  // Eviction and expiry (the policy; the size is per node, see `maxmemory` below).
  "maxmemory-policy",
  "maxmemory-samples",
  "maxmemory-eviction-tenacity",
  "lfu-log-factor",
  "lfu-decay-time",
  "active-expire-effort",
  // Lazy freeing.
  "lazyfree-lazy-eviction",
  "lazyfree-lazy-expire",
  "lazyfree-lazy-server-del",
  "lazyfree-lazy-user-del",
  "lazyfree-lazy-user-flush",
  "replica-lazy-flush",
  "slave-lazy-flush",
  // Script time limits.
  "busy-reply-threshold",
  "lua-time-limit",
  // Background work.
  "hz",
  "dynamic-hz",
  "activerehashing",
  "activedefrag",
  "active-defrag-ignore-bytes",
  "active-defrag-threshold-lower",
  "active-defrag-threshold-upper",
  "active-defrag-cycle-min",
  "active-defrag-cycle-max",
  "active-defrag-max-scan-fields",
];

const ALLOWED: ReadonlySet<string> = new Set(CLUSTER_WIDE_PARAMETERS);

/** The parameter (any letter case) may be set on every node through the proxy. */
export function isClusterWide(name: string): boolean {
  return ALLOWED.has(name.toLowerCase());
}

const PER_NODE =
  "it differs per node (addresses, ports, files): set it in the nodes' redis.conf and roll them (dredis cluster roll)";
const CLUSTER_BUS =
  "it configures the cluster itself: change it in the nodes' redis.conf and roll them (dredis cluster roll)";
const PASSWORDS =
  "the nodes' passwords are rotated in two steps so no client is refused: dredis cluster apply --password-file " +
  "--previous-password-file, then --drop-previous-password (local platform: dredis local set --password-file)";
const PERSISTENCE =
  "persistence is switched on every node together: dredis cluster apply --persistence aof|rdb|none " +
  "(local platform: dredis local set --config)";
const PROXY_LINKS =
  "it acts on the proxy's own connections to the nodes or on replication: set it in the nodes' redis.conf " +
  "and roll them (dredis cluster roll)";

/** Reasons for the parameters a user is most likely to try; by name, or by prefix ending in '-'. */
const REFUSALS: readonly [name: string, reason: string][] = [
  ["port", PER_NODE],
  ["tls-port", PER_NODE],
  ["bind", PER_NODE],
  ["bind-source-addr", PER_NODE],
  ["unixsocket", PER_NODE],
  ["unixsocketperm", PER_NODE],
  ["dir", PER_NODE],
  ["dbfilename", PER_NODE],
  ["appendfilename", PER_NODE],
  ["appenddirname", PER_NODE],
  ["logfile", PER_NODE],
  ["pidfile", PER_NODE],
  ["replica-announce-", PER_NODE],
  ["slave-announce-", PER_NODE],
  ["cluster-", CLUSTER_BUS],
  ["replicaof", "replicas are attached by dredis cluster apply, from the topology"],
  ["slaveof", "replicas are attached by dredis cluster apply, from the topology"],
  ["requirepass", PASSWORDS],
  ["masterauth", PASSWORDS],
  ["masteruser", PASSWORDS],
  [
    "maxmemory",
    "it is sized per node and checked against what each node holds: dredis cluster apply --maxmemory <size>",
  ],
  ["save", PERSISTENCE],
  ["appendonly", PERSISTENCE],
  ["appendfsync", PERSISTENCE],
  ["timeout", PROXY_LINKS],
  ["tcp-keepalive", PROXY_LINKS],
  ["maxclients", PROXY_LINKS],
  ["client-output-buffer-limit", PROXY_LINKS],
  ["client-query-buffer-limit", PROXY_LINKS],
  ["proto-max-bulk-len", PROXY_LINKS],
  ["repl-", PROXY_LINKS],
  ["tls-", PROXY_LINKS],
];

const OTHER =
  "it is not one of the parameters that are safe to set on every node (docs/config.md lists them); " +
  "set it in the nodes' redis.conf and roll them (dredis cluster roll)";

/**
 * The reason for a parameter Redis has and the proxy refuses by name (port, dir, requirepass, ...),
 * or undefined for any other name (which may be one Redis does not know at all).
 */
export function knownRefusal(name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, reason] of REFUSALS)
    if (key.endsWith("-") ? lower.startsWith(key) : lower === key) return reason;
  return undefined;
}

/** Why CONFIG SET of `name` is refused through the proxy (for a name that is not cluster-wide). */
export function configRefusal(name: string): string {
  return knownRefusal(name) ?? OTHER;
}
