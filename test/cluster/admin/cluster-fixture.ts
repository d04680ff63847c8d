/**
 * Test fixtures for cluster administration: empty cluster-mode nodes, topologies over them,
 * a keyspace written and verified through a real cluster client, and redis-cli's own check.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster, type Redis } from "ioredis";
import { RedisServer } from "../../../src/local/redis-server.ts";
import { freePorts } from "../../../src/local/ports.ts";
import type { Topology } from "../../../src/cluster/topology.ts";
import type { Engine } from "../../../src/cluster/engine.ts";
import { serverBinary, tempDir, type Cleanup } from "../../support/redis.ts";
import { dredisLaunch, proxyClient } from "../../support/proxy.ts";

const run = promisify(execFile);

/**
 * Starts `count` empty cluster-mode nodes (no slots, knowing only themselves) of `engine` (the
 * suite's engine unless given), with `config` added to each node's.
 */
export async function startEmptyNodes(
  t: Cleanup,
  count: number,
  engine?: Engine,
  config: Record<string, string | number | boolean> = {},
): Promise<RedisServer[]> {
  const dir = await tempDir("dredis-admin-");
  const ports = await freePorts(count * 2);
  const binary = serverBinary(engine);
  const nodes: RedisServer[] = [];
  t.after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < count; i++)
    nodes.push(
      await RedisServer.start({
        port: ports[i]!,
        dir: join(dir, `node-${ports[i]}`),
        binary,
        config: {
          "cluster-enabled": true,
          "cluster-config-file": "nodes.conf",
          "cluster-port": ports[count + i]!,
          "cluster-node-timeout": 2000,
          ...config,
        },
      }),
    );
  return nodes;
}

/** Shards of one master and `replicas` replicas, taken in order from `nodes`. */
export function topologyOf(nodes: RedisServer[], shards: number, replicas = 1): Topology {
  return {
    shards: Array.from({ length: shards }, (_, i) => ({
      name: `shard-${i}`,
      master: nodes[i * (1 + replicas)]!.address,
      replicas: nodes.slice(i * (1 + replicas) + 1, (i + 1) * (1 + replicas)).map((n) => n.address),
    })),
  };
}

export function clusterClient(t: Cleanup, topology: Topology, password?: string): Cluster {
  const client = new Cluster(
    topology.shards.map((s) => {
      const [host, port] = s.master.split(":");
      return { host: host!, port: Number(port) };
    }),
    { enableReadyCheck: true, redisOptions: { maxRetriesPerRequest: 20, password }, maxRedirections: 50 },
  );
  client.on("error", () => {});
  t.after(() => void client.disconnect());
  return client;
}

/** One admin connection per node address ("host:port"), made on first use and closed by `t`. */
export function adminConnections(t: Cleanup): (address: string) => Redis {
  const connections = new Map<string, Redis>();
  return (address) => {
    let connection = connections.get(address);
    if (connection === undefined) {
      connection = proxyClient(t, Number(address.split(":")[1]), { maxRetriesPerRequest: 1 });
      connections.set(address, connection);
    }
    return connection;
  };
}

export const valueOf = (i: number): string => `value-${i}-${"x".repeat(i % 50)}`;
export const keyOf = (i: number): string => (i % 10 === 0 ? `{tag${i % 7}}:key:${i}` : `key:${i}`);

/** Writes keys 0..count-1 through the cluster client (pipelined per node by ioredis). */
export async function writeKeys(client: Cluster, count: number): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, count - start) }, (_, j) =>
        client.set(keyOf(start + j), valueOf(start + j)),
      ),
    );
  }
}

/** Reads every key back; returns the indexes whose value is missing or wrong. */
export async function wrongKeys(client: Cluster, count: number): Promise<number[]> {
  const wrong: number[] = [];
  for (let start = 0; start < count; start += 1000) {
    const values = await readBatch(client, start, Math.min(1000, count - start));
    values.forEach((v, j) => {
      if (v !== valueOf(start + j)) wrong.push(start + j);
    });
  }
  return wrong;
}

/**
 * Reads keys start..start+n-1. When ioredis refreshes its slot map after shards were removed, it
 * drops its connection to a removed node, failing reads in flight there with "Connection is
 * closed": that is the client's churn, not the data's, so such a batch is read again.
 */
async function readBatch(client: Cluster, start: number, n: number): Promise<(string | null)[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await Promise.all(Array.from({ length: n }, (_, j) => client.get(keyOf(start + j))));
    } catch (err) {
      if (attempt >= 5 || !/Connection is closed/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** `redis-cli --cluster check`: returns its output; throws (with the output) when it reports errors. */
export async function redisCliCheck(address: string): Promise<string> {
  const { stdout } = await run("redis-cli", ["--cluster", "check", address]);
  if (/\[ERR\]|\[WARNING\]/.test(stdout)) throw new Error(`redis-cli --cluster check failed:\n${stdout}`);
  return stdout;
}

const repoRoot = new URL("../../../", import.meta.url).pathname;

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `dredis cluster <args>` as a child process; `onStderrLine` may kill it. */
export function runCli(
  args: string[],
  onStderrLine?: (line: string, child: ChildProcess) => void,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...dredisLaunch.argv, "cluster", ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...dredisLaunch.env },
    });
    let stdout = "";
    let stderr = "";
    let partial = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      partial += chunk.toString();
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) onStderrLine?.(line, child);
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
