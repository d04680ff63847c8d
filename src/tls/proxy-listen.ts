/**
 * Where a proxy worker listens for clients: the plain port, the TLS port, or both side by side
 * (`tls.plain`). Each worker opens the same listeners; under node:cluster they share the host's
 * ports, the TLS one as the plain one.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import type { ProxyConfig } from "../proxy/config.ts";
import { backendTlsOptions } from "./backend.ts";
import { loadServerTls, tlsListener, type TlsListener } from "./listener.ts";

/** How many ports each worker listens on. */
export function listenersPerWorker(config: Pick<ProxyConfig, "tls">): number {
  return config.tls === undefined ? 1 : config.tls.plain ? 2 : 1;
}

/** Reads every TLS file the config names, so a bad one stops the host at start, with its name. */
export function checkTlsFiles(config: Pick<ProxyConfig, "tls" | "backendTls">): void {
  if (config.tls) loadServerTls(config.tls);
  if (config.backendTls) backendTlsOptions(config.backendTls);
}

export interface ClientListeners {
  /** The plain port, or the TLS port when only TLS is served (when the config asked for port 0: the one bound). */
  readonly port: number;
  /** The TLS port bound, when TLS is configured. */
  readonly tlsPort: number | undefined;
  /** Re-reads the TLS files (SIGHUP). */
  reloadTls(): void;
  /** Stops accepting; resolves once the servers have closed (their open connections are the caller's). */
  close(): Promise<void>;
}

export async function listenForClients(
  config: ProxyConfig,
  onClient: (socket: Socket) => void,
  log: Logger,
): Promise<ClientListeners> {
  const servers: Server[] = [];
  let tls: TlsListener | undefined;
  const closeAll = () => {
    tls?.close();
    return Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  };
  try {
    let plainPort: number | undefined;
    if (config.tls === undefined || config.tls.plain) {
      // Accepted sockets start unread: src/proxy/io.ts readAccepted chooses how they are read.
      const server = createServer({ pauseOnConnect: true }, onClient);
      servers.push(server);
      plainPort = await listen(server, config.listen.port, config.listen.host);
    }
    let tlsPort: number | undefined;
    if (config.tls !== undefined) {
      tls = tlsListener(config.tls, onClient, log);
      servers.push(tls.server);
      tlsPort = await listen(tls.server, config.tls.port, config.listen.host);
    }
    const listener = tls;
    return {
      port: plainPort ?? tlsPort!,
      tlsPort,
      reloadTls: () => void listener?.reload(),
      close: async () => void (await closeAll()),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}
