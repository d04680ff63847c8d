/**
 * The proxy's configuration: one document that a proxy host reads at start-up
 * (`dredis proxy --config FILE`, YAML or JSON). The Pulumi components render this same
 * document into containers, and the tests boot it for real.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { DredisError, ErrorCodes } from "../errors.ts";
import { aclConfigProblem, aclUsersSchema } from "./acl/config.ts";
import { DEFAULT_MAX_REPLICA_LAG_BYTES, READ_FROM_MODES } from "./upstream/read-from.ts";
import { backendTlsSchema, serverTlsSchema } from "../tls/options.ts";

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^\s:]+):\d{1,5}$/, 'expected "host:port", for example "10.0.0.5:6379"');

export const proxyConfigSchema = z
  .object({
    /** Where clients connect. */
    listen: z
      .object({
        /** @default "0.0.0.0" */
        host: z.string().min(1).default("0.0.0.0"),
        /** @default 6380 */
        port: z.number().int().min(0).max(65535).default(6380),
      })
      .strict()
      .default({ host: "0.0.0.0", port: 6380 }),
    /** Any subset of the cluster's nodes as "host:port"; the full map is discovered from them. */
    seeds: z.array(hostPort).min(1, "at least one seed node is needed"),
    /** Worker processes sharing the listening port. @default 2 */
    workers: z.number().int().min(1).max(64).default(2),
    /** Credentials the proxy uses towards the shards (Redis ACL user, or only a password). */
    backendAuth: z
      .object({ username: z.string().min(1).optional(), password: z.string().min(1) })
      .strict()
      .optional(),
    /** Password clients must give (AUTH / HELLO AUTH). Unset: no authentication, as Redis by default. */
    clientPassword: z.string().min(1).optional(),
    /**
     * ACL users clients authenticate as, name to rules in Redis's syntax, e.g.
     * `app: "on #<sha256> ~app:* &events:* +@read +@write -@dangerous"` (see src/proxy/acl/config.ts).
     * Unset: one user, `default`, as without ACLs.
     */
    users: aclUsersSchema.optional(),
    /**
     * Pipelined connections per shard master, per worker: connections per shard are workers x hosts
     * x this. One batches the most requests per write (fewest system calls), and a shard runs one
     * command at a time anyway. @default 1
     */
    connectionsPerShard: z.number().int().min(1).max(64).default(1),
    /** How often the slot map is refreshed when nothing prompts it (MOVED and errors prompt it at once). @default 5000 */
    refreshIntervalMs: z.number().int().min(100).default(5000),
    /**
     * How long a request may wait for a shard to come back (failover, CLUSTERDOWN, TRYAGAIN)
     * before it fails, in ms. "auto" covers a shard failover: 2 x the cluster's
     * `cluster-node-timeout` (read from the shards at every slot-map load) + 2000 ms for the
     * replica's election, e.g. 12000 for node-timeout 5000, 32000 for Redis's default 15000
     * (src/proxy/upstream/limits.ts). @default "auto"
     */
    retryBudgetMs: z
      .union([z.number().int().min(0), z.literal("auto")], {
        error: 'expected a number of milliseconds (0 or more) or "auto"',
      })
      .default("auto"),
    limits: z
      .object({
        /** @default 10000 */
        maxClients: z.number().int().min(1).default(10_000),
        /** Largest bulk argument, as Redis's proto-max-bulk-len. @default 536870912 (512 MB) */
        maxBulkBytes: z
          .number()
          .int()
          .min(1024)
          .default(512 * 1024 * 1024),
        /** Most arguments in one command. @default 1048576 */
        maxArgs: z
          .number()
          .int()
          .min(2)
          .default(1024 * 1024),
        /** Bytes a client may have in flight (sent, not yet answered) before its reads pause. @default 67108864 (64 MB) */
        maxPendingBytesPerClient: z
          .number()
          .int()
          .min(64 * 1024)
          .default(64 * 1024 * 1024),
        /** Commands a client may have in flight before the proxy stops taking more from it. @default 1000 */
        maxInflightPerClient: z.number().int().min(1).default(1000),
        /**
         * Replies a client has not read, in bytes, past which it is disconnected (as Redis's
         * client-output-buffer-limit); above the largest value Redis stores, so one big reply passes.
         * @default 1073741824 (1 GB)
         */
        maxOutputBytesPerClient: z
          .number()
          .int()
          .min(1024 * 1024)
          .default(1024 * 1024 * 1024),
        /** Close clients idle this long; 0 keeps them forever, as Redis's `timeout 0`. @default 0 */
        idleTimeoutSeconds: z.number().int().min(0).default(0),
      })
      .strict()
      .default({
        maxClients: 10_000,
        maxBulkBytes: 512 * 1024 * 1024,
        maxArgs: 1024 * 1024,
        maxPendingBytesPerClient: 64 * 1024 * 1024,
        maxInflightPerClient: 1000,
        maxOutputBytesPerClient: 1024 * 1024 * 1024,
        idleTimeoutSeconds: 0,
      }),
    /** HTTP health and metrics endpoint (/healthz, /readyz, /metrics). Port 0 disables it. */
    admin: z
      .object({
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(0),
      })
      .strict()
      .default({ host: "127.0.0.1", port: 0 }),
    /**
     * Atomic multi-key commands (RENAME, SMOVE, LMOVE, *STORE, COPY, MSETNX...) whose keys span
     * slots: "refuse" answers CROSSSLOT, as Redis Cluster does; "emulate" has the busy proxy run
     * the non-blocking ones, losing atomicity or isolation across keys (docs/commands.md says
     * which, per command). Blocking ones are refused either way. Reloadable (SIGHUP). @default "refuse"
     */
    crossSlot: z.enum(["refuse", "emulate"]).default("refuse"),
    /**
     * A cross-slot MGET, MSET, DEL, UNLINK, EXISTS or TOUCH of at most this many keys is split in
     * the worker that received it rather than by the busy proxy (the same parts, merge and errors,
     * without the trip over the busy proxy's socket; see src/proxy/client.ts, `splitHere`). 0
     * sends every one to the busy proxy. @default 16
     */
    workerSplitMaxKeys: z.number().int().min(0).max(1024).default(16),
    /** Commands refused through the proxy, lower case. Defaults to those that could damage the cluster. */
    deniedCommands: z.array(z.string().min(1)).optional(),
    // Reads from replicas (src/proxy/upstream/read-from.ts).
    /**
     * Where read-only commands go: "master" (every read sees every acknowledged write),
     * "replica-preferred" (a qualifying replica of the slot's master, else the master), "replica"
     * (qualifying replicas only; an error when the shard has none). Replica reads may be stale.
     * A client's READONLY makes its own reads "replica-preferred". Reloadable (SIGHUP). @default "master"
     */
    readFrom: z
      .enum(READ_FROM_MODES, { error: 'expected "master", "replica-preferred" or "replica"' })
      .default("master"),
    /**
     * A replica further behind its master than this many bytes of replication stream (or with its
     * link down, or in a full sync) serves no reads; measured at every slot-map refresh. @default 1048576 (1 MB)
     */
    maxReplicaLagBytes: z.number().int().min(0).default(DEFAULT_MAX_REPLICA_LAG_BYTES),
    /**
     * During a password rotation, the password clients used before `clientPassword`: the default
     * user accepts both, so applications can move to the new one while the proxies roll, and
     * none is refused in between. Drop it when the rotation is over. Reloadable (SIGHUP).
     */
    previousClientPassword: z.string().min(1).optional(),
    // TLS (src/tls/options.ts).
    /** A TLS port for clients (certificate, key, optional client CA); the plain port then serves only with `tls.plain`. */
    tls: serverTlsSchema.optional(),
    /** TLS towards the shards (their `tls-port`): CA, server name, optional client certificate. */
    backendTls: backendTlsSchema.optional(),
    /** @default "info" */
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  })
  .strict();

export type ProxyConfig = z.output<typeof proxyConfigSchema>;
export type ProxyConfigInput = z.input<typeof proxyConfigSchema>;

/**
 * The fields a running proxy host takes on when it re-reads its config file (SIGHUP): new backend
 * connections authenticate with the new `backendAuth` (open ones keep theirs), and clients
 * authenticate against the new `clientPassword` and `users` (authenticated ones stay so, with their
 * user's new rules; a client whose user is gone is disconnected, as Redis does), the next
 * cross-slot command follows the new `crossSlot`, and reads go where the new `readFrom` says from
 * their next command. Every other field takes effect at the next restart.
 */
export type LiveConfig = Pick<
  ProxyConfig,
  "backendAuth" | "clientPassword" | "previousClientPassword" | "users" | "crossSlot" | "readFrom"
>;

export function liveFields(config: ProxyConfig): LiveConfig {
  return {
    backendAuth: config.backendAuth,
    clientPassword: config.clientPassword,
    previousClientPassword: config.previousClientPassword,
    users: config.users,
    crossSlot: config.crossSlot,
    readFrom: config.readFrom,
  };
}

/** The top-level fields that differ between two configs, other than the live ones. */
export function fieldsNeedingRestart(running: ProxyConfig, next: ProxyConfig): string[] {
  const live = new Set<string>([
    "backendAuth",
    "clientPassword",
    "previousClientPassword",
    "users",
    "crossSlot",
    "readFrom",
  ]);
  const names = new Set([...Object.keys(running), ...Object.keys(next)]);
  return [...names].filter(
    (name) =>
      !live.has(name) &&
      JSON.stringify(running[name as keyof ProxyConfig]) !== JSON.stringify(next[name as keyof ProxyConfig]),
  );
}

/** Validates a config object; a bad field is named with what was expected. */
export function parseProxyConfig(input: unknown, source = "proxy config"): ProxyConfig {
  const result = proxyConfigSchema.safeParse(input);
  if (result.success) {
    const problem = aclConfigProblem(result.data);
    if (problem !== undefined) throw new DredisError(ErrorCodes.CONFIG, `invalid ${source}:\n  - ${problem}`);
    return result.data;
  }
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.join(".") : "(root)";
    return `  - ${path}: ${issue.message}`;
  });
  throw new DredisError(ErrorCodes.CONFIG, `invalid ${source}:\n${problems.join("\n")}`);
}

/** Reads a YAML or JSON config file and validates it. */
export async function loadProxyConfig(path: string): Promise<ProxyConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new DredisError(ErrorCodes.CONFIG, `cannot read proxy config ${path}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new DredisError(
      ErrorCodes.CONFIG,
      `proxy config ${path} is not valid YAML/JSON: ${(err as Error).message}`,
    );
  }
  return parseProxyConfig(data, `proxy config ${path}`);
}
