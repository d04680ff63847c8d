/**
 * Entry of the processes a proxy host forks (its workers and its busy proxy). The primary hands
 * them its parsed config in DREDIS_PROXY_CONFIG, so they load neither the command line (commander,
 * the cluster and local commands) nor the config parser (zod, yaml): every module a process loads
 * stays in its heap, about 8 MB of each child's RSS (bench/README.md, Memory).
 */
import type { ProxyConfig } from "./config.ts";
import { runProxyHost } from "./host.ts";

const text = process.env.DREDIS_PROXY_CONFIG;
if (text === undefined) throw new Error("role-main.js is started by a proxy host's primary, not by hand");
await runProxyHost(JSON.parse(text) as ProxyConfig);
