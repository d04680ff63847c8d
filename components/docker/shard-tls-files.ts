/** The shards' TLS files as a Docker client of the nodes (a proxy, the migration) gets them. */
import * as pulumi from "@pulumi/pulumi";
import { SHARD_TLS_CLIENT_DIR } from "../plan/shard-tls.ts";
import { TLS_FILES } from "../plan/tls.ts";
import type { ShardTlsSpec } from "../shard-tls.ts";

/** The shards' certificate files for a client of the nodes (a proxy, the migration), key as a secret. */
export function shardTlsUploads(
  tls: Extract<ShardTlsSpec, { platform: "docker" }> | undefined,
): { file: string; content: pulumi.Input<string> }[] {
  if (tls === undefined) return [];
  return [
    { file: `${SHARD_TLS_CLIENT_DIR}/${TLS_FILES.clientCa}`, content: tls.ca },
    { file: `${SHARD_TLS_CLIENT_DIR}/${TLS_FILES.certificate}`, content: pulumi.secret(tls.certificate) },
    { file: `${SHARD_TLS_CLIENT_DIR}/${TLS_FILES.privateKey}`, content: pulumi.secret(tls.privateKey) },
  ];
}
