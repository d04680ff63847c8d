/**
 * Starts a proxy worker in the test process over a test cluster, and clients for it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import { freePorts } from "../../src/local/ports.ts";
import { pino } from "pino";
import { parseProxyConfig, type ProxyConfigInput } from "../../src/proxy/config.ts";
import { startWorker, type ProxyWorker } from "../../src/proxy/worker.ts";
import { tempDir, until, type Cleanup, type TestCluster } from "./redis.ts";

export async function startTestProxy(
  t: Cleanup,
  cluster: TestCluster,
  overrides: Partial<ProxyConfigInput> = {},
): Promise<ProxyWorker> {
  const config = parseProxyConfig({
    listen: { host: "127.0.0.1", port: 0 },
    seeds: cluster.seeds.slice(0, 1),
    logLevel: "silent",
    ...overrides,
  });
  const worker = await startWorker(config, { log: pino({ level: process.env.DREDIS_TEST_LOG ?? "silent" }) });
  t.after(() => worker.close());
  return worker;
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
}

export interface TestProxyHost {
  port: number;
  adminPort: number;
  process: ChildProcess;
  /** What the host wrote to stdout/stderr so far (pino JSON lines). */
  output(): string;
  status(): Promise<HostStatus>;
  /** Resolves with the exit code once the host process has exited. */
  exited: Promise<number | null>;
}

/** Runs `dredis proxy` as a real multi-process host (primary, workers, busy proxy) over a test cluster. */
export async function startProxyHost(
  t: Cleanup,
  cluster: TestCluster,
  overrides: Partial<ProxyConfigInput> = {},
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
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "proxy", "--config", file], {
    stdio: ["ignore", "pipe", "pipe"],
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
    30_000,
    `the proxy host to be ready (output so far: ${output.slice(-500)})`,
    100,
  );
  return { port: port!, adminPort: adminPort!, process: child, output: () => output, status, exited };
}
