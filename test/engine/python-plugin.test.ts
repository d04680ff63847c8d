/**
 * The component plugin that `pulumi package add` runs, without the engine: each defect it had
 * keeps a test here (python.test.ts runs it all under the engine).
 * - PulumiPlugin.yaml named its entry with `main:`, a field the engine's PluginProject does not
 *   have; the Node host runs @pulumi/pulumi's run-plugin, which does require(<package folder>).
 * - package.json had no "main", so that require fell back to a missing index.js.
 * - run-plugin gets PulumiPlugin.yaml's `nodeargs` after its own path, so `--import tsx` never
 *   reached node: the entry loads tsx itself.
 * - @pulumi/pulumi's componentProviderHost refuses union-typed args (every choice of
 *   DistributedRedisArgs is one): components/provider.ts makes the schema from the zod shape.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { DISTRIBUTED_REDIS_TYPE, distributedRedisArgs, packageSchema } from "../../components/provider.ts";
import { clusterSpecShape } from "../../components/plan/spec.ts";
import { DredisError } from "../../src/errors.ts";
import { REPO } from "./support/engine.ts";

test("PulumiPlugin.yaml says only what the engine reads: the runtime", () => {
  const plugin = parse(readFileSync(join(REPO, "PulumiPlugin.yaml"), "utf8")) as Record<string, unknown>;
  assert.deepEqual(plugin, { runtime: "nodejs" });
});

test("require(<package folder>), as run-plugin does, gives the function that serves the provider", () => {
  // Plain node, as run-plugin runs: under tsx (this test's own loader) a folder resolves to index.ts.
  const probe = "const entry = require.resolve(process.argv[1]); console.log(entry, typeof require(entry));";
  const env = { ...process.env };
  delete env["NODE_OPTIONS"];
  const out = execFileSync(process.execPath, ["-e", probe, REPO], { env, encoding: "utf8" });
  // run-plugin calls an exported function; exported component classes would send it to the analyzer.
  assert.equal(out.trim(), `${join(REPO, "components/plugin.cjs")} function`);
});

test("run-plugin starts the provider with no tsx flag given to node", async () => {
  const runPlugin = join(REPO, "node_modules/@pulumi/pulumi/cmd/run-plugin");
  const env = { ...process.env };
  delete env["NODE_OPTIONS"]; // the test runner's own --import tsx must not help
  const child = spawn(process.execPath, [runPlugin, REPO], {
    cwd: REPO,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  try {
    // A provider's first line of output is the port it serves on; a failure exits instead.
    const first = await Promise.race([
      new Promise<string>((resolve) => createInterface({ input: child.stdout }).once("line", resolve)),
      exited.then((code) => `exited ${code}`),
    ]);
    assert.match(first, /^\d+$/, `the plugin printed its port (stderr: ${stderr})`);
  } finally {
    child.kill();
    await exited;
  }
});

test("the schema offers DistributedRedis with every key of its args, and the passwords as secrets", () => {
  const schema = packageSchema() as {
    name: string;
    resources: Record<
      string,
      {
        isComponent: boolean;
        inputProperties: Record<string, { type: string; secret?: boolean; description: string }>;
        requiredInputs: string[];
      }
    >;
  };
  assert.equal(schema.name, "distributed-redis");
  assert.deepEqual(Object.keys(schema.resources), [DISTRIBUTED_REDIS_TYPE]);
  const component = schema.resources[DISTRIBUTED_REDIS_TYPE]!;
  assert.equal(component.isComponent, true);
  assert.deepEqual(
    Object.keys(component.inputProperties).sort(),
    [
      ...Object.keys(clusterSpecShape.shape),
      "password",
      "previousPassword",
      "users",
      "tls",
      "shardTls",
    ].sort(),
  );
  assert.deepEqual(component.requiredInputs.sort(), ["password", "platform"]);
  assert.equal(component.inputProperties["shards"]!.type, "integer");
  assert.equal(component.inputProperties["password"]!.secret, true);
  assert.equal(component.inputProperties["previousPassword"]!.secret, true);
  assert.match(
    component.inputProperties["persistence"]!.description,
    /one of "aof", "rdb", "none"; default "aof"/,
  );
  assert.match(component.inputProperties["shards"]!.description, /at least 3; at most 128; default 3/);
});

test("construct's args: the passwords may be outputs, any other key must be a plain value", async () => {
  const password = pulumi.secret("p");
  const args = await distributedRedisArgs({
    platform: "kubernetes",
    shards: 4,
    password,
    previousPassword: undefined,
  });
  assert.deepEqual(Object.keys(args), ["platform", "shards", "password"]);
  assert.equal(args.password, password);
  await assert.rejects(
    distributedRedisArgs({ platform: "kubernetes", shards: pulumi.output(4), password }),
    (err: unknown) =>
      err instanceof DredisError &&
      err.message ===
        "invalid DistributedRedis args:\n  - shards: must be a plain value known before the deployment (not a secret or another resource's output)",
  );
});

test("the schema offers tls, shardTls and users as the TypeScript args have them, keys and certificates secret", () => {
  type Property = {
    type?: string;
    $ref?: string;
    secret?: boolean;
    additionalProperties?: { type: string };
    description: string;
  };
  const schema = packageSchema() as {
    types: Record<string, { type: string; properties: Record<string, Property> }>;
    resources: Record<string, { inputProperties: Record<string, Property> }>;
  };
  const inputs = schema.resources[DISTRIBUTED_REDIS_TYPE]!.inputProperties;
  assert.deepEqual(inputs["users"], {
    type: "object",
    additionalProperties: { type: "string" },
    secret: true,
    description: inputs["users"]!.description,
  });
  const typeOf = (p: Property) => schema.types[p.$ref!.replace("#/types/", "")]!;
  // Every field the TypeScript args have (components/tls.ts, components/shard-tls.ts).
  const tls = typeOf(inputs["tls"]!);
  assert.deepEqual(Object.keys(tls.properties).sort(), [
    "certificate",
    "clientCa",
    "minVersion",
    "privateKey",
    "secretName",
    "verifyClients",
  ]);
  assert.equal(tls.properties["verifyClients"]!.type, "boolean");
  const shardTls = typeOf(inputs["shardTls"]!);
  assert.deepEqual(Object.keys(shardTls.properties).sort(), [
    "ca",
    "certificate",
    "issuerRef",
    "privateKey",
    "secretName",
    "serverName",
  ]);
  assert.deepEqual(Object.keys(typeOf(shardTls.properties["issuerRef"]!).properties).sort(), [
    "group",
    "kind",
    "name",
  ]);
  for (const type of [tls, shardTls]) {
    assert.equal(type.properties["privateKey"]!.secret, true);
    assert.equal(type.properties["certificate"]!.secret, true);
  }
});

test("construct's args: tls and shardTls with secret fields (one secret output from the engine) are unwrapped, keys kept secret; users stay an output", async () => {
  const users = pulumi.secret({ app: "on #abc ~app:* +@read" });
  const shardTls = pulumi.secret({ secretName: "redis-shard-tls", issuerRef: { name: "ca" } });
  const tls = pulumi.secret({ certificate: "CERT", privateKey: "KEY", verifyClients: true, clientCa: "CA" });
  const args = await distributedRedisArgs({ platform: "docker", password: "p", users, tls, shardTls });
  assert.equal(args.users, users);
  assert.deepEqual(args.shardTls, { secretName: "redis-shard-tls", issuerRef: { name: "ca" } });
  const given = args.tls!;
  assert.equal(given.verifyClients, true);
  assert.equal(given.clientCa, "CA");
  for (const [field, value] of [
    ["certificate", "CERT"],
    ["privateKey", "KEY"],
  ] as const) {
    const output = given[field] as pulumi.Output<string>;
    assert.ok(pulumi.Output.isInstance(output), field);
    const inside = output as unknown as { isSecret: Promise<boolean>; promise(): Promise<unknown> };
    assert.equal(await inside.isSecret, true, `${field} stays a secret`);
    assert.equal(await inside.promise(), value);
  }
  // Not known before the deployment: refused with the key named.
  const unknown = pulumi.output(pulumi.unknown);
  await assert.rejects(
    distributedRedisArgs({ platform: "docker", password: "p", shardTls: unknown }),
    /^DredisError: invalid DistributedRedis args:\n {2}- shardTls: must be a plain value known before the deployment/,
  );
});
