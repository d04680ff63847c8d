/**
 * The names the runtime and the Pulumi components must agree on: the environment a container is
 * started with, the pod label the proxies' leader election sets and the Service selects, the
 * proxies' admin port, and the command line of the migration workload. Spelled here once, so a
 * rename on one side cannot leave the other reading a name nobody sets.
 */
import type { Topology } from "./cluster/topology.ts";

/** Environment variables set by the platforms and read by the runtime (or by redis-cli). */
export const ENV = {
  /** Password `dredis cluster` authenticates to the shards with. */
  password: "DREDIS_PASSWORD",
  /** During a password rotation: the password the nodes accept until `--drop-previous-password`. */
  previousPassword: "DREDIS_PREVIOUS_PASSWORD",
  /** The persistence mode `dredis cluster apply` sets live on every node: aof, rdb or none. */
  persistence: "DREDIS_PERSISTENCE",
  /** ACL user `dredis cluster` authenticates as. */
  username: "DREDIS_USERNAME",
  /** The `maxmemory` `dredis cluster apply` sets on every node, e.g. "512mb". */
  maxmemory: "DREDIS_MAXMEMORY",
  /** Kubernetes leader election: the pod's name (the Lease holder, the pod it labels). */
  podName: "POD_NAME",
  /** Kubernetes leader election: the pod's namespace. */
  podNamespace: "POD_NAMESPACE",
  /** Kubernetes leader election: the Lease a master-backup proxy pair competes for. */
  leaseName: "LEASE_NAME",
  /** redis-cli's password, so health checks never put it on a command line. */
  redisCliAuth: "REDISCLI_AUTH",
} as const;

/** The label the elected proxy sets on its own pod; a master-backup Service selects it. */
export const POD_ROLE_LABEL = "dredis.io/role";
/** The value of `POD_ROLE_LABEL` on the leader. */
export const ACTIVE_ROLE = "active";

/** A proxy host's admin HTTP port in containers: /healthz, /readyz, /metrics. */
export const PROXY_ADMIN_PORT = 9121;

/** The arguments of `dredis` that make the cluster match `topology` (the migration workload). */
export function clusterApplyArgv(topology: Topology): string[] {
  return ["cluster", "apply", "--topology", JSON.stringify(topology)];
}
