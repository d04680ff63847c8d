/**
 * The component provider other languages reach through `pulumi package add`: it describes
 * DistributedRedis in a Pulumi package schema and constructs it when a program (Python, Go, ...)
 * declares one. `components/plugin.cjs` (package.json "main") starts it.
 *
 * Why not @pulumi/pulumi's own componentProviderHost: its TypeScript analyzer refuses union types
 * ("Union types are not supported ... 'DistributedRedisArgs.platform'"), and every choice in the
 * args is one (`platform`, `persistence`, `proxyMode`, ...). The schema here is made from the
 * same zod shape that validates the args, so it cannot drift from what the component accepts.
 *
 * Only DistributedRedis is offered: RedisShard, SlotMigration and ProxyFleet take hooks and
 * resources built by DistributedRedis itself, which no schema can carry.
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { DredisError, ErrorCodes } from "../src/errors.ts";
import { DistributedRedis, type DistributedRedisArgs } from "./distributed-redis.ts";
import { clusterSpecShape } from "./plan/spec.ts";

export const PACKAGE_NAME = "distributed-redis";
export const DISTRIBUTED_REDIS_TYPE = "distributed-redis:index:DistributedRedis";

const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
  description: string;
  license: string;
};

interface JsonSchemaProperty {
  type?: string;
  enum?: (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  pattern?: string;
}

interface PropertySpec {
  type: string;
  description: string;
  default?: unknown;
  secret?: boolean;
  items?: { type: string };
}

/** A line that says what the component checks, since the schema's types alone cannot. */
function describe(key: string, p: JsonSchemaProperty): string {
  const rules: string[] = [];
  if (p.enum) rules.push(`one of ${p.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  if (p.minimum !== undefined) rules.push(`at least ${p.minimum}`);
  if (p.maximum !== undefined && p.maximum < Number.MAX_SAFE_INTEGER) rules.push(`at most ${p.maximum}`);
  if (p.pattern) rules.push(`matching ${p.pattern}`);
  if (p.default !== undefined) rules.push(`default ${JSON.stringify(p.default)}`);
  const what = `\`${key}\` of DistributedRedisArgs (components/distributed-redis.ts)`;
  return rules.length ? `${what}: ${rules.join("; ")}.` : `${what}.`;
}

/** The Pulumi package schema of this package, from the args' zod shape. */
export function packageSchema(): Record<string, unknown> {
  const json = z.toJSONSchema(clusterSpecShape, { io: "input" }) as {
    properties: Record<string, JsonSchemaProperty>;
    required?: string[];
  };
  const inputProperties: Record<string, PropertySpec> = {};
  for (const [key, p] of Object.entries(json.properties)) {
    const type = p.type === "integer" || p.type === "number" || p.type === "boolean" ? p.type : "string";
    inputProperties[key] = { type, description: describe(key, p) };
  }
  for (const key of ["password", "previousPassword"] as const)
    inputProperties[key] = {
      type: "string",
      secret: true,
      description:
        key === "password"
          ? "Password of the shards and of the endpoint (required from other languages: the random one needs the random provider)."
          : "Only to rotate the password: the password the cluster has now, with `password` the new one.",
    };
  const str = (description: string, secret = false): PropertySpec => ({
    type: "string",
    description,
    ...(secret ? { secret } : {}),
  });
  const strings = (description: string): PropertySpec => ({
    type: "array",
    items: { type: "string" },
    description,
  });
  return {
    name: PACKAGE_NAME,
    displayName: "Distributed Redis",
    version: packageJson.version,
    description: packageJson.description,
    license: packageJson.license,
    resources: {
      [DISTRIBUTED_REDIS_TYPE]: {
        isComponent: true,
        description: "Redis Cluster shards, a fleet of cluster-aware proxies and online slot migration.",
        inputProperties,
        requiredInputs: [...(json.required ?? []), "password"],
        properties: {
          endpoint: str("`host:port` non-cluster clients connect to."),
          endpointHost: str("Host part of `endpoint`."),
          endpointPort: { type: "integer", description: "Port part of `endpoint`." },
          proxyAddresses: strings("`host:port` of each proxy host."),
          seedNodes: strings("Every shard node's `host:port`, for cluster-mode clients inside the network."),
          password: str("The password of the endpoint and the shards.", true),
          topology: str("The desired topology (JSON) the last migration applied."),
          topologyHash: str("Digest of `topology`."),
          dockerNetwork: str("Docker only: the network to attach app containers to."),
        },
        required: [
          "endpoint",
          "endpointHost",
          "endpointPort",
          "proxyAddresses",
          "seedNodes",
          "password",
          "topology",
          "topologyHash",
        ],
      },
    },
  };
}

/**
 * The args as DistributedRedis takes them. Everything but the passwords decides the topology at
 * preview, so it must be a plain value; the passwords stay outputs (secrets).
 */
export function distributedRedisArgs(inputs: pulumi.Inputs): DistributedRedisArgs {
  const args: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(inputs)) {
    if (value === undefined || value === null) continue;
    if (key !== "password" && key !== "previousPassword" && pulumi.Output.isInstance(value))
      throw new DredisError(
        ErrorCodes.CONFIG,
        `invalid DistributedRedis args:\n  - ${key}: must be a plain value known before the deployment (not a secret or another resource's output)`,
      );
    args[key] = value;
  }
  // Validated by DistributedRedis itself (parseClusterSpec), with the key named.
  return args as unknown as DistributedRedisArgs;
}

class DistributedRedisProvider implements pulumi.provider.Provider {
  readonly version = packageJson.version;

  async getSchema(): Promise<string> {
    return JSON.stringify(packageSchema());
  }

  async construct(
    name: string,
    type: string,
    inputs: pulumi.Inputs,
    options: pulumi.ComponentResourceOptions,
  ): Promise<pulumi.provider.ConstructResult> {
    if (type !== DISTRIBUTED_REDIS_TYPE)
      throw new DredisError(
        ErrorCodes.CONFIG,
        `unknown component type ${type}: this package offers only ${DISTRIBUTED_REDIS_TYPE}`,
      );
    const redis = new DistributedRedis(name, distributedRedisArgs(inputs), options);
    return {
      urn: redis.urn,
      state: {
        endpoint: redis.endpoint,
        endpointHost: redis.endpointHost,
        endpointPort: redis.endpointPort,
        proxyAddresses: redis.proxyAddresses,
        seedNodes: redis.seedNodes,
        password: redis.password,
        topology: redis.topology,
        topologyHash: redis.topologyHash,
        dockerNetwork: redis.dockerNetwork,
      },
    };
  }
}

/** Serves the provider to the engine: `args` are the plugin's arguments (the engine's address). */
export function serve(args: string[]): Promise<void> {
  return pulumi.provider.main(new DistributedRedisProvider(), args);
}
