/**
 * The local platform: the whole product as plain processes on this machine, for a first run,
 * for tests and for benchmarks. Shards are redis-server processes in cluster mode, the proxy is
 * one `dredis proxy` host, and everything about a running platform lives in one directory
 * (`--dir`, default `.dredis`): its state file, each node's data and logs, the proxy config.
 *
 * Processes are started detached and tracked by pid in the state file, so `up --detach`,
 * `status`, `scale` and `down` can be separate commands, run as an ordinary user.
 */
import { spawn } from "node:child_process";

import { mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { stringify as toYaml } from "yaml";
import { DredisError } from "../errors.ts";
import { applyTopology, type ProgressEvent } from "../cluster/admin/index.ts";
import type { Topology } from "../cluster/topology.ts";
import { renderShardNodeConf } from "../cluster/redis-conf.ts";
import { findRedisServer, waitForPong } from "./redis-server.ts";

export interface LocalNode {
  shard: string;
  port: number;
  dir: string;
  pid: number;
}

export interface LocalState {
  version: 1;
  host: string;
  proxy: { port: number; adminPort: number; pid: number; workers: number };
  replicas: number;
  nodes: LocalNode[];
}

export interface UpOptions {
  dir: string;
  shards: number;
  replicas: number;
  workers: number;
  port: number;
  /** First port tried for the shards' nodes (each also needs port + 10000 for the cluster bus). */
  basePort: number;
  onProgress?: (event: ProgressEvent) => void;
  log?: (line: string) => void;
}

const HOST = "127.0.0.1";
/** The installed `dredis` command (it loads tsx itself, wherever this package is installed). */
const DREDIS = fileURLToPath(new URL("../../bin/dredis.js", import.meta.url));

export function statePath(dir: string): string {
  return join(resolve(dir), "state.json");
}

export async function readState(dir: string): Promise<LocalState | undefined> {
  try {
    return JSON.parse(await readFile(statePath(dir), "utf8")) as LocalState;
  } catch {
    return undefined;
  }
}

async function writeState(dir: string, state: LocalState): Promise<void> {
  await writeFile(statePath(dir), JSON.stringify(state, null, 2) + "\n");
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The topology of the platform's nodes: node i of a shard is its master at creation, the rest its replicas. */
export function topologyOf(state: Pick<LocalState, "host" | "nodes">): Topology {
  const shards = new Map<string, string[]>();
  for (const node of state.nodes) {
    const list = shards.get(node.shard) ?? [];
    list.push(`${state.host}:${node.port}`);
    shards.set(node.shard, list);
  }
  return {
    shards: [...shards].map(([name, [master, ...replicas]]) => ({ name, master: master!, replicas })),
  };
}

/** Starts the shards, creates the cluster and starts a proxy host. Resolves once the proxy is ready. */
export async function up(options: UpOptions): Promise<LocalState> {
  const dir = resolve(options.dir);
  findRedisServer();
  const existing = await readState(dir);
  if (existing && (alive(existing.proxy.pid) || existing.nodes.some((n) => alive(n.pid)))) {
    throw new DredisError(
      "E_LOCAL_RUNNING",
      `a local platform is already running in ${dir} (proxy pid ${existing.proxy.pid}); ` +
        `see it with: dredis local status --dir ${options.dir}, or stop it with: dredis local down --dir ${options.dir}`,
    );
  }
  if (options.shards < 3) {
    throw new DredisError(
      "E_LOCAL_ARGS",
      `--shards must be at least 3 (Redis Cluster needs 3 masters), got ${options.shards}`,
    );
  }
  await mkdir(dir, { recursive: true });
  const log = options.log ?? (() => {});
  const state: LocalState = {
    version: 1,
    host: HOST,
    proxy: { port: options.port, adminPort: 0, pid: 0, workers: options.workers },
    replicas: options.replicas,
    nodes: existing?.nodes.map((n) => ({ ...n, pid: 0 })) ?? [],
  };
  try {
    await assertPortFree(options.port, "--port");
    if (state.nodes.length === 0) {
      log(`starting ${options.shards} shards x ${1 + options.replicas} redis-server processes`);
      await addNodes(dir, state, 0, options.shards, options.basePort);
    } else {
      log(`restarting the ${state.nodes.length} redis-server processes of ${dir}`);
      for (const node of state.nodes) node.pid = await startNode(node);
    }
    await writeState(dir, state);
    log("forming the cluster");
    await applyTopology(topologyOf(state), { onProgress: options.onProgress });
    log(`starting the proxy host (${options.workers} workers) on ${HOST}:${options.port}`);
    await startProxy(dir, state);
    await writeState(dir, state);
    return state;
  } catch (err) {
    await stopAll(state);
    await rm(statePath(dir), { force: true });
    throw err;
  }
}

/** Adds (or removes) shards online: new nodes join and slots move to them; removed shards are drained first, then stopped. */
export async function scale(
  dir: string,
  shards: number,
  options: { onProgress?: (e: ProgressEvent) => void; basePort?: number } = {},
): Promise<LocalState> {
  const state = await requireRunning(dir);
  const current = new Set(state.nodes.map((n) => n.shard)).size;
  if (shards < 3)
    throw new DredisError(
      "E_LOCAL_ARGS",
      `--shards must be at least 3 (Redis Cluster needs 3 masters), got ${shards}`,
    );
  if (shards === current) return state;
  if (shards > current) {
    await addNodes(
      resolve(dir),
      state,
      current,
      shards,
      options.basePort ?? Math.max(...state.nodes.map((n) => n.port)) + 1,
    );
    await writeState(dir, state);
    await applyTopology(topologyOf(state), { onProgress: options.onProgress });
    return state;
  }
  const keep = new Set(Array.from({ length: shards }, (_, i) => shardName(i)));
  const removed = state.nodes.filter((n) => !keep.has(n.shard));
  const remaining = { ...state, nodes: state.nodes.filter((n) => keep.has(n.shard)) };
  // Drain and forget first; only then stop the processes (nothing is stopped before its slots moved).
  await applyTopology(topologyOf(remaining), { onProgress: options.onProgress });
  for (const node of removed) await stopPid(node.pid);
  await writeState(dir, remaining);
  return remaining;
}

/** Stops the proxy host (it drains) and every node. Data stays in the directory for the next `up`. */
export async function down(dir: string): Promise<boolean> {
  const state = await readState(dir);
  if (!state) return false;
  await stopAll(state);
  await rm(statePath(dir), { force: true });
  return true;
}

export interface NodeStatus {
  shard: string;
  address: string;
  role: string;
  slots: number;
  keys: number;
  up: boolean;
}

export interface Status {
  endpoint: string;
  proxyReady: boolean;
  nodes: NodeStatus[];
}

export async function status(dir: string): Promise<Status> {
  const state = await requireRunning(dir);
  const nodes = await Promise.all(
    state.nodes.map(async (node): Promise<NodeStatus> => {
      const address = `${state.host}:${node.port}`;
      const client = new Redis({
        host: state.host,
        port: node.port,
        lazyConnect: true,
        connectTimeout: 1000,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on("error", () => {});
      try {
        await client.connect();
        const myself = String(await client.call("CLUSTER", "NODES"))
          .split("\n")
          .find((line) => line.includes("myself"))!
          .split(" ");
        const slots = myself.slice(8).reduce((sum, range) => {
          if (range.startsWith("[")) return sum;
          const [a, b] = range.split("-").map(Number);
          return sum + (b === undefined ? 1 : b - a! + 1);
        }, 0);
        return {
          shard: node.shard,
          address,
          role: myself[2]!.includes("master") ? "master" : "replica",
          slots,
          keys: Number(await client.dbsize()),
          up: true,
        };
      } catch {
        return { shard: node.shard, address, role: "down", slots: 0, keys: 0, up: false };
      } finally {
        client.disconnect();
      }
    }),
  );
  const ready = await fetch(`http://${state.host}:${state.proxy.adminPort}/readyz`)
    .then((r) => r.status === 200)
    .catch(() => false);
  return { endpoint: `${state.host}:${state.proxy.port}`, proxyReady: ready, nodes };
}

export function formatStatus(s: Status): string {
  const rows = [
    ["SHARD", "NODE", "ROLE", "SLOTS", "KEYS"],
    ...s.nodes.map((n) => [n.shard, n.address, n.role, String(n.slots), String(n.keys)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
  return `proxy ${s.endpoint} (${s.proxyReady ? "ready" : "NOT ready"})\n\n${table}\n`;
}

async function requireRunning(dir: string): Promise<LocalState> {
  const state = await readState(dir);
  if (!state || !alive(state.proxy.pid)) {
    throw new DredisError(
      "E_LOCAL_NOT_RUNNING",
      `no local platform is running in ${resolve(dir)}; start one with: dredis local up --dir ${dir}`,
    );
  }
  return state;
}

function shardName(index: number): string {
  return `shard-${index}`;
}

async function addNodes(
  dir: string,
  state: LocalState,
  from: number,
  to: number,
  basePort: number,
): Promise<void> {
  let port = basePort;
  for (let s = from; s < to; s++) {
    for (let r = 0; r <= state.replicas; r++) {
      port = await nextFreePortPair(port);
      const node: LocalNode = {
        shard: shardName(s),
        port,
        dir: join(dir, "nodes", `${shardName(s)}-${r}`),
        pid: 0,
      };
      await mkdir(node.dir, { recursive: true });
      await writeFile(
        join(node.dir, "redis.conf"),
        // The shard node's config the containers run, with a process's port, paths and addresses.
        renderShardNodeConf({
          bind: HOST,
          port,
          dir: node.dir,
          logfile: join(node.dir, "redis.log"),
          endpoints: "ip",
          persistence: "aof",
        }),
      );
      node.pid = await startNode(node);
      state.nodes.push(node);
      port++;
    }
  }
}

async function startNode(node: LocalNode): Promise<number> {
  const child = spawn(findRedisServer(), [join(node.dir, "redis.conf")], { detached: true, stdio: "ignore" });
  child.unref();
  await waitForPong(HOST, node.port, 15_000, () => child.exitCode !== null).catch(async (err) => {
    const tail = await readFile(join(node.dir, "redis.log"), "utf8").catch(() => "");
    throw new DredisError(
      "E_REDIS_START",
      `redis-server on port ${node.port} did not start: ${err.message}\n${tail.split("\n").slice(-10).join("\n")}`,
    );
  });
  return child.pid!;
}

async function startProxy(dir: string, state: LocalState): Promise<void> {
  state.proxy.adminPort = await nextFreePortPair(state.proxy.port + 1000, false);
  const configFile = join(dir, "proxy.yaml");
  await writeFile(
    configFile,
    toYaml({
      listen: { host: HOST, port: state.proxy.port },
      admin: { host: HOST, port: state.proxy.adminPort },
      seeds: state.nodes.slice(0, 3).map((n) => `${state.host}:${n.port}`),
      workers: state.proxy.workers,
      logLevel: "info",
    }),
  );
  const logFile = await open(join(dir, "proxy.log"), "a");
  const child = spawn(process.execPath, [DREDIS, "proxy", "--config", configFile], {
    detached: true,
    stdio: ["ignore", logFile.fd, logFile.fd],
  });
  child.unref();
  await logFile.close();
  state.proxy.pid = child.pid!;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const ready = await fetch(`http://${HOST}:${state.proxy.adminPort}/readyz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const logText = await readFile(join(dir, "proxy.log"), "utf8").catch(() => "");
  throw new DredisError(
    "E_PROXY_START",
    `the proxy host did not become ready; its log (${join(dir, "proxy.log")}) ends with:\n${logText.split("\n").slice(-10).join("\n")}`,
  );
}

async function stopAll(state: LocalState): Promise<void> {
  if (state.proxy.pid) await stopPid(state.proxy.pid, 15_000);
  await Promise.all(state.nodes.map((n) => (n.pid ? stopPid(n.pid) : undefined)));
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) process.kill(pid, "SIGKILL");
  while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
}

async function assertPortFree(port: number, flag: string): Promise<void> {
  if (!(await portFree(port))) {
    throw new DredisError(
      "E_PORT_IN_USE",
      `port ${port} (${flag}) is already in use on ${HOST}; pick another with ${flag} <port>`,
    );
  }
}

/** The first port from `from` that is free, and (for a cluster node) whose bus port (+10000) is free too. */
async function nextFreePortPair(from: number, withBus = true): Promise<number> {
  for (let port = from; port < 55_000; port++) {
    if ((await portFree(port)) && (!withBus || (await portFree(port + 10_000)))) return port;
  }
  throw new DredisError("E_NO_PORT", `no free port from ${from} upward on ${HOST}`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once("error", () => resolvePort(false));
    server.listen(port, HOST, () => server.close(() => resolvePort(true)));
  });
}
