/**
 * Why a command stays refused or unsupported through the proxy, worded for the user who tried it:
 * what it would do to the cluster, and what to use instead. Read by the command table
 * (./commands.ts) for its error texts and for docs/commands.md.
 */

const REPLICATION =
  "replication is the cluster's own: failover is automatic, and dredis cluster apply attaches replicas from the topology";
const SLOT_MOVES = "keys move between shards by slot migration: dredis cluster rebalance (or apply)";

/** Refused commands (the default deny list), by name or by container name. */
const DENIED: Readonly<Record<string, string>> = {
  cluster:
    "it changes the cluster's layout, which dredis cluster manages (apply, rebalance, fix); to the proxy's clients it is one standalone Redis",
  shutdown:
    "it would stop one node of the cluster; stop the whole cluster with its platform (dredis local down, or the stack)",
  debug: "it acts on one node's internals and can block or crash it; connect to a shard node to debug it",
  failover: REPLICATION,
  replicaof: REPLICATION,
  slaveof: REPLICATION,
  sync: "replicas replicate from the shard nodes themselves, not through a proxy",
  psync: "replicas replicate from the shard nodes themselves, not through a proxy",
  replconf: "replicas replicate from the shard nodes themselves, not through a proxy",
  module:
    "a module must be on every node from its start: load it in the nodes' redis.conf (loadmodule) and roll them (dredis cluster roll)",
  acl: "the proxy's users come from its config (users), changed by editing it and reloading (SIGHUP)",
  swapdb:
    "a cluster cannot swap databases: Redis Cluster has only db 0, and Valkey refuses SWAPDB in cluster mode",
  migrate: SLOT_MOVES,
  "restore-asking": SLOT_MOVES,
};

/** Commands the proxy does not run, each with why. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  "script|debug":
    "script debugging holds a node's connection in a debugging session: run redis-cli --ldb against a shard node",
  "client|no-touch":
    "the proxy shares its connections to the nodes among clients, so a per-connection flag cannot follow one client's commands",
  hotkeys: "hot keys are tracked per node: run it on each shard node",
  trimslots: "it drops one node's slots (cluster administration): dredis cluster manages slots",
  backup: "it acts on one node's files: run it on each shard node",
  himport: "it acts on one node's import session: run it on each shard node",
  "bless|scan": "it scans one node: run it on each shard node",
};

const DEFAULT_DENIED_REASON =
  "it acts on a single node, and through a proxy it would damage or confuse the cluster";
const DEFAULT_UNSUPPORTED_REASON = "it needs a cluster-wide answer";

/** Why a refused command is refused (`name` as Redis names it: "module|load"). */
export function deniedReason(name: string): string {
  return DENIED[name] ?? DENIED[name.split("|")[0]!] ?? DEFAULT_DENIED_REASON;
}

/** Why an unsupported command is not run. */
export function unsupportedReason(name: string): string {
  return UNSUPPORTED[name] ?? UNSUPPORTED[name.split("|")[0]!] ?? DEFAULT_UNSUPPORTED_REASON;
}
