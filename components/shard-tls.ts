/**
 * The `shardTls` arg of DistributedRedis: the shard nodes serve only TLS (plain port closed,
 * cluster bus and replication over TLS, clients verified), and everything that talks to them (the
 * proxies, the migration, the health checks, the entrypoint's handover) does so over TLS. The
 * certificate comes from Pulumi secrets (Docker), from a Kubernetes TLS Secret the user manages,
 * or from a cert-manager Certificate this component creates from the issuer given.
 */
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { argError, parseSpec, type Platform } from "./plan/spec.ts";
import type { ShardTlsPlan } from "./plan/shard-tls.ts";

export interface ShardTlsArgs {
  /**
   * Docker: the CA (PEM) that signed `certificate`; nodes verify each other and their clients
   * (the proxies, the migration) with it.
   * @example config.require("shardTlsCa")
   */
  ca?: pulumi.Input<string>;
  /**
   * Docker: the nodes' certificate (PEM), with both serverAuth and clientAuth usages (a node is a
   * client on the cluster bus and in replication); the proxies and the migration present it too.
   * It must carry `serverName`, or every node's hostname when `serverName` is unset.
   * @example config.requireSecret("shardTlsCertificate")
   */
  certificate?: pulumi.Input<string>;
  /**
   * Docker: the certificate's private key (PEM). Treated as a secret.
   * @example config.requireSecret("shardTlsPrivateKey")
   */
  privateKey?: pulumi.Input<string>;
  /**
   * Kubernetes: a Secret in the namespace with `tls.crt`, `tls.key` and `ca.crt` (cert-manager's
   * layout), mounted into the nodes, the proxies and the migration Job. With `issuerRef`, the
   * name of the Secret the Certificate fills.
   * @default "<name>-shard-tls" with issuerRef
   * @example "redis-shard-tls"
   */
  secretName?: string;
  /**
   * Kubernetes: a cert-manager issuer; a `Certificate` for `serverName` (server and client auth)
   * is then created, filling `secretName`. The issuer must put `ca.crt` in the Secret (a CA,
   * Vault or self-signed issuer does).
   * @example { name: "internal-ca", kind: "ClusterIssuer" }
   */
  issuerRef?: { name: string; kind?: "Issuer" | "ClusterIssuer"; group?: string };
  /**
   * The name the certificate carries, which the proxies and the migration check and send as
   * SNI. Unset: each node's hostname (Docker: `<name>-shard-<i>-<j>`), except with `issuerRef`.
   * @default "<name>-shards.<namespace>.svc.<clusterDomain>" with issuerRef
   * @example "redis-shards.internal"
   */
  serverName?: string;
}

export type ShardTlsSpec = ShardTlsPlan &
  (
    | {
        platform: "docker";
        ca: pulumi.Input<string>;
        certificate: pulumi.Input<string>;
        privateKey: pulumi.Input<string>;
      }
    | {
        platform: "kubernetes";
        secretName: string;
        /** Set when a cert-manager Certificate is to be created. */
        issuerRef?: { name: string; kind: string; group: string };
      }
  );

const present = z.custom<unknown>((v) => v !== undefined && v !== null && v !== "", "must not be empty");
const objectName = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    "expected a Kubernetes object name (lower case, digits, '-', '.')",
  )
  .max(253);

const shardTlsSchema = z
  .object({
    ca: present.optional(),
    certificate: present.optional(),
    privateKey: present.optional(),
    secretName: objectName.optional(),
    issuerRef: z
      .object({
        name: objectName,
        kind: z.enum(["Issuer", "ClusterIssuer"]).default("Issuer"),
        group: z.string().min(1).default("cert-manager.io"),
      })
      .strict()
      .optional(),
    serverName: z
      .string()
      .regex(/^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/, "expected a DNS name (letters, digits, '-', '.')")
      .max(253)
      .optional(),
  })
  .strict();

/** What the defaults are made from. */
export interface ShardTlsContext {
  clusterName: string;
  namespace: string;
  clusterDomain: string;
}

/** Validates `shardTls` for the platform: every half-given setting is refused with what to add. */
export function parseShardTls(
  platform: Platform,
  given: ShardTlsArgs,
  context: ShardTlsContext,
  source: string,
): ShardTlsSpec {
  const args = parseSpec(shardTlsSchema, given, source, "shardTls.");
  if (platform === "kubernetes") {
    for (const key of ["ca", "certificate", "privateKey"] as const)
      if (args[key] !== undefined)
        throw argError(
          source,
          `shardTls.${key}`,
          "Docker only: on Kubernetes the certificate comes from a Secret; set shardTls.secretName " +
            "(tls.crt, tls.key, ca.crt) or shardTls.issuerRef (a cert-manager Certificate is created)",
        );
    if (args.issuerRef === undefined) {
      if (args.secretName === undefined)
        throw argError(
          source,
          "shardTls.secretName",
          "required on kubernetes: a Secret with tls.crt, tls.key and ca.crt, " +
            "or set shardTls.issuerRef to have a cert-manager Certificate made",
        );
      return { platform, secretName: args.secretName, serverName: args.serverName };
    }
    return {
      platform,
      secretName: args.secretName ?? `${context.clusterName}-shard-tls`,
      issuerRef: args.issuerRef,
      serverName:
        args.serverName ?? `${context.clusterName}-shards.${context.namespace}.svc.${context.clusterDomain}`,
    };
  }
  for (const key of ["secretName", "issuerRef"] as const)
    if (args[key] !== undefined)
      throw argError(
        source,
        `shardTls.${key}`,
        "Kubernetes only: on Docker give shardTls.ca, shardTls.certificate and shardTls.privateKey",
      );
  if (given.certificate === undefined && given.privateKey === undefined)
    throw argError(
      source,
      "shardTls.certificate",
      "required on docker: the nodes' certificate and its private key (PEM), e.g. from config.requireSecret",
    );
  if (given.certificate === undefined || given.privateKey === undefined) {
    const [missing, other] =
      given.certificate === undefined ? ["certificate", "privateKey"] : ["privateKey", "certificate"];
    throw argError(
      source,
      `shardTls.${missing}`,
      `required with shardTls.${other}: a certificate and its private key go together`,
    );
  }
  if (given.ca === undefined)
    throw argError(
      source,
      "shardTls.ca",
      "required: the CA (PEM) that signed shardTls.certificate; the nodes verify each other and " +
        "their clients (the proxies, the migration) with it",
    );
  return {
    platform,
    ca: given.ca,
    certificate: given.certificate,
    privateKey: given.privateKey,
    serverName: args.serverName,
  };
}
