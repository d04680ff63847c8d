/**
 * Starts a proxy worker in the test process over a test cluster, and clients for it.
 */
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import { pino } from "pino";
import { startBusyProxy, type BusyProxy } from "../../src/proxy/busy-proxy.ts";
import { parseProxyConfig, type ProxyConfig, type ProxyConfigInput } from "../../src/proxy/config.ts";
import { startWorker, type ProxyWorker } from "../../src/proxy/worker.ts";
import type { Cleanup, TestCluster } from "./redis.ts";

export interface TestProxyOptions {
  /** Also run a busy proxy in this process, on a temp socket, and point the worker at it. @default false */
  busyProxy?: boolean;
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
  const worker = await startWorker(config, { log: testLog(), busySocket: busy?.socketPath });
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
