/**
 * The document a proxy host reads (`dredis proxy --config /etc/dredis/proxy.yaml`), rendered
 * from the plan. It holds the password, so platforms store it as a secret.
 */
import { stringify } from "yaml";
import type { ProxyConfigInput } from "../../src/proxy/config.ts";
import { PROXY_ADMIN_PORT } from "../../src/contract.ts";
import { aclUsersSchema } from "../../src/proxy/acl/config.ts";
import { argError } from "./spec.ts";
import { proxyBackendTls, type ShardTlsPlan } from "./shard-tls.ts";
import { proxyTlsConfig, type ProxyTlsPlan } from "./tls.ts";

/** The spec's settings that go into every proxy host's config as they are. */
export type ProxySettings = Partial<Pick<ProxyConfigInput, "crossSlot" | "readFrom">>;

export const PROXY_CONFIG_PATH = "/etc/dredis/proxy.yaml";

export interface ProxyConfOptions {
  /** The shards' node addresses; the proxy discovers the slot map from any of them. */
  seeds: string[];
  /** Port clients connect to. */
  port: number;
  workers: number;
  /** Password for the shards and for clients. */
  password: string;
  /** Settings of the spec; written only when not the proxy's default, so configs stay as they were. */
  settings?: ProxySettings | undefined;
  /** During a password rotation, the password before `password`: clients may still use it. */
  previousPassword?: string | undefined;
  /** ACL users besides the default one (whose password is `password`), name to rules. */
  users?: Record<string, string> | undefined;
  /** Serve clients over TLS only, on `port` (the files are the platform's: plan/tls.ts). */
  tls?: ProxyTlsPlan;
  /** The shards serve TLS only: reach them over TLS (the files are the platform's: plan/shard-tls.ts). */
  shardTls?: ShardTlsPlan;
}

export function proxyConfig(options: ProxyConfOptions): ProxyConfigInput {
  return {
    listen: { host: "0.0.0.0", port: options.port },
    seeds: options.seeds,
    workers: options.workers,
    backendAuth: { password: options.password },
    clientPassword: options.password,
    ...(options.settings?.crossSlot !== undefined && options.settings.crossSlot !== "refuse"
      ? { crossSlot: options.settings.crossSlot }
      : {}),
    ...(options.settings?.readFrom !== undefined && options.settings.readFrom !== "master"
      ? { readFrom: options.settings.readFrom }
      : {}),
    ...(options.previousPassword !== undefined ? { previousClientPassword: options.previousPassword } : {}),
    ...(options.users !== undefined ? { users: options.users } : {}),
    // Probes come from outside the container (kubelet, Docker, HAProxy), so not loopback only.
    admin: { host: "0.0.0.0", port: PROXY_ADMIN_PORT },
    ...(options.tls ? { tls: proxyTlsConfig(options.port, options.tls) } : {}),
    ...(options.shardTls ? { backendTls: proxyBackendTls(options.shardTls) } : {}),
  };
}

export function renderProxyConf(options: ProxyConfOptions): string {
  return stringify(proxyConfig(options));
}

/**
 * Checks the `users` arg: each user's rules (the error names the rule), and no `default`, which
 * is the deployment's `password` (health checks and the admin tooling sign in with it).
 */
export function checkUsers(users: Record<string, string>, source: string): Record<string, string> {
  if (Object.hasOwn(users, "default"))
    throw argError(
      source,
      "users.default",
      "the default user is the deployment's `password` (health checks and the admin tooling use it); " +
        "give applications users of their own",
    );
  const result = aclUsersSchema.safeParse(users);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw argError(source, `users.${issue.path.join(".")}`, issue.message);
  }
  return users;
}
