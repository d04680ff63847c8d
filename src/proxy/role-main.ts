/**
 * Entry of the processes a proxy host forks (its workers) and of its threads (the busy proxy, and
 * the one that reads the config file for the primary). The primary hands
 * them its parsed config in DREDIS_PROXY_CONFIG, so they load neither the command line (commander,
 * the cluster and local commands) nor the config parser (zod, yaml): every module a process loads
 * stays in its heap, about 8 MB of each child's RSS (bench/README.md, Memory).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ProxyConfig } from "./config.ts";
import { answerConfigRequest, runProxyHost, type ConfigRequest } from "./host.ts";

const request = (workerData as { configRequest?: ConfigRequest } | null)?.configRequest;
if (request !== undefined) {
  // The thread that reads the config file for the primary (host.ts, loadConfigOffThread).
  parentPort!.postMessage(await answerConfigRequest(request));
} else {
  const text = process.env.DREDIS_PROXY_CONFIG;
  if (text === undefined) throw new Error("role-main.js is started by a proxy host's primary, not by hand");
  await runProxyHost(JSON.parse(text) as ProxyConfig);
}
