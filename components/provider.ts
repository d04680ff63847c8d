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
  type?: string;
  $ref?: string;
  description: string;
  default?: unknown;
  secret?: boolean;
  items?: { type: string };
  additionalProperties?: { type: string };
}

const PROXY_TLS_TYPE = `${PACKAGE_NAME}:index:ProxyTls`;
const SHARD_TLS_TYPE = `${PACKAGE_NAME}:index:ShardTls`;
const ISSUER_REF_TYPE = `${PACKAGE_NAME}:index:ShardTlsIssuerRef`;

/**
 * The object args (components/tls.ts, components/shard-tls.ts) as schema types. Their rules
 * (which fields go together, per platform) are DistributedRedis's own, checked when it is
 * constructed, with the key named as for a TypeScript program.
 */
const OBJECT_TYPES: Record<
  string,
  { type: "object"; description: string; properties: Record<string, PropertySpec> }
> = {
  [PROXY_TLS_TYPE]: {
    type: "object",
    description: "`tls` of DistributedRedisArgs (components/tls.ts): TLS between clients and the proxies.",
    properties: {
      certificate: {
        type: "string",
        secret: true,
        description: "Docker: the proxies' certificate chain (PEM).",
      },
      privateKey: {
        type: "string",
        secret: true,
        description: "Docker: the certificate's private key (PEM).",
      },
      clientCa: {
        type: "string",
        description: "Docker, with `verifyClients`: the CA (PEM) of client certificates.",
      },
      secretName: {
        type: "string",
        description:
          "Kubernetes: a kubernetes.io/tls Secret in the namespace (`tls.crt`, `tls.key`, `ca.crt`).",
      },
      verifyClients: {
        type: "boolean",
        description: "Clients must present a certificate signed by the client CA: default false.",
      },
      minVersion: {
        type: "string",
        description: 'Lowest TLS version accepted: one of "TLSv1.2", "TLSv1.3"; default "TLSv1.2".',
      },
    },
  },
  [SHARD_TLS_TYPE]: {
    type: "object",
    description:
      "`shardTls` of DistributedRedisArgs (components/shard-tls.ts): TLS-only shard nodes; new deployments only.",
    properties: {
      ca: { type: "string", description: "Docker: the CA (PEM) that signed `certificate`." },
      certificate: {
        type: "string",
        secret: true,
        description: "Docker: the nodes' certificate (PEM), with serverAuth and clientAuth usages.",
      },
      privateKey: {
        type: "string",
        secret: true,
        description: "Docker: the certificate's private key (PEM).",
      },
      secretName: {
        type: "string",
        description:
          "Kubernetes: a Secret with `tls.crt`, `tls.key` and `ca.crt`; with `issuerRef`, the one it fills.",
      },
      issuerRef: {
        $ref: `#/types/${ISSUER_REF_TYPE}`,
        description: "Kubernetes: a cert-manager issuer for a Certificate.",
      },
      serverName: {
        type: "string",
        description: "The name the certificate carries, checked and sent as SNI.",
      },
    },
  },
  [ISSUER_REF_TYPE]: {
    type: "object",
    description: "`shardTls.issuerRef` of DistributedRedisArgs: a cert-manager issuer.",
    properties: {
      name: { type: "string", description: "The issuer's name." },
      kind: { type: "string", description: 'One of "Issuer", "ClusterIssuer"; default "Issuer".' },
      group: { type: "string", description: 'Default "cert-manager.io".' },
    },
  },
};

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
  inputProperties["users"] = {
    type: "object",
    additionalProperties: { type: "string" },
    secret: true,
    description:
      "ACL users of the endpoint besides `default`: name to Redis ACL rules (passwords as #<sha256>), e.g. " +
      '{"app": "on #<sha256> ~app:* +@read +@write"}.',
  };
  inputProperties["tls"] = {
    $ref: `#/types/${PROXY_TLS_TYPE}`,
    description: OBJECT_TYPES[PROXY_TLS_TYPE]!.description,
  };
  inputProperties["shardTls"] = {
    $ref: `#/types/${SHARD_TLS_TYPE}`,
    description: OBJECT_TYPES[SHARD_TLS_TYPE]!.description,
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
    types: OBJECT_TYPES,
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

/** Args that may stay outputs (secrets): DistributedRedis takes them as `pulumi.Input`. */
const OUTPUT_ARGS = new Set(["password", "previousPassword", "users"]);
/**
 * Object args whose fields may be secrets. The engine cannot mark a field secret, so a secret
 * field makes the whole object arrive as one secret output; it is unwrapped here (DistributedRedis
 * reads `secretName`, `issuerRef` ... at preview) and these fields made secrets again.
 */
const SECRET_FIELDS: Record<string, readonly string[]> = {
  tls: ["certificate", "privateKey"],
  shardTls: ["certificate", "privateKey"],
};

/** The inside of an output the engine handed us (the SDK's own fields, not in its typings). */
interface OutputInside {
  isKnown: Promise<boolean>;
  isSecret: Promise<boolean>;
  promise(): Promise<unknown>;
}

function notPlain(key: string): DredisError {
  return new DredisError(
    ErrorCodes.CONFIG,
    `invalid DistributedRedis args:\n  - ${key}: must be a plain value known before the deployment (not a secret or another resource's output)`,
  );
}

/**
 * The args as DistributedRedis takes them. Everything but the passwords and the users decides the
 * topology at preview, so it must be a plain value (`tls` and `shardTls` may hold secrets); the
 * passwords and the users stay outputs (secrets).
 */
export async function distributedRedisArgs(inputs: pulumi.Inputs): Promise<DistributedRedisArgs> {
  const args: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(inputs)) {
    if (value === undefined || value === null) continue;
    if (OUTPUT_ARGS.has(key) || !pulumi.Output.isInstance(value)) {
      args[key] = value;
      continue;
    }
    const secretFields = SECRET_FIELDS[key];
    const inside = value as unknown as OutputInside;
    if (secretFields === undefined || !(await inside.isKnown)) throw notPlain(key);
    const object = await inside.promise();
    if (typeof object !== "object" || object === null || Array.isArray(object)) {
      args[key] = object; // DistributedRedis refuses it, with the key named
      continue;
    }
    const secret = await inside.isSecret;
    const fields: Record<string, unknown> = { ...(object as Record<string, unknown>) };
    for (const field of secretFields)
      if (secret && typeof fields[field] === "string") fields[field] = pulumi.secret(fields[field] as string);
    args[key] = fields;
  }
  // Validated by DistributedRedis itself (parseClusterSpec, parseShardTls, ...), with the key named.
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
    const redis = new DistributedRedis(name, await distributedRedisArgs(inputs), options);
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
