/**
 * The proxy's TLS port for clients: a `tls.Server` whose certificate, key and client CA are read
 * from files and re-read when they change (a watch on their directories, which also sees the
 * symlink swap Kubernetes makes when it updates a mounted Secret) or on SIGHUP. A new certificate
 * applies to new connections; open ones keep the session they negotiated. A file that cannot be
 * used (half written, key not matching) is logged and the running certificate stays.
 */
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { Socket } from "node:net";
import { createServer, type SecureContextOptions, type Server, type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { checkedSecureContext, readPem } from "./files.ts";
import type { ServerTls } from "./options.ts";

/** Quiet time after a file event before the files are read (a renewal writes several files). */
const RELOAD_SETTLE_MS = 200;

interface Loaded {
  options: SecureContextOptions;
  /** The files' bytes, to tell a real change from a touch. */
  fingerprint: string;
}

/** Reads the files of `tls` and checks they make a secure context; throws a DredisError naming the bad file. */
export function loadServerTls(tls: ServerTls): Loaded {
  const cert = readPem(tls.certFile, "tls.certFile");
  const key = readPem(tls.keyFile, "tls.keyFile");
  const ca = tls.clientCaFile === undefined ? undefined : readPem(tls.clientCaFile, "tls.clientCaFile");
  const options = { cert, key, ca, minVersion: tls.minVersion };
  checkedSecureContext(options, "tls (certFile, keyFile, clientCaFile)");
  return { options, fingerprint: [cert, key, ca ?? ""].map((b) => b.toString("base64")).join(".") };
}

export interface TlsListener {
  readonly server: Server;
  /** Re-reads the files now; true when a new certificate was taken on. */
  reload(): boolean;
  /** Stops watching the files (the server is closed by its owner). */
  close(): void;
}

export function tlsListener(tls: ServerTls, onClient: (socket: Socket) => void, log: Logger): TlsListener {
  let current = loadServerTls(tls);
  const server = createServer(
    {
      ...current.options,
      // Asked for only when a CA is configured: then a client without a valid certificate is refused.
      requestCert: tls.clientCaFile !== undefined,
      rejectUnauthorized: tls.clientCaFile !== undefined,
    },
    (socket: TLSSocket) => onClient(socket),
  );
  server.on("tlsClientError", (err, socket) => {
    // A client certificate that fails verification is dropped by Node after the handshake, with
    // only "socket hang up" as the error: the verification's own code says why.
    const refused = socket.authorizationError;
    log.warn(
      refused
        ? {
            err: `client certificate refused: ${String(refused)}`,
            code: String(refused),
            client: socket.remoteAddress,
          }
        : { err: err.message, code: (err as NodeJS.ErrnoException).code, client: socket.remoteAddress },
      "TLS handshake with a client failed",
    );
  });

  const reload = (): boolean => {
    let next: Loaded;
    try {
      next = loadServerTls(tls);
    } catch (err) {
      log.error({ err: (err as Error).message }, "TLS files not reloaded; the running certificate stays");
      return false;
    }
    if (next.fingerprint === current.fingerprint) return false;
    current = next;
    server.setSecureContext(next.options);
    log.info({ certFile: tls.certFile }, "TLS certificate reloaded; new connections use it");
    return true;
  };

  const watched = new Set(
    [tls.certFile, tls.keyFile, tls.clientCaFile].filter((f): f is string => f !== undefined),
  );
  const names = new Set([...watched].map((f) => basename(f)));
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([...watched].map((f) => dirname(f)))) {
    try {
      const watcher = watch(dir, (_event, name) => {
        // Kubernetes updates a Secret volume by swapping its `..data` symlink.
        if (name !== null && !names.has(name) && !name.startsWith("..")) return;
        clearTimeout(timer);
        timer = setTimeout(reload, RELOAD_SETTLE_MS);
      });
      watcher.on("error", (err) =>
        log.warn({ dir, err: err.message }, "cannot watch TLS files; SIGHUP reloads them"),
      );
      watchers.push(watcher);
    } catch (err) {
      log.warn({ dir, err: (err as Error).message }, "cannot watch TLS files; SIGHUP reloads them");
    }
  }

  return {
    server,
    reload,
    close() {
      clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
