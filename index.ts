/**
 * The example Pulumi program: one DistributedRedis configured by the stack's config
 * (stacks/Pulumi.<stack>.yaml). See docs/pulumi.md.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  createStack,
  parseStackConfig,
  projectConfig,
  shardTlsFromConfig,
  tlsFromConfig,
} from "./components/stack.ts";

const config = new pulumi.Config();
// Every key of the project is validated, so a misspelt key fails instead of being ignored.
const spec = parseStackConfig(projectConfig(pulumi.runtime.allConfig()));
const redis = createStack({
  name: config.get("name") ?? "redis",
  spec,
  password: config.getSecret("password"),
  // Set only while rotating the password (README, Day 2).
  previousPassword: config.getSecret("previousPassword"),
  // ACL users of the endpoint besides default (README, ACL users).
  users: config.getSecretObject<Record<string, string>>("users"),
  tls: tlsFromConfig(config),
  // TLS to the shards (README, TLS; docs/pulumi.md).
  shardTls: shardTlsFromConfig(config),
});

export const endpoint = redis.endpoint;
export const proxyAddresses = redis.proxyAddresses;
export const seedNodes = redis.seedNodes;
export const password = redis.password;
export const topology = redis.topology;
export const topologyHash = redis.topologyHash;
export const dockerNetwork = redis.dockerNetwork;
