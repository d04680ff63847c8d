/**
 * TLS to the shards, as the platforms render it: TLS-only nodes (`port 0`, `tls-port`,
 * `tls-cluster`, `tls-replication`, clients verified), and every client of the nodes over TLS
 * with the same certificate (the proxies' `backendTls`, the migration's `dredis cluster apply
 * --tls ...`, the health checks' and the entrypoint's `redis-cli --tls ...`).
 *
 * One certificate and one CA for the whole cluster, as a Kubernetes TLS Secret holds them
 * (`tls.crt`, `tls.key`, `ca.crt`: what cert-manager writes): a node presents its certificate
 * as a server to clients and as a client on the cluster bus and in replication, so it must carry
 * both `serverAuth` and `clientAuth`, and the proxies and the migration present it too.
 */
import type { ShardTlsFiles } from "../../src/cluster/redis-conf.ts";
import type { ProxyConfigInput } from "../../src/proxy/config.ts";
import { TLS_FILES } from "./tls.ts";

/** Where the shards' certificate files sit in a proxy or migration container (not the proxy's own /etc/dredis-tls). */
export const SHARD_TLS_CLIENT_DIR = "/etc/dredis-shard-tls";
/** Kubernetes: where the shard pods mount the Secret (beside /etc/redis, which is a volume of its own). */
export const SHARD_TLS_NODE_DIR = "/etc/redis-tls";

/** What the rendering needs to know of the shards' TLS (the files themselves come from the platform). */
export interface ShardTlsPlan {
  /**
   * The name the nodes' certificate carries, checked by the proxies and the migration and sent as
   * SNI; unset, each node's hostname (the certificate must then carry every node's name).
   */
  serverName?: string | undefined;
}

/** The three files in directory `dir`. */
export function shardTlsFiles(dir: string): ShardTlsFiles {
  return {
    certFile: `${dir}/${TLS_FILES.certificate}`,
    keyFile: `${dir}/${TLS_FILES.privateKey}`,
    caFile: `${dir}/${TLS_FILES.clientCa}`,
  };
}

/** The proxy config's `backendTls`: the CA, the name, and the certificate as the client's. */
export function proxyBackendTls(plan: ShardTlsPlan): NonNullable<ProxyConfigInput["backendTls"]> {
  const files = shardTlsFiles(SHARD_TLS_CLIENT_DIR);
  return {
    caFile: files.caFile,
    certFile: files.certFile,
    keyFile: files.keyFile,
    ...(plan.serverName !== undefined ? { serverName: plan.serverName } : {}),
  };
}

/** `dredis cluster ...`'s flags for TLS-only nodes, with the files in `SHARD_TLS_CLIENT_DIR`. */
export function adminTlsArgs(plan: ShardTlsPlan): string[] {
  const files = shardTlsFiles(SHARD_TLS_CLIENT_DIR);
  return [
    "--tls",
    ...["--cacert", files.caFile, "--cert", files.certFile, "--key", files.keyFile],
    ...(plan.serverName !== undefined ? ["--sni", plan.serverName] : []),
  ];
}

/**
 * redis-cli's flags for a node's own checks (health check, entrypoint): the node's files, and no
 * name check to pass (redis-cli checks the chain only), so loopback works whatever the name.
 */
export function redisCliTlsArgs(files: ShardTlsFiles): string {
  return `--tls --cacert ${files.caFile} --cert ${files.certFile} --key ${files.keyFile}`;
}

/** The cert-manager `Certificate` spec for the shards' Secret, from an issuer the user names. */
export function certificateSpec(options: {
  secretName: string;
  dnsNames: string[];
  issuerRef: { name: string; kind: string; group: string };
}): Record<string, unknown> {
  return {
    secretName: options.secretName,
    // One name for the whole cluster (the proxies' serverName), so adding shards never reissues it.
    dnsNames: options.dnsNames,
    // Presented as a server to clients, and as a client on the cluster bus and in replication.
    usages: ["server auth", "client auth", "digital signature", "key encipherment"],
    privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
    issuerRef: options.issuerRef,
  };
}

/**
 * Why turning `shardTls` on or off is refused, if it is: `before` is whether the running cluster's
 * last deployment had it (undefined: a first deployment, or one made before this was recorded,
 * which cannot be told apart), `after` whether this one has it. There is no mixed mode: the first
 * node replaced would serve the other way than its peers, could not join them, and `pulumi up`
 * would stop at its health check with the cluster half rolled.
 */
export function shardTlsChangeRefusal(before: boolean | undefined, after: boolean): string | undefined {
  if (before === undefined || before === after) return undefined;
  return after
    ? "shardTls cannot be turned on for a running cluster: its nodes serve plain connections, and a " +
        "node replaced to serve TLS only could not join them (there is no mixed mode), so the roll would " +
        "stop at its health check. Remove shardTls to keep this cluster as it is, or deploy a new cluster " +
        "(another stack or name) with shardTls and move the data to it"
    : "shardTls cannot be removed from a running cluster: its nodes serve TLS only, and a node replaced " +
        "to serve plain connections could not join them (there is no mixed mode), so the roll would stop " +
        "at its health check. Set shardTls back to keep this cluster as it is, or deploy a new cluster " +
        "(another stack or name) without shardTls and move the data to it";
}
