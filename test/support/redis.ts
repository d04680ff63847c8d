/**
 * Real redis-server processes for tests: a standalone server (the reference for "same reply")
 * and a Redis Cluster of N masters x R replicas, on free loopback ports in a temp dir.
 *
 * Every helper registers its cleanup with the calling test context (`t.after`), and redis-server.ts
 * SIGKILLs anything left when the test process exits, so a failing or throwing test leaks nothing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { after } from "node:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { RedisServer, type RedisConfig } from "../../src/local/redis-server.ts";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import { findServer, type Engine } from "../../src/local/engine.ts";

/**
 * The engine test servers run: DREDIS_TEST_ENGINE=valkey runs a suite on Valkey 9 (the binary
 * scripts/valkey/install.sh pins), anything else on Debian's redis-server.
 */
export function testEngine(): Engine {
  const wanted = process.env.DREDIS_TEST_ENGINE;
  if (wanted === undefined || wanted === "" || wanted === "redis") return "redis";
  if (wanted === "valkey") return "valkey";
  throw new Error(`DREDIS_TEST_ENGINE=${wanted}: expected redis or valkey`);
}

/** The server binary of an engine (default: the suite's engine). */
export function serverBinary(engine: Engine = testEngine()): string {
  return findServer(engine);
}

/** The part of node:test's TestContext (or the module-level `after`) the helpers need. */
export interface Cleanup {
  after(fn: () => Promise<void> | void): void;
}

/**
 * Cleanup for servers a whole test file shares (started in a module-level `before`): everything
 * registered runs, last first, once the file's tests are done, also when they fail.
 */
export function fileCleanup(): Cleanup {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  return { after: (fn) => void cleanups.push(fn) };
}

export const SLOTS = 16384;

export async function tempDir(prefix = "dredis-test-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function startStandalone(
  t: Cleanup,
  config: RedisConfig = {},
  engine: Engine = testEngine(),
): Promise<RedisServer> {
  const dir = await tempDir();
  // A cluster-enabled node without a cluster-port binds its bus at port + 10000: drawn by
  // freePorts, that can land in the ephemeral range, where an outgoing connection may take it
  // before redis-server binds (the node then fails to start; seen in CI on key-slot.test.ts).
  const clusterBusByDefault =
    [true, "yes"].includes(config["cluster-enabled"] as boolean | string) &&
    config["cluster-port"] === undefined;
  const [port] = clusterBusByDefault ? await freeNodePorts(1) : await freePorts(1);
  const server = await RedisServer.start({ port: port!, dir, config, binary: serverBinary(engine) });
  t.after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return server;
}

export interface TestCluster {
  dir: string;
  /** Every node, masters first: masters[i] is nodes[i]; replicas follow in master order. */
  nodes: RedisServer[];
  masters: RedisServer[];
  replicas: RedisServer[];
  /** "host:port" of every node, the seed list a proxy or cluster client needs. */
  seeds: string[];
  /** A standalone ioredis connection to a node; closed by the cluster's cleanup. */
  connect(node: RedisServer): Redis;
  /** Waits until every running node reports cluster_state:ok and all agree on the slot map. */
  waitStable(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  masters?: number;
  replicas?: number;
  /** Extra redis.conf directives for every node. */
  config?: RedisConfig;
  /** The server the nodes run. @default testEngine() */
  engine?: Engine;
}

/** Starts a Redis Cluster with slots spread evenly over the masters, each master with its replicas. */
export async function startCluster(t: Cleanup, options: ClusterOptions = {}): Promise<TestCluster> {
  const masterCount = options.masters ?? 3;
  const replicaCount = options.replicas ?? 1;
  const total = masterCount * (1 + replicaCount);
  const dir = await tempDir("dredis-cluster-");
  const ports = await freePorts(total * 2);
  const clients: Redis[] = [];
  const nodes: RedisServer[] = [];
  const binary = serverBinary(options.engine);

  const stop = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  t.after(stop);

  for (let i = 0; i < total; i++) {
    nodes.push(
      await RedisServer.start({
        port: ports[i]!,
        dir: join(dir, `node-${i}`),
        binary,
        config: {
          "cluster-enabled": true,
          "cluster-config-file": "nodes.conf",
          "cluster-port": ports[total + i]!,
          "cluster-node-timeout": 2000,
          ...options.config,
        },
      }),
    );
  }
  const connect = (node: RedisServer): Redis => {
    const client = new Redis({
      host: node.host,
      port: node.port,
      lazyConnect: false,
      maxRetriesPerRequest: 1,
    });
    client.on("error", () => {});
    clients.push(client);
    return client;
  };
  const admin = nodes.map(connect);
  const masters = nodes.slice(0, masterCount);
  const replicas = nodes.slice(masterCount);

  for (let m = 0; m < masterCount; m++) {
    const first = Math.floor((m * SLOTS) / masterCount);
    const last = Math.floor(((m + 1) * SLOTS) / masterCount) - 1;
    await admin[m]!.call("CLUSTER", "ADDSLOTSRANGE", first, last);
  }
  for (let i = 1; i < total; i++) {
    await admin[i]!.call("CLUSTER", "MEET", nodes[0]!.host, nodes[0]!.port, ports[total]!);
  }
  await until(
    async () => {
      for (const a of admin) {
        const known = String(await a.call("CLUSTER", "NODES"))
          .trim()
          .split("\n").length;
        if (known < total) return false;
      }
      return true;
    },
    15_000,
    "every node to know every other node",
  );

  const masterIds = await Promise.all(admin.slice(0, masterCount).map((a) => a.call("CLUSTER", "MYID")));
  for (let r = 0; r < replicas.length; r++) {
    const masterIndex = r % masterCount;
    // A replica must have seen its master's node entry before REPLICATE: retry until it has.
    await until(
      async () => {
        try {
          await admin[masterCount + r]!.call("CLUSTER", "REPLICATE", String(masterIds[masterIndex]));
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      `replica ${r} to attach to master ${masterIndex}`,
    );
  }

  const cluster: TestCluster = {
    dir,
    nodes,
    masters,
    replicas,
    seeds: nodes.map((n) => n.address),
    connect,
    stop,
    waitStable: (timeoutMs = 60_000) =>
      until(
        () =>
          clusterIsStable(
            nodes.filter((n) => n.running),
            admin,
            masterCount,
          ),
        timeoutMs,
        "the cluster to be stable",
      ),
  };
  await cluster.waitStable();
  return cluster;
}

async function clusterIsStable(
  running: RedisServer[],
  admin: Redis[],
  masterCount: number,
): Promise<boolean> {
  const runningPorts = new Set(running.map((n) => String(n.port)));
  let reference: string | undefined;
  for (const node of running) {
    const client = admin.find((a) => a.options.port === node.port)!;
    const info = String(await client.call("CLUSTER", "INFO"));
    if (!info.includes("cluster_state:ok")) return false;
    const entries = String(await client.call("CLUSTER", "NODES"))
      .trim()
      .split("\n")
      .map((line) => line.split(" "));
    // Entries of nodes that are running must be healthy; stopped nodes may linger as failed.
    const live = entries.filter((f) => runningPorts.has(f[1]!.split("@")[0]!.split(":").pop()!));
    if (live.length !== running.length) return false;
    if (live.some((f) => /fail|handshake|noaddr/.test(f[2]!))) return false;
    if (entries.some((f) => f.slice(8).some((slot) => slot.startsWith("[")))) return false;
    const owners = live.filter((f) => f[2]!.includes("master") && f.length > 8);
    if (owners.length !== masterCount) return false;
    if (live.filter((f) => f[2]!.includes("slave")).length !== running.length - masterCount) return false;
    // A replica that never finished its first sync cannot take over (its data counts as too old).
    const myself = live.find((f) => f[2]!.includes("myself"))!;
    if (myself[2]!.includes("slave")) {
      const replication = String(await client.call("INFO", "replication"));
      if (!replication.includes("master_link_status:up")) return false;
    }
    // Every node agrees on which node (by id) owns which slots.
    const view = owners
      .map((f) => `${f[0]} ${f.slice(8).join(",")}`)
      .sort()
      .join("|");
    if (reference === undefined) reference = view;
    else if (view !== reference) return false;
  }
  return true;
}

/** Polls `check` until it returns true, or throws naming what was awaited. */
export async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
}
