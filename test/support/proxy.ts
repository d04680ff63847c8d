/**
 * Starts a proxy worker in the test process over a test cluster, and clients for it.
 */
import { Redis, type RedisOptions } from "ioredis";
import { pino } from "pino";
import { parseProxyConfig, type ProxyConfigInput } from "../../src/proxy/config.ts";
import { startWorker, type ProxyWorker } from "../../src/proxy/worker.ts";
import type { Cleanup, TestCluster } from "./redis.ts";

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
