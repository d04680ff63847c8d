/**
 * One proxy worker: a TCP server whose clients see a standalone Redis, backed by the cluster.
 */
import type { Socket } from "node:net";
import { pino, type Logger } from "pino";
import { errorReply } from "../resp/encode.ts";
import { ClientSession } from "./client.ts";
import { CommandTable, DEFAULT_DENIED } from "./commands.ts";
import type { LiveConfig, ProxyConfig } from "./config.ts";
import { ProxyContext } from "./context.ts";
import { FlushScheduler } from "./request.ts";
import { backendCredentials, routerFor } from "./router.ts";
import type { MapReader } from "./upstream/slot-map-source.ts";
import { listenForClients } from "../tls/proxy-listen.ts";
import { socketIo } from "./io.ts";
import { reloadBackendTls } from "../tls/backend.ts";
import { busyLinksTo } from "./databases.ts";
import { BUSY_RESTART_BUDGET_MS } from "./upstream/limits.ts";
import { reloadUsers } from "./acl/reload.ts";

export interface WorkerOptions {
  /** Logger; defaults to pino on stderr at the config's level. */
  log?: Logger;
  /** Index of this worker in its host (for unique client ids). @default 0 */
  workerIndex?: number;
  /** Unix socket path of the busy proxy; without it, multi-key commands across slots get CROSSSLOT. */
  busySocket?: string;
  /** Tests: what the worker reads slot maps through, given the real reader (a node that lags behind). */
  mapReader?: (reader: MapReader) => MapReader;
}

export interface ProxyWorker {
  /** The port clients connect to (useful when the config asked for port 0): the plain one, or the TLS one when only TLS is served. */
  readonly port: number;
  /** The TLS port bound, when `tls` is configured. */
  readonly tlsPort: number | undefined;
  readonly context: ProxyContext;
  /** Stops accepting, closes clients and shard connections. */
  close(): Promise<void>;
  /**
   * Stops accepting, lets every client's in-flight requests finish (up to `timeoutMs`), closes
   * each client once it has its replies, then closes the shard connections.
   */
  drain(timeoutMs: number): Promise<void>;
  /** Takes on the live fields of a re-read config (see LiveConfig). */
  reload(live: LiveConfig): void;
}

const MAX_CLIENTS_REACHED = errorReply("ERR max number of clients reached");

export async function startWorker(config: ProxyConfig, options: WorkerOptions = {}): Promise<ProxyWorker> {
  const log = options.log ?? pino({ level: config.logLevel }, pino.destination(2));
  const flusher = new FlushScheduler();
  const credentials = backendCredentials(config);
  const router = routerFor(config, flusher, log, credentials, options.mapReader);
  const busyLink = options.busySocket
    ? busyLinksTo(
        options.busySocket,
        flusher,
        () => Math.max(router.retryBudgetMs, BUSY_RESTART_BUDGET_MS),
        log,
      )
    : undefined;
  const commands = new CommandTable(config.deniedCommands ?? DEFAULT_DENIED);
  const context = new ProxyContext(
    config,
    commands,
    router,
    flusher,
    log,
    options.workerIndex ?? 0,
    busyLink,
  );
  await router.start();
  if (!router.map) log.warn({ seeds: config.seeds }, "no seed answered yet; requests wait for the cluster");

  const listeners = await listenForClients(
    config,
    (socket: Socket) => {
      if (context.clients.size >= config.limits.maxClients) {
        // Accepted paused (pauseOnConnect): read, to see the client's close, and dropped.
        socket.resume();
        socket.end(MAX_CLIENTS_REACHED);
        return;
      }
      context.clients.add(new ClientSession(socket, context));
    },
    log,
  );
  const { port, tlsPort } = listeners;
  context.listenPort = port;
  log.info(
    { port, tlsPort, seeds: config.seeds, socketIo: socketIo.native ? "native" : "node streams" },
    "proxy worker listening",
  );
  if (!socketIo.native && process.env.DREDIS_NATIVE_IO !== "0")
    log.warn(
      { reason: socketIo.reason },
      "native socket I/O not loaded (build it: npm run build:native); using Node's streams, at more CPU per request",
    );

  const drain = async (timeoutMs: number) => {
    void listeners.close();
    for (const client of context.clients) client.closeWhenIdle();
    const deadline = Date.now() + timeoutMs;
    while (context.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const client of context.clients) client.destroy();
    busyLink?.close();
    await router.close();
    log.info({ port }, "proxy worker drained");
  };

  return {
    port,
    tlsPort,
    context,
    drain,
    reload(live) {
      credentials.auth = live.backendAuth;
      // The files of `tls` and `backendTls` are re-read: renewed certificates apply to new connections.
      listeners.reloadTls();
      reloadBackendTls(config, credentials, log);
      // Client sessions read it from the config at each AUTH and at connect.
      config.clientPassword = live.clientPassword;
      config.previousClientPassword = live.previousClientPassword;
      reloadUsers(context, live);
      // Read at each cross-slot command.
      config.crossSlot = live.crossSlot;
      // Sessions read it at each request.
      config.readFrom = live.readFrom;
    },
    async close() {
      const closed = listeners.close();
      for (const client of context.clients) client.destroy();
      await closed;
      busyLink?.close();
      await router.close();
    },
  };
}
