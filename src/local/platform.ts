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

import { mkdir, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { stringify as toYaml } from "yaml";
import { DredisError, ErrorCodes } from "../errors.ts";
import { applyTopology, type ProgressEvent } from "../cluster/admin/index.ts";
import type { Topology } from "../cluster/topology.ts";
import { renderShardNodeConf } from "../cluster/redis-conf.ts";
import { freePorts } from "./ports.ts";
import { waitForPong } from "./redis-server.ts";
import { findServer, serverName, type Engine } from "./engine.ts";
import { writeNodeSettings } from "./node-settings.ts";
import { localClientTls, localNodeTls, localProxyTls, prepareLocalTls, type LocalTls } from "../tls/local.ts";
import type { ReadFromSetting } from "../proxy/upstream/read-from.ts";

export interface LocalNode {
  shard: string;
  port: number;
  dir: string;
  /** 0 while the platform is stopped. */
  pid: number;
}

export interface LocalState {
  version: 1;
  host: string;
  proxy: {
    port: number;
    adminPort: number;
    pid: number;
    workers: number;
    /** The proxy's `crossSlot` (unset: its default, refuse). */
    crossSlot?: "refuse" | "emulate";
    /** The proxy's `readFrom` (`up`/`set --read-from`; unset: its default, master). */
    readFrom?: ReadFromSetting;
  };
  replicas: number;
  nodes: LocalNode[];
  /** The password every node and the proxy's backend connections use; unset: none. */
  password?: string;
  /** During a rotation: the password being replaced, still accepted until it is dropped. */
  previousPassword?: string;
  /** redis.conf settings changed since creation (`local set`, `local roll --set`): every node gets them, new ones too. */
  settings?: Record<string, string>;
  /** The proxy's ACL users (`local up --users FILE`), name to rules; unset: the default user only. */
  users?: Record<string, string>;
  /** Set when the platform serves TLS only (`up --tls`, fixed at creation): where its certificates are. */
  tls?: LocalTls;
  /** The server the nodes run; unset: redis (state files from before engines). */
  engine?: Engine;
}

export interface UpOptions {
  dir: string;
  /** @default 3 for a new directory; an existing one restarts in its own shape */
  shards?: number;
  /** @default 1 for a new directory; an existing one restarts in its own shape */
  replicas?: number;
  workers: number;
  port: number;
  /** First port tried for the shards' nodes (each also needs port + 10000 for the cluster bus). */
  basePort: number;
  /** Password of every node (clients of the shards and replicas use it); the proxy authenticates with it. */
  password?: string;
  /** The proxy's ACL users, name to rules; @default the directory's own, else none */
  users?: Record<string, string>;
  /** The proxy's `crossSlot` setting. @default "refuse" */
  crossSlot?: "refuse" | "emulate";
  /** Where the proxy sends reads (`readFrom`). @default the directory's own, else "master" */
  readFrom?: ReadFromSetting;
  /** TLS only, everywhere: a local CA and certificates under `<dir>/tls/`, shards and proxy port TLS-only. Fixed at creation. */
  tls?: boolean;
  /** @default "redis" for a new directory; an existing one keeps its own */
  engine?: Engine;
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

export async function writeState(dir: string, state: LocalState): Promise<void> {
  // It may hold the password.
  await writeFile(statePath(dir), JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
}

export function alive(pid: number): boolean {
  // 0 is "stopped" in the state file (and kill(0) would signal our own process group).
  if (pid <= 0) return false;
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
  const existing = await readState(dir);
  const engine = engineToStart(dir, options.engine, existing);
  findServer(engine);
  if (existing && (alive(existing.proxy.pid) || existing.nodes.some((n) => alive(n.pid)))) {
    throw new DredisError(
      ErrorCodes.LOCAL_RUNNING,
      `a local platform is already running in ${dir} (proxy pid ${existing.proxy.pid}); ` +
        `see it with: dredis local status --dir ${options.dir}, or stop it with: dredis local down --dir ${options.dir}`,
    );
  }
  const shape = await shapeToStart(dir, options, existing);
  if (shape.shards < 3) {
    throw new DredisError(
      ErrorCodes.LOCAL_ARGS,
      `--shards must be at least 3 (Redis Cluster needs 3 masters), got ${shape.shards}`,
    );
  }
  await mkdir(dir, { recursive: true });
  const log = options.log ?? (() => {});
  const state: LocalState = {
    version: 1,
    host: HOST,
    proxy: {
      port: options.port,
      adminPort: 0,
      pid: 0,
      workers: options.workers,
      ...(options.crossSlot !== undefined ? { crossSlot: options.crossSlot } : {}),
      ...((options.readFrom ?? existing?.proxy.readFrom)
        ? { readFrom: options.readFrom ?? existing?.proxy.readFrom }
        : {}),
    },
    replicas: shape.replicas,
    nodes: existing?.nodes.map((n) => ({ ...n, pid: 0 })) ?? [],
    ...passwordFields(existing, options.password),
    ...(existing?.settings ? { settings: existing.settings } : {}),
    ...((options.users ?? existing?.users) ? { users: options.users ?? existing?.users } : {}),
    ...(await tlsField(dir, existing, options.tls)),
    ...(engine !== "redis" ? { engine } : {}),
  };
  try {
    await assertPortFree(options.port, "--port");
    if (state.nodes.length === 0) {
      log(`starting ${shape.shards} shards x ${1 + shape.replicas} ${serverName(engine)} processes`);
      await addNodes(dir, state, 0, shape.shards, options.basePort);
    } else {
      log(`restarting the ${state.nodes.length} ${serverName(engine)} processes of ${dir}`);
      for (const node of state.nodes) node.pid = await startNode(node, state);
    }
    await writeState(dir, state);
    log("forming the cluster");
    await applyTopology(topologyOf(state), {
      onProgress: options.onProgress,
      password: state.password,
      tls: localClientTls(state.tls),
    });
    log(`starting the proxy host (${options.workers} workers) on ${HOST}:${options.port}`);
    await startProxy(dir, state);
    await writeState(dir, state);
    return state;
  } catch (err) {
    await stopAll(state);
    await keepStopped(dir, state);
    throw err;
  }
}

/** The engine of a directory's nodes wins; asking for another one is refused before anything starts. */
function engineToStart(dir: string, wanted: Engine | undefined, existing: LocalState | undefined): Engine {
  if (!existing || existing.nodes.length === 0) return wanted ?? "redis";
  const current = existing.engine ?? "redis";
  if (wanted !== undefined && wanted !== current)
    throw new DredisError(
      ErrorCodes.LOCAL_ENGINE,
      `${dir} holds a cluster of ${serverName(current)} nodes; refusing to start them as ${serverName(wanted)} ` +
        `(nothing was changed). Start it as it is with --engine ${current}, or use another --dir for a ${wanted} cluster`,
    );
  return current;
}

/**
 * The shape to start. A directory's nodes keep their cluster identity (nodes.conf) and data: `up`
 * restarts them as they were, so a different shape is refused before anything changes (it would
 * form a cluster whose nodes.conf files name nodes that no longer exist).
 */
async function shapeToStart(
  dir: string,
  options: UpOptions,
  existing: LocalState | undefined,
): Promise<{ shards: number; replicas: number }> {
  const onDisk = existing
    ? { shards: new Set(existing.nodes.map((n) => n.shard)).size, replicas: existing.replicas }
    : await shapeOfNodeDirs(dir);
  const wanted = {
    shards: options.shards ?? onDisk?.shards ?? 3,
    replicas: options.replicas ?? onDisk?.replicas ?? 1,
  };
  if (!onDisk || onDisk.shards === 0) return wanted;
  if (existing && onDisk.shards === wanted.shards && onDisk.replicas === wanted.replicas) return wanted;
  const flags = `--dir ${dir}`;
  const what = existing
    ? `a cluster of ${onDisk.shards} shards x ${onDisk.replicas} replicas`
    : `the data of ${onDisk.shards} shards x ${onDisk.replicas} replicas but no state file`;
  const restart = existing
    ? `start it as it was: dredis local up ${flags} --shards ${onDisk.shards} --replicas ${onDisk.replicas}` +
      `, then change the number of shards online with: dredis local scale ${flags} --shards ${wanted.shards}` +
      ` (the number of replicas is fixed at creation)\n  - or `
    : "";
  throw new DredisError(
    ErrorCodes.LOCAL_SHAPE,
    `${dir} holds ${what}; refusing to start ${wanted.shards} shards x ${wanted.replicas} replicas over it (nothing was changed).\n` +
      `  - ${restart}start afresh, deleting its data: dredis local down ${flags} && rm -rf ${dir} && ` +
      `dredis local up ${flags} --shards ${wanted.shards} --replicas ${wanted.replicas}\n` +
      `  - or use another directory: dredis local up --dir <new-dir> --shards ${wanted.shards} --replicas ${wanted.replicas}`,
  );
}

/** Shards and replicas per shard from the node directories (`nodes/shard-S-R`), for a directory without a state file. */
async function shapeOfNodeDirs(dir: string): Promise<{ shards: number; replicas: number } | undefined> {
  const names = await readdir(join(dir, "nodes")).catch(() => [] as string[]);
  const perShard = new Map<string, number>();
  for (const name of names) {
    const match = /^(shard-\d+)-\d+$/.exec(name);
    if (match) perShard.set(match[1]!, (perShard.get(match[1]!) ?? 0) + 1);
  }
  if (perShard.size === 0) return undefined;
  return { shards: perShard.size, replicas: Math.max(...perShard.values()) - 1 };
}

/** The state after a stop: nodes keep their ports (nodes.conf names them), pids are 0. */
async function keepStopped(dir: string, state: LocalState): Promise<void> {
  if (state.nodes.length === 0) {
    await rm(statePath(dir), { force: true });
    return;
  }
  state.proxy.pid = 0;
  for (const node of state.nodes) node.pid = 0;
  await writeState(dir, state);
}

/** The state's TLS entry: a directory keeps how it was created; a new one gets certificates with `--tls`. */
async function tlsField(
  dir: string,
  existing: LocalState | undefined,
  tls: boolean | undefined,
): Promise<Pick<LocalState, "tls">> {
  if (existing && existing.nodes.length > 0) {
    if (tls !== undefined && tls !== (existing.tls !== undefined))
      throw new DredisError(
        ErrorCodes.LOCAL_ARGS,
        `the nodes in ${dir} were created ${existing.tls ? "with" : "without"} --tls, which is fixed at creation; ` +
          `start it as it was (${existing.tls ? "with" : "without"} --tls), or use another directory`,
      );
    return existing.tls ? { tls: existing.tls } : {};
  }
  return tls ? { tls: await prepareLocalTls(dir) } : {};
}

function passwordFields(
  existing: LocalState | undefined,
  password: string | undefined,
): Pick<LocalState, "password" | "previousPassword"> {
  if (existing && existing.nodes.length > 0) {
    if (password !== undefined && password !== existing.password)
      throw new DredisError(
        ErrorCodes.LOCAL_ARGS,
        "--password differs from the password of the nodes in this directory; change it live with: " +
          "dredis local set --password-file <file> (then --drop-previous-password)",
      );
    return { password: existing.password, previousPassword: existing.previousPassword };
  }
  return password !== undefined ? { password } : {};
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
      ErrorCodes.LOCAL_ARGS,
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
    await applyTopology(topologyOf(state), {
      onProgress: options.onProgress,
      password: state.password,
      tls: localClientTls(state.tls),
    });
    return state;
  }
  const keep = new Set(Array.from({ length: shards }, (_, i) => shardName(i)));
  const removed = state.nodes.filter((n) => !keep.has(n.shard));
  const remaining = { ...state, nodes: state.nodes.filter((n) => keep.has(n.shard)) };
  // Drain and forget first; only then stop the processes (nothing is stopped before its slots moved).
  await applyTopology(topologyOf(remaining), {
    onProgress: options.onProgress,
    password: state.password,
    tls: localClientTls(state.tls),
  });
  for (const node of removed) await stopPid(node.pid);
  await writeState(dir, remaining);
  return remaining;
}

/**
 * Stops the proxy host (it drains) and every node. Data and the state (the nodes' ports) stay in
 * the directory for the next `up`. Returns false when nothing was running.
 */
export async function down(dir: string): Promise<boolean> {
  const state = await readState(dir);
  if (!state) return false;
  const wasRunning = alive(state.proxy.pid) || state.nodes.some((n) => alive(n.pid));
  await stopAll(state);
  await keepStopped(resolve(dir), state);
  return wasRunning;
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
        password: state.password,
        tls: localClientTls(state.tls),
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

export async function requireRunning(dir: string): Promise<LocalState> {
  const state = await readState(dir);
  if (!state || !alive(state.proxy.pid)) {
    throw new DredisError(
      ErrorCodes.LOCAL_NOT_RUNNING,
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
          ...(state.tls ? { tls: localNodeTls(state.tls) } : {}),
        }),
      );
      node.pid = await startNode(node, state);
      state.nodes.push(node);
      port++;
    }
  }
}

/** Starts a node from its redis.conf, with the platform's password and changed settings written into it first. */
export async function startNode(node: LocalNode, state: LocalState): Promise<number> {
  await writeNodeSettings(join(node.dir, "redis.conf"), nodeSettings(state));
  const engine = state.engine ?? "redis";
  const child = spawn(findServer(engine), [join(node.dir, "redis.conf")], {
    detached: true,
    stdio: "ignore",
  });
  child.unref();
  await waitForPong(
    HOST,
    node.port,
    15_000,
    () => child.exitCode !== null,
    state.password,
    localClientTls(state.tls),
  ).catch(async (err) => {
    const tail = await readFile(join(node.dir, "redis.log"), "utf8").catch(() => "");
    throw new DredisError(
      ErrorCodes.REDIS_START,
      `${serverName(engine)} on port ${node.port} did not start: ${err.message}\n${tail.split("\n").slice(-10).join("\n")}`,
    );
  });
  return child.pid!;
}

/** What every node's redis.conf must say beyond its rendered base: the password and the settings changed since. */
export function nodeSettings(state: LocalState): Record<string, string> {
  return {
    ...(state.password !== undefined ? { requirepass: state.password, masterauth: state.password } : {}),
    ...state.settings,
  };
}

export function proxyConfigPath(dir: string): string {
  return join(resolve(dir), "proxy.yaml");
}

/** Writes the proxy host's config from the state (the host re-reads it on SIGHUP). */
export async function writeProxyConfig(dir: string, state: LocalState): Promise<void> {
  await writeFile(
    proxyConfigPath(dir),
    toYaml({
      listen: { host: HOST, port: state.proxy.port },
      admin: { host: HOST, port: state.proxy.adminPort },
      seeds: state.nodes.slice(0, 3).map((n) => `${state.host}:${n.port}`),
      workers: state.proxy.workers,
      ...(state.password !== undefined ? { backendAuth: { password: state.password } } : {}),
      ...(state.users !== undefined ? { users: state.users } : {}),
      ...(state.proxy.crossSlot !== undefined ? { crossSlot: state.proxy.crossSlot } : {}),
      ...(state.proxy.readFrom !== undefined ? { readFrom: state.proxy.readFrom } : {}),
      ...(state.tls ? localProxyTls(state.tls, state.proxy.port) : {}),
      logLevel: "info",
    }),
    { mode: 0o600 },
  );
}

async function startProxy(dir: string, state: LocalState): Promise<void> {
  // Any free port: a fixed offset from --port runs past 65535 for high ports.
  [state.proxy.adminPort] = (await freePorts(1, HOST)) as [number];
  const configFile = proxyConfigPath(dir);
  await writeProxyConfig(dir, state);
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
    ErrorCodes.PROXY_START,
    `the proxy host did not become ready; its log (${join(dir, "proxy.log")}) ends with:\n${logText.split("\n").slice(-10).join("\n")}`,
  );
}

async function stopAll(state: LocalState): Promise<void> {
  if (state.proxy.pid) await stopPid(state.proxy.pid, 15_000);
  await Promise.all(state.nodes.map((n) => (n.pid ? stopPid(n.pid) : undefined)));
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
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
      ErrorCodes.PORT_IN_USE,
      `port ${port} (${flag}) is already in use on ${HOST}; pick another with ${flag} <port>`,
    );
  }
}

/** Highest node port: its cluster bus port (+10000) must be a port too. */
export const MAX_NODE_PORT = 65_535 - 10_000;

/** The first port from `from` that is free and whose bus port (+10000) is free too. */
async function nextFreePortPair(from: number): Promise<number> {
  for (let port = from; port <= MAX_NODE_PORT; port++) {
    if ((await portFree(port)) && (await portFree(port + 10_000))) return port;
  }
  throw new DredisError(
    ErrorCodes.NO_PORT,
    `no free port pair (port and port+10000) from ${from} to ${MAX_NODE_PORT} on ${HOST}; pick a lower --base-port`,
  );
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once("error", () => resolvePort(false));
    server.listen(port, HOST, () => server.close(() => resolvePort(true)));
  });
}
