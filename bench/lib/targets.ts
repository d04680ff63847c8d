/**
 * The systems under test, started as real processes on free loopback ports:
 * a single redis-server, a 3-master Redis Cluster (reached directly or through our proxy host),
 * and twemproxy over three standalone redis-servers.
 */
import { execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { freePorts } from "../../src/local/ports.ts";
import { createConnection } from "node:net";
import { RedisServer } from "../../src/local/redis-server.ts";
import { startCluster, type TestCluster } from "../../test/support/redis.ts";
import type { CounterSource } from "./counters.ts";
import { processTree, spawnTracked, stopChild } from "./procs.ts";

export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), "../../..");

const builds = new Map<string, Promise<void>>();

/** Builds dist/ from a checkout's sources (this one by default), once per benchmark process. */
export function ensureCompiled(root = REPO_ROOT): Promise<void> {
  let built = builds.get(root);
  if (built === undefined) {
    built = new Promise((resolve, reject) =>
      execFile(
        join(REPO_ROOT, "node_modules", ".bin", "tsc"),
        ["-p", "tsconfig.build.json"],
        { cwd: root },
        (err, stdout, stderr) =>
          err ? reject(new Error(`npm run build failed in ${root}:\n${stdout}${stderr}`)) : resolve(),
      ),
    );
    builds.set(root, built);
  }
  return built;
}

export interface Target {
  /** Short id used in JSON and as a column key. */
  id: string;
  /** Human label for tables and the chart. */
  label: string;
  port: number;
  /** Reach it with `redis-benchmark --cluster` (cluster-aware client). */
  cluster: boolean;
  /** Reach it with `redis-benchmark --tls` and these PEM files. */
  tls?: { ca: string; cert: string; key: string };
  /** PIDs of the proxy's whole process tree (none for direct targets). */
  proxyPids(): number[];
  /** PIDs of the redis-servers that serve this target's data. */
  serverPids(): number[];
  /** Those redis-servers, for the harness's command counters (lib/counters.ts). */
  counterSources(): CounterSource[];
}

/** Collects cleanup functions and runs them in reverse order. */
export class Cleanups {
  private readonly fns: (() => Promise<void> | void)[] = [];
  after(fn: () => Promise<void> | void): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    while (this.fns.length) {
      const fn = this.fns.pop()!;
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup failed: ${(err as Error).message}`);
      }
    }
  }
}

export async function benchDir(cleanups: Cleanups, prefix = "dredis-bench-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function startSingle(cleanups: Cleanups, dir: string, name: string): Promise<RedisServer> {
  const [port] = await freePorts(1);
  const server = await RedisServer.start({ port: port!, dir: join(dir, name) });
  cleanups.after(() => server.stop());
  return server;
}

export async function startBenchCluster(cleanups: Cleanups): Promise<TestCluster> {
  return startCluster(cleanups, { masters: 3, replicas: 0 });
}

export interface ProxyHost {
  port: number;
  adminPort: number;
  child: ChildProcess;
  pids(): number[];
  stop(): Promise<void>;
}

/** Starts `dredis proxy` as its own process group; ready once /readyz answers 200. */
export async function startProxyHost(
  cleanups: Cleanups,
  dir: string,
  seeds: string[],
  workers: number,
  options: {
    env?: NodeJS.ProcessEnv;
    config?: Record<string, unknown>;
    nodeArgs?: string[];
    /** Run the TypeScript sources through tsx instead of the compiled build in dist/. */
    fromSources?: boolean;
    /** The checkout whose build runs (bench/ab.ts compares two); this one by default. */
    root?: string;
    /** Run this script instead (an esbuild bundle of src/cli/main.ts, as the image runs). */
    entry?: string;
  } = {},
): Promise<ProxyHost> {
  const root = options.root ?? REPO_ROOT;
  if (!options.fromSources && options.entry === undefined) await ensureCompiled(root);
  const [port, adminPort] = await freePorts(2);
  const file = join(dir, `proxy-${port}.yaml`);
  await writeFile(
    file,
    stringify({
      seeds,
      listen: { host: "127.0.0.1", port },
      workers,
      admin: { host: "127.0.0.1", port: adminPort },
      logLevel: "warn",
      ...options.config,
    }),
  );
  const child = spawnTracked(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      ...(options.fromSources
        ? ["--import", "tsx", "src/cli/main.ts"]
        : [options.entry ?? join(root, "dist", "cli", "main.js")]),
      ...["proxy", "--config", file],
    ],
    {
      cwd: root,
      detached: true,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "inherit", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const stop = () => stopChild(child, "SIGTERM", 15_000, { detached: true });
  cleanups.after(stop);
  const deadline = Date.now() + 60_000;
  while (true) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`proxy host exited before it was ready:\n${stderr}`);
    if (Date.now() > deadline) throw new Error(`proxy host not ready within 60 s:\n${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${adminPort}/readyz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port: port!, adminPort: adminPort!, child, pids: () => processTree(child.pid!), stop };
}

export interface Twemproxy {
  port: number;
  child: ChildProcess;
  servers: RedisServer[];
}

/** nutcracker over three standalone redis-servers: fnv1a_64 + ketama, one server connection each. */
export async function startTwemproxy(cleanups: Cleanups, dir: string): Promise<Twemproxy> {
  const servers: RedisServer[] = [];
  for (let i = 0; i < 3; i++) servers.push(await startSingle(cleanups, dir, `twem-redis-${i}`));
  const [port, statsPort] = await freePorts(2);
  const conf = join(dir, "nutcracker.yml");
  await writeFile(
    conf,
    stringify({
      bench: {
        listen: `127.0.0.1:${port}`,
        hash: "fnv1a_64",
        distribution: "ketama",
        redis: true,
        server_connections: 1,
        auto_eject_hosts: false,
        timeout: 5000,
        servers: servers.map((s, i) => `${s.address}:1 redis${i}`),
      },
    }),
  );
  const child = spawnTracked(
    "nutcracker",
    ["-c", conf, "-s", String(statsPort), "-a", "127.0.0.1", "-o", join(dir, "nutcracker.log")],
    { stdio: ["ignore", "ignore", "ignore"] },
  );
  cleanups.after(() => stopChild(child, "SIGTERM", 5_000));
  const deadline = Date.now() + 10_000;
  // twemproxy takes no inline commands: PING as a RESP array.
  while (!(await respPing(port!))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error("nutcracker did not answer PING");
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port: port!, child, servers };
}

export interface Environment {
  targets: Target[];
  cluster: TestCluster;
}

/** Starts every target of the side-by-side benchmark. */
export async function startEnvironment(cleanups: Cleanups, dir: string): Promise<Environment> {
  const single = await startSingle(cleanups, dir, "single");
  const cluster = await startBenchCluster(cleanups);
  const masterPids = () => cluster.masters.map((m) => m.pid!).filter(Boolean);
  const masterSources = () => cluster.masters.map((m) => ({ port: m.port }));
  const proxy1 = await startProxyHost(cleanups, dir, cluster.seeds.slice(0, 1), 1);
  const proxy2 = await startProxyHost(cleanups, dir, cluster.seeds.slice(0, 1), 2);
  const twem = await startTwemproxy(cleanups, dir);
  const targets: Target[] = [
    {
      id: "single",
      label: "redis (single)",
      port: single.port,
      cluster: false,
      proxyPids: () => [],
      serverPids: () => [single.pid!],
      counterSources: () => [{ port: single.port }],
    },
    {
      id: "cluster",
      label: "cluster direct",
      port: cluster.masters[0]!.port,
      cluster: true,
      proxyPids: () => [],
      serverPids: masterPids,
      counterSources: masterSources,
    },
    {
      id: "proxy1",
      label: "dredis 1w",
      port: proxy1.port,
      cluster: false,
      proxyPids: proxy1.pids,
      serverPids: masterPids,
      counterSources: masterSources,
    },
    {
      id: "proxy2",
      label: "dredis 2w",
      port: proxy2.port,
      cluster: false,
      proxyPids: proxy2.pids,
      serverPids: masterPids,
      counterSources: masterSources,
    },
    {
      id: "twemproxy",
      label: "twemproxy",
      port: twem.port,
      cluster: false,
      proxyPids: () => [twem.child.pid!],
      serverPids: () => twem.servers.map((s) => s.pid!),
      counterSources: () => twem.servers.map((s) => ({ port: s.port })),
    },
  ];
  return { targets, cluster };
}

/** True when the port answers a RESP-array PING with +PONG within a second. */
export function respPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let data = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("connect", () => socket.write("*1\r\n$4\r\nPING\r\n"));
    socket.on("data", (c: Buffer) => {
      data += c.toString("latin1");
      if (data.includes("\r\n")) done(data.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
  });
}
