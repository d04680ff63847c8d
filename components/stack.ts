/**
 * The example program's stack: its config (`Pulumi.<stack>.yaml`, keys `distributed-redis:<arg>`
 * named like DistributedRedisArgs) validated into args, and the factory that builds the
 * deployment from them. `index.ts` calls it with the stack's config; tests call it directly.
 */
import type * as pulumi from "@pulumi/pulumi";
import { DistributedRedis } from "./distributed-redis.ts";
import type { ProxyTlsArgs } from "./tls.ts";
import type { ShardTlsArgs } from "./shard-tls.ts";
import { parseClusterSpec, type ClusterSpec } from "./plan/spec.ts";

/** The Pulumi project name: the namespace of every config key. */
export const PROJECT = "distributed-redis";

/** Stack config keys of the `tls` arg (`pulumi config set --secret tlsPrivateKey < key.pem`). */
const TLS_KEYS = [
  "tlsCertificate",
  "tlsPrivateKey",
  "tlsClientCa",
  "tlsSecretName",
  "tlsVerifyClients",
  "tlsMinVersion",
] as const;

/** Stack config keys of the `shardTls` arg (`pulumi config set --secret shardTlsPrivateKey < key.pem`). */
const SHARD_TLS_KEYS = [
  "shardTlsCa",
  "shardTlsCertificate",
  "shardTlsPrivateKey",
  "shardTlsSecretName",
  "shardTlsIssuer",
  "shardTlsIssuerKind",
  "shardTlsServerName",
] as const;

/** Keys read apart from the spec: the component's name, the secret passwords, ACL users and TLS. */
const OWN_KEYS = new Set(["name", "password", "previousPassword", "users", ...TLS_KEYS, ...SHARD_TLS_KEYS]);

export interface StackConfig {
  /** Name of the DistributedRedis: prefixes every container and Kubernetes object. */
  name: string;
  spec: ClusterSpec;
  /** From `pulumi config set --secret password ...`; a random one when unset. */
  password?: pulumi.Input<string>;
  /** From `pulumi config set --secret previousPassword ...`, only while rotating the password. */
  previousPassword?: pulumi.Input<string>;
  /** From `pulumi config set --secret --path users.<name> "<rules>"`: the proxies' ACL users. */
  users?: pulumi.Input<Record<string, string>>;
  /** From the `tls*` keys (`tlsFromConfig`). */
  tls?: ProxyTlsArgs;
  /** From the `shardTls*` keys (`shardTlsFromConfig`). */
  shardTls?: ShardTlsArgs;
}

/** This project's keys of the stack's whole config (`project:key` -> value), unprefixed. */
export function projectConfig(all: Record<string, string>): Record<string, string> {
  const prefix = `${PROJECT}:`;
  return Object.fromEntries(
    Object.entries(all)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
}

/**
 * Validates raw config values (as `Pulumi.<stack>.yaml` holds them: numbers may arrive as
 * strings) and names the bad key the way Pulumi spells it, e.g. `distributed-redis:shards`.
 */
export function parseStackConfig(raw: Record<string, unknown>): ClusterSpec {
  const values = Object.fromEntries(
    Object.entries(raw)
      .filter(([key, value]) => value !== undefined && !OWN_KEYS.has(key))
      .map(([key, value]) => [key, typeof value === "string" ? fromConfigString(value) : value]),
  );
  return parseClusterSpec(values, "stack config", `${PROJECT}:`);
}

/** Pulumi config holds scalars as strings: "3" is the number 3, "true" is true, "docker" stays a string. */
function fromConfigString(value: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (value === "true" || value === "false") return value === "true";
  return value;
}

export function createStack(config: StackConfig, opts?: pulumi.ComponentResourceOptions): DistributedRedis {
  return new DistributedRedis(
    config.name,
    {
      ...config.spec,
      password: config.password,
      previousPassword: config.previousPassword,
      ...(config.users !== undefined ? { users: config.users } : {}),
      ...(config.tls ? { tls: config.tls } : {}),
      ...(config.shardTls ? { shardTls: config.shardTls } : {}),
    },
    opts,
  );
}

/**
 * The `tls` arg from the stack's `tls*` keys, or undefined when none is set: `tlsCertificate` and
 * `tlsPrivateKey` (secrets, PEM) on Docker, `tlsSecretName` on Kubernetes, and `tlsClientCa`,
 * `tlsVerifyClients`, `tlsMinVersion`. DistributedRedis validates them (`tls.*` in its errors).
 */
export function tlsFromConfig(config: pulumi.Config): ProxyTlsArgs | undefined {
  const given = TLS_KEYS.filter((key) => config.get(key) !== undefined);
  if (given.length === 0) return undefined;
  const verify = config.get("tlsVerifyClients");
  return {
    ...(given.includes("tlsCertificate") ? { certificate: config.requireSecret("tlsCertificate") } : {}),
    ...(given.includes("tlsPrivateKey") ? { privateKey: config.requireSecret("tlsPrivateKey") } : {}),
    ...(given.includes("tlsClientCa") ? { clientCa: config.require("tlsClientCa") } : {}),
    ...(given.includes("tlsSecretName") ? { secretName: config.require("tlsSecretName") } : {}),
    // Anything but true/false goes on as it is, for the validation to name it.
    ...(verify !== undefined
      ? { verifyClients: (verify === "true" ? true : verify === "false" ? false : verify) as boolean }
      : {}),
    ...(given.includes("tlsMinVersion")
      ? { minVersion: config.require("tlsMinVersion") as ProxyTlsArgs["minVersion"] }
      : {}),
  };
}

/**
 * The `shardTls` arg from the stack's `shardTls*` keys, or undefined when none is set:
 * `shardTlsCa`, `shardTlsCertificate` and `shardTlsPrivateKey` (secrets, PEM) on Docker;
 * `shardTlsSecretName`, or `shardTlsIssuer` (and `shardTlsIssuerKind`) for a cert-manager
 * Certificate, on Kubernetes; `shardTlsServerName`. DistributedRedis validates them.
 */
export function shardTlsFromConfig(config: pulumi.Config): ShardTlsArgs | undefined {
  const given = SHARD_TLS_KEYS.filter((key) => config.get(key) !== undefined);
  if (given.length === 0) return undefined;
  const plain = (key: (typeof SHARD_TLS_KEYS)[number]) =>
    given.includes(key) ? config.require(key) : undefined;
  const secret = (key: (typeof SHARD_TLS_KEYS)[number]) =>
    given.includes(key) ? config.requireSecret(key) : undefined;
  const issuer = plain("shardTlsIssuer");
  const kind = plain("shardTlsIssuerKind");
  const args: ShardTlsArgs = {
    ca: plain("shardTlsCa"),
    certificate: secret("shardTlsCertificate"),
    privateKey: secret("shardTlsPrivateKey"),
    secretName: plain("shardTlsSecretName"),
    // A kind without an issuer goes on as it is, for the validation to name the missing name.
    issuerRef:
      issuer === undefined && kind === undefined
        ? undefined
        : ({ name: issuer, ...(kind === undefined ? {} : { kind }) } as ShardTlsArgs["issuerRef"]),
    serverName: plain("shardTlsServerName"),
  };
  return Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined)) as ShardTlsArgs;
}
