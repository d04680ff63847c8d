/**
 * The busy proxy: one process per host that runs multi-key commands whose keys span slots
 * (split by slot, fan out, merge), so that slow fan-out work never stalls the workers.
 * Workers reach it over a local socket, speaking RESP, pipelined, through their busy link
 * (busy-link.ts), which takes its replies as final.
 *
 * It has its own `ClusterRouter`, built as a worker builds one, so every part of a split command
 * gets the same redirect, retry and failover handling as a worker's own requests. The commands
 * and how each is split and merged are in ./busy/.
 */
import { createServer, type Server } from "node:net";
import { rm } from "node:fs/promises";
import type { Logger } from "pino";
import { CommandTable } from "./commands.ts";
import type { LiveConfig, ProxyConfig } from "./config.ts";
import { FlushScheduler } from "./request.ts";
import { backendCredentials, routerFor } from "./router.ts";
import { reloadBackendTls } from "../tls/backend.ts";
import { BusyConnection, type BusyServerContext } from "./busy/connection.ts";

export interface BusyProxy {
  /** Stops listening, drops the workers' connections (their in-flight commands fail there), closes shard connections. */
  close(): Promise<void>;
  /** Takes on the live fields of a re-read config: new shard connections use the new `backendAuth`. */
  reload(live: LiveConfig): void;
}

export async function startBusyProxy(
  config: ProxyConfig,
  socketPath: string,
  log: Logger,
): Promise<BusyProxy> {
  // A socket file left by a busy proxy that died would make listen fail with EADDRINUSE.
  await rm(socketPath, { force: true });
  const flusher = new FlushScheduler();
  const credentials = backendCredentials(config);
  const router = routerFor(config, flusher, log, credentials);
  await router.start();
  if (!router.map) log.warn({ seeds: config.seeds }, "no seed answered yet; commands wait for the cluster");

  const connections = new Set<BusyConnection>();
  const context: BusyServerContext = {
    router,
    // Only arity is read from it: which commands run here is fixed by ./busy/commands.ts.
    commands: new CommandTable(),
    flusher,
    limits: config.limits,
    closed: (connection) => connections.delete(connection),
  };
  let nextId = 0;
  const server: Server = createServer((socket) =>
    connections.add(new BusyConnection(socket, context, ++nextId)),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await router.close();
    throw err;
  }
  log.info({ socket: socketPath }, "busy proxy listening");

  return {
    reload(live) {
      credentials.auth = live.backendAuth;
      reloadBackendTls(config, credentials, log);
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.destroy();
      await closed;
      await router.close();
      await rm(socketPath, { force: true });
    },
  };
}
