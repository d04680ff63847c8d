/**
 * The `tls` arg of DistributedRedis and ProxyFleet: TLS between clients and the proxy fleet, with
 * the certificate from Pulumi secrets (Docker) or from a Kubernetes TLS Secret the user manages,
 * e.g. the one a cert-manager Certificate keeps renewed. The proxies re-read renewed files
 * without a restart (src/tls/listener.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { parseSpec, argError, type Platform } from "./plan/spec.ts";
import type { ProxyTlsPlan } from "./plan/tls.ts";

export interface ProxyTlsArgs {
  /**
   * Docker: the proxies' certificate chain (PEM). Written into each proxy container.
   * @example config.requireSecret("tlsCertificate")
   */
  certificate?: pulumi.Input<string>;
  /**
   * Docker: the certificate's private key (PEM). Treated as a secret.
   * @example config.requireSecret("tlsPrivateKey")
   */
  privateKey?: pulumi.Input<string>;
  /**
   * Docker, with `verifyClients`: the CA (PEM) client certificates must be signed by.
   * @example config.require("clientCa")
   */
  clientCa?: pulumi.Input<string>;
  /**
   * Kubernetes: a Secret of type kubernetes.io/tls in the namespace (`tls.crt`, `tls.key`, and
   * `ca.crt` with `verifyClients`), mounted into the proxies; for cert-manager, its Certificate's
   * `spec.secretName`. Renewals reach running proxies without a restart.
   * @example "redis-proxy-tls"
   */
  secretName?: string;
  /**
   * Clients must present a certificate signed by the client CA.
   * @default false
   * @example true
   */
  verifyClients?: boolean;
  /**
   * Lowest TLS version accepted.
   * @default "TLSv1.2"
   * @example "TLSv1.3"
   */
  minVersion?: "TLSv1.2" | "TLSv1.3";
}

/** Where the certificate comes from, once validated. */
export type ProxyTlsSpec = ProxyTlsPlan &
  (
    | {
        platform: "docker";
        certificate: pulumi.Input<string>;
        privateKey: pulumi.Input<string>;
        clientCa: pulumi.Input<string> | undefined;
      }
    | { platform: "kubernetes"; secretName: string }
  );

const present = z.custom<unknown>((v) => v !== undefined && v !== null && v !== "", "must not be empty");

const tlsArgsSchema = z
  .object({
    certificate: present.optional(),
    privateKey: present.optional(),
    clientCa: present.optional(),
    secretName: z
      .string()
      .regex(
        /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
        "expected a Kubernetes object name (lower case, digits, '-', '.')",
      )
      .max(253)
      .optional(),
    verifyClients: z.boolean().default(false),
    minVersion: z.enum(["TLSv1.2", "TLSv1.3"]).default("TLSv1.2"),
  })
  .strict();

/** Validates `tls` for the platform: each platform takes the certificate from one place only. */
export function parseProxyTls(platform: Platform, tls: ProxyTlsArgs, source: string): ProxyTlsSpec {
  const args = parseSpec(tlsArgsSchema, tls, source, "tls.");
  const plan = { verifyClients: args.verifyClients, minVersion: args.minVersion };
  if (platform === "kubernetes") {
    for (const key of ["certificate", "privateKey", "clientCa"] as const)
      if (args[key] !== undefined)
        throw argError(
          source,
          `tls.${key}`,
          "Docker only: on Kubernetes the certificate comes from a Secret; set tls.secretName (a kubernetes.io/tls Secret, or a cert-manager Certificate's spec.secretName)",
        );
    if (args.secretName === undefined)
      throw argError(source, "tls.secretName", "required on kubernetes: the TLS Secret the proxies mount");
    return { ...plan, platform, secretName: args.secretName };
  }
  if (args.secretName !== undefined)
    throw argError(
      source,
      "tls.secretName",
      "Kubernetes only: on Docker give tls.certificate and tls.privateKey",
    );
  if (tls.certificate === undefined || tls.privateKey === undefined)
    throw argError(
      source,
      tls.certificate === undefined ? "tls.certificate" : "tls.privateKey",
      "required on docker: the proxies' certificate and its private key (PEM), e.g. from config.requireSecret",
    );
  if (args.verifyClients && tls.clientCa === undefined)
    throw argError(
      source,
      "tls.clientCa",
      "required with verifyClients: the CA client certificates must be signed by",
    );
  return {
    ...plan,
    platform,
    certificate: tls.certificate,
    privateKey: tls.privateKey,
    clientCa: args.verifyClients ? tls.clientCa : undefined,
  };
}
