/**
 * Starts a proxy worker in the test process over a test cluster, and clients for it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis, type RedisOptions } from "ioredis";
import { freePorts } from "../../src/local/ports.ts";
import { pino } from "pino";
import { startBusyProxy, type BusyProxy } from "../../src/proxy/busy-proxy.ts";
import { parseProxyConfig, type ProxyConfig, type ProxyConfigInput } from "../../src/proxy/config.ts";
import { startWorker, type ProxyWorker, type WorkerOptions } from "../../src/proxy/worker.ts";
import { tempDir, until, type Cleanup, type TestCluster } from "./redis.ts";

export interface TestProxyOptions {
  /** Also run a busy proxy in this process, on a temp socket, and point the worker at it. @default false */
  busyProxy?: boolean;
  /** What the worker reads slot maps through, given the real reader (see WorkerOptions). */
  mapReader?: WorkerOptions["mapReader"];
}

/** A busy proxy the test can stop and start again on the same socket (as the host restarts it). */
export interface TestBusyProxy {
  readonly socketPath: string;
  readonly running: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestProxy extends ProxyWorker {
  /** Set when started with `busyProxy: true`. */
  busy: TestBusyProxy | undefined;
}

const testLog = () => pino({ level: process.env.DREDIS_TEST_LOG ?? "silent" });

export async function startTestProxy(
  t: Cleanup,
  cluster: TestCluster,
  overrides: Partial<ProxyConfigInput> = {},
  options: TestProxyOptions = {},
): Promise<TestProxy> {
  const config = parseProxyConfig({
    listen: { host: "127.0.0.1", port: 0 },
    seeds: cluster.seeds.slice(0, 1),
    logLevel: "silent",
    ...overrides,
  });
  const busy = options.busyProxy ? await startTestBusyProxy(t, config) : undefined;
  const worker = await startWorker(config, {
    log: testLog(),
    busySocket: busy?.socketPath,
    mapReader: options.mapReader,
  });
  t.after(() => worker.close());
  return Object.assign(worker, { busy });
}

async function startTestBusyProxy(t: Cleanup, config: ProxyConfig): Promise<TestBusyProxy> {
  const socketPath = join(tmpdir(), `dredis-busy-${randomBytes(6).toString("hex")}.sock`);
  let current: BusyProxy | undefined;
  const handle: TestBusyProxy = {
    socketPath,
    get running() {
      return current !== undefined;
    },
    async start() {
      if (current === undefined) current = await startBusyProxy(config, socketPath, testLog());
    },
    async stop() {
      const proxy = current;
      current = undefined;
      await proxy?.close();
    },
  };
  await handle.start();
  t.after(() => handle.stop());
  return handle;
}

/** An ioredis client in standalone mode (it knows nothing of the cluster), closed after the test. */
export function proxyClient(t: Cleanup, port: number, options: RedisOptions = {}): Redis {
  const client = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0, ...options });
  client.on("error", () => {});
  t.after(() => client.disconnect());
  return client;
}

export interface HostStatus {
  ready: boolean;
  draining: boolean;
  workers: ({ index: number; pid: number; clients: number; ready: boolean } | null)[];
  /** The busy proxy is a thread of the primary (pid): threadId tells a restarted one apart. */
  busyProxy: { pid: number; threadId: number; running: boolean };
  /** SIGHUPs handled, and why the last one's config was refused (absent when it applied). */
  reloads: { done: number; error?: string };
}

export interface TestProxyHost {
  port: number;
  adminPort: number;
  /** The config file the host was started with (rewrite it and send SIGHUP to reload). */
  configFile: string;
  process: ChildProcess;
  /** What the host wrote to stdout/stderr so far (pino JSON lines). */
  output(): string;
  status(): Promise<HostStatus>;
  /** Resolves with the exit code once the host process has exited. */
  exited: Promise<number | null>;
}

/** How to start `dredis`: node's arguments before the command's, and the environment to add. */
export interface DredisLaunch {
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * How the tests start `dredis` as a process: under npm test, the bundle of the current sources that
 * scripts/test.sh builds for the run (scripts/test-build.sh; it names the folder in
 * DREDIS_TEST_BUILD) on plain node, as the image runs it: 0.25 CPU-seconds a start against 1.1
 * through tsx. A file run by hand starts the sources through tsx. (The local platform started in a
 * test's own process still starts its proxies from the sources: both ways stay tested.)
 */
export const dredisLaunch: DredisLaunch = process.env.DREDIS_TEST_BUILD
  ? { argv: [join(process.env.DREDIS_TEST_BUILD, "bin", "dredis.js")], env: { DREDIS_COMPILED: "1" } }
  : { argv: ["--import", "tsx", fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))], env: {} };

/** Runs `dredis proxy` as a real multi-process host (primary, workers, busy proxy) over a test cluster. */
export async function startProxyHost(
  t: Cleanup,
  cluster: TestCluster,
  overrides: Partial<ProxyConfigInput> = {},
  /** How to start `dredis` (node arguments before `proxy`): dredisLaunch by default. */
  launch: { argv: string[]; env?: NodeJS.ProcessEnv } = dredisLaunch,
): Promise<TestProxyHost> {
  const dir = await tempDir("dredis-host-");
  const [port, adminPort] = await freePorts(2);
  const file = join(dir, "proxy.json");
  await writeFile(
    file,
    JSON.stringify({
      listen: { host: "127.0.0.1", port },
      admin: { host: "127.0.0.1", port: adminPort },
      seeds: cluster.seeds.slice(0, 1),
      workers: 2,
      logLevel: "info",
      ...overrides,
    }),
  );
  const child = spawn(process.execPath, [...launch.argv, "proxy", "--config", file], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...launch.env },
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  });
  const status = async (): Promise<HostStatus> => {
    const response = await fetch(`http://127.0.0.1:${adminPort}/status`);
    return (await response.json()) as HostStatus;
  };
  await until(
    async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200,
    60_000,
    `the proxy host to be ready (output so far: ${output.slice(-500)})`,
    100,
  );
  return {
    port: port!,
    adminPort: adminPort!,
    configFile: file,
    process: child,
    output: () => output,
    status,
    exited,
  };
}

export interface ProxyHostProcess {
  /** PID of the primary, which is also the process group of the primary, its workers and busy proxy. */
  pid: number;
  /** What the host wrote to stdout/stderr so far. */
  output(): string;
  readonly running: boolean;
  /** SIGKILLs the whole process group at once, as a host crash or power loss would. */
  killGroup(): Promise<void>;
  exited: Promise<number | null>;
}

const liveHostGroups = new Set<number>();
let hostExitHookInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone.
  }
}

/**
 * Runs `dredis proxy --config FILE` as its own process group (so a test can kill the host as a
 * whole), optionally inside a network namespace, and waits until `ready()` holds. The group is
 * stopped by the test's cleanup (SIGTERM, then SIGKILL), and SIGKILLed if the test process exits.
 */
export async function spawnProxyHostFromFile(
  t: Cleanup,
  configFile: string,
  options: { netns?: string; ready: () => Promise<boolean>; readyTimeoutMs?: number },
): Promise<ProxyHostProcess> {
  if (!hostExitHookInstalled) {
    hostExitHookInstalled = true;
    process.on("exit", () => {
      for (const pid of liveHostGroups) killGroup(pid, "SIGKILL");
    });
  }
  const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
  const node = [process.execPath, ...dredisLaunch.argv, "proxy", "--config", configFile];
  const [command, ...args] = options.netns ? ["ip", "netns", "exec", options.netns, ...node] : node;
  // `ip netns exec` execs the command, so the PID is node's either way.
  const child = spawn(command!, args, {
    cwd: repoRoot,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...dredisLaunch.env },
  });
  const pid = child.pid!;
  liveHostGroups.add(pid);
  let output = "";
  const collect = (d: Buffer) => (output = (output + d.toString()).slice(-50_000));
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  t.after(async () => {
    if (running()) {
      killGroup(pid, "SIGTERM");
      const timer = setTimeout(() => killGroup(pid, "SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // Workers that outlived their primary (they should not) go with the group.
    killGroup(pid, "SIGKILL");
    liveHostGroups.delete(pid);
  });
  const handle: ProxyHostProcess = {
    pid,
    output: () => output,
    get running() {
      return running();
    },
    async killGroup() {
      killGroup(pid, "SIGKILL");
      await exited;
    },
    exited,
  };
  const died = exited.then((code) => {
    throw new Error(`the proxy host exited (code ${code})`);
  });
  died.catch(() => {});
  await Promise.race([
    until(
      options.ready,
      options.readyTimeoutMs ?? 30_000,
      `the proxy host from ${configFile} to be ready`,
      100,
    ),
    died,
  ]).catch((err: Error) => {
    throw new Error(`${err.message}\n--- host output ---\n${output.slice(-2000)}`);
  });
  return handle;
}
