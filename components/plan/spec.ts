/**
 * The validated shape of a deployment: what `DistributedRedisArgs` and a stack config say, with
 * every default filled in. Both are checked with this one schema, so an error names the same key
 * whether it came from TypeScript args or from `Pulumi.<stack>.yaml`.
 */
import { z } from "zod";
import { DredisError, ErrorCodes } from "../../src/errors.ts";
import { ENGINES, type Engine } from "../../src/cluster/engine.ts";

/** A DNS-1123 label: what Docker container names, Kubernetes objects and hostnames all accept. */
const dnsLabel = z
  .string()
  .regex(/^[a-z]([a-z0-9-]*[a-z0-9])?$/, "expected lower-case letters, digits and '-' (a DNS label)");

const ipv4 = z.string().regex(/^(\d{1,3})(\.\d{1,3}){3}$/, 'expected an IPv4 address, e.g. "10.0.0.50"');

const ipv4Cidr = z
  .string()
  .regex(
    /^(\d{1,3})(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/,
    'expected an IPv4 CIDR from /16 to /24, e.g. "172.28.0.0/16"',
  );

/** Where a deployment runs; each has a driver (`components/drivers.ts`). */
export const PLATFORMS = ["docker", "kubernetes"] as const;
export type Platform = (typeof PLATFORMS)[number];

/** The shard nodes' image when `redisImage` is unset: the engine's (Valkey 9 has atomic slot migration). */
export const DEFAULT_SHARD_IMAGE: Record<Engine, string> = {
  redis: "redis:7.2",
  valkey: "valkey/valkey:9.0",
};

/** Every key, without the rules that relate keys to each other (components pick from it). */
export const clusterSpecShape = z
  .object({
    platform: z.enum(PLATFORMS),
    shards: z.number().int().min(3, "Redis Cluster needs at least 3 shards").max(128).default(3),
    replicasPerShard: z.number().int().min(0).max(5).default(1),
    shardMemoryMb: z
      .number()
      .int()
      .min(32)
      .max(1024 * 1024)
      .default(256),
    persistence: z.enum(["aof", "rdb", "none"]).default("aof"),
    storageGb: z.number().int().min(1).default(1),
    storageClass: z.string().min(1).optional(),
    proxyMode: z.enum(["master-backup", "load-balanced"]).default("load-balanced"),
    proxyHosts: z.number().int().min(1).max(64).default(2),
    proxyWorkers: z.number().int().min(1).max(64).default(2),
    port: z.number().int().min(1).max(65535).default(6379),
    /** The proxies' `crossSlot` (README): "emulate" runs atomic multi-key commands across slots. */
    crossSlot: z.enum(["refuse", "emulate"]).default("refuse"),
    /** The proxies' `readFrom` (README): where read-only commands go. */
    readFrom: z.enum(["master", "replica-preferred", "replica"]).default("master"),
    image: z.string().min(1).optional(),
    engine: z.enum(ENGINES).default("redis"),
    /** Unset: the engine's image (`DEFAULT_SHARD_IMAGE`), filled in by `clusterSpecSchema`. */
    redisImage: z.string().min(1).optional(),
    haproxyImage: z.string().min(1).default("haproxy:2.8"),
    namespace: dnsLabel.default("default"),
    clusterDomain: z.string().min(1).default("cluster.local"),
    serviceType: z.enum(["LoadBalancer", "ClusterIP"]).default("LoadBalancer"),
    fixedIp: ipv4.optional(),
    dockerSubnet: ipv4Cidr.default("172.28.0.0/16"),
    podAntiAffinity: z.enum(["required", "preferred"]).default("required"),
    migrationTimeoutMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .optional(),
  })
  .strict();

export const clusterSpecSchema = clusterSpecShape
  .superRefine((spec, ctx) => {
    if (spec.platform === "kubernetes" && spec.image === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["image"],
        message: "required on kubernetes: a cluster cannot pull an image built on this machine",
      });
    if (spec.proxyMode === "master-backup" && spec.proxyHosts !== 2)
      ctx.addIssue({
        code: "custom",
        path: ["proxyHosts"],
        message: "master-backup runs exactly 2 proxy hosts (leave proxyHosts unset or set it to 2)",
      });
  })
  .transform((spec) => ({ ...spec, redisImage: spec.redisImage ?? DEFAULT_SHARD_IMAGE[spec.engine] }));

export type ClusterSpec = z.output<typeof clusterSpecSchema>;
export type ClusterSpecInput = z.input<typeof clusterSpecSchema>;

/**
 * Validates a spec. Each problem is reported on its own line as `<prefix><key>: <what is wrong>`,
 * e.g. `distributed-redis:shards: Redis Cluster needs at least 3 shards`.
 */
export function parseClusterSpec(input: unknown, source: string, keyPrefix = ""): ClusterSpec {
  return parseSpec(clusterSpecSchema, input, source, keyPrefix);
}

/** Validates `input` with any schema built from `clusterSpecShape`, reporting as `parseClusterSpec`. */
export function parseSpec<T extends z.ZodType>(
  schema: T,
  input: unknown,
  source: string,
  keyPrefix = "",
): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const unknownKeys = issue.code === "unrecognized_keys" ? issue.keys : [];
    if (unknownKeys.length) return unknownKeys.map((k) => `  - ${keyPrefix}${k}: unknown key`).join("\n");
    return `  - ${keyPrefix}${issue.path.join(".") || "(root)"}: ${issue.message}`;
  });
  throw new DredisError(ErrorCodes.CONFIG, `invalid ${source}:\n${problems.join("\n")}`);
}

/** The error for an arg that is required in this situation, worded as schema errors are. */
export function argError(source: string, key: string, why: string): DredisError {
  return new DredisError(ErrorCodes.CONFIG, `invalid ${source}:\n  - ${key}: ${why}`);
}
