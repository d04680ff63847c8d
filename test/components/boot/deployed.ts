/**
 * What a platform would deploy, captured from the components under Pulumi mocks (the uploads and
 * Secrets they declare), and the smallest rewrite that lets it run on this machine: shard seeds
 * become the test cluster's addresses, ports become free ones. Everything else is kept as rendered.
 *
 * Importing this module installs Pulumi mocks: one test file is one Pulumi runtime.
 */
import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import type { ClusterSpec } from "../../../components/plan/spec.ts";
import { PROXY_CONFIG_PATH } from "../../../components/plan/proxy-conf.ts";
import type { TestCluster } from "../../support/redis.ts";
import { installMocks, startRun, type Recorded } from "../support/mocks.ts";
import { stackSpec } from "../support/stack-config.ts";

installMocks();
const { createStack } = await import("../../../components/stack.ts");

const CONTAINER = "docker:index/container:Container";
const SECRET = "kubernetes:core/v1:Secret";

export interface Deployed {
  spec: ClusterSpec;
  resources: Recorded[];
  /** The content a container of that name gets uploaded at `file`. */
  upload(container: string, file: string): string;
  /** A Kubernetes Secret's `stringData[key]`. */
  secretData(secret: string, key: string): string;
}

/** Runs the whole `DistributedRedis` program of a stack (with overrides) under mocks. */
export async function deployStack(
  stack: "dev" | "staging" | "prod",
  overrides: Partial<ClusterSpec>,
  password: string,
): Promise<Deployed> {
  const spec = { ...stackSpec(stack), ...overrides } as ClusterSpec;
  const run = startRun();
  createStack({ name: "cache", spec, password }, run.opts);
  const resources = await run.settle();
  const named = (type: string, name: string) => {
    const found = resources.find((r) => r.type === type && r.name === name);
    assert.ok(found, `no ${type} named ${name}; have ${resources.map((r) => r.name).join(", ")}`);
    return found;
  };
  return {
    spec,
    resources,
    upload(container, file) {
      const uploads = named(CONTAINER, container).inputs["uploads"] as { file: string; content: string }[];
      const found = uploads.find((u) => u.file === file);
      assert.ok(found, `container ${container} uploads no ${file}`);
      return found.content;
    },
    secretData(secret, key) {
      const data = named(SECRET, secret).inputs["stringData"] as Record<string, string>;
      assert.ok(key in data, `secret ${secret} has no ${key}`);
      return data[key]!;
    },
  };
}

/** The proxy.yaml the Docker platform uploads into proxy container `index`. */
export function dockerProxyYaml(deployed: Deployed, index: number): string {
  return deployed.upload(`cache-proxy-${index}`, PROXY_CONFIG_PATH);
}

export interface HostRewrite {
  seeds: string[];
  port: number;
  adminPort: number;
  /** The address both ports listen on (a loopback address of its own per host), if not changed. */
  host?: string;
}

/**
 * Points a rendered proxy.yaml at this machine: seeds, listen.port and admin.port change, and
 * nothing else (asserted, so a rewrite can never hide what the platform renders).
 */
export function localizeProxyYaml(rendered: string, rewrite: HostRewrite): string {
  const doc = parse(rendered) as Record<string, unknown> & {
    listen: { port: number; host: string };
    admin: { port: number; host: string };
    seeds: string[];
  };
  const local = structuredClone(doc);
  local.seeds = rewrite.seeds;
  local.listen.port = rewrite.port;
  local.admin.port = rewrite.adminPort;
  if (rewrite.host !== undefined) local.listen.host = local.admin.host = rewrite.host;
  const text = stringify(local);
  const strip = (d: typeof doc) => ({
    ...d,
    seeds: [],
    listen: { ...d.listen, port: 0, host: "" },
    admin: { ...d.admin, port: 0, host: "" },
  });
  assert.deepEqual(strip(parse(text) as typeof doc), strip(doc), "the rewrite changed more than addresses");
  return text;
}

/**
 * Requires `password` on every node, as the shards' auth.conf does (requirepass + masterauth).
 * Set after the cluster formed, since the harness's readiness probe is an unauthenticated PING;
 * the harness's admin connections were authenticated before and stay usable.
 */
export async function requirePassword(cluster: TestCluster, password: string): Promise<void> {
  for (const node of cluster.nodes) {
    const client = cluster.connect(node);
    await client.config("SET", "masterauth", password);
    await client.config("SET", "requirepass", password);
  }
}
