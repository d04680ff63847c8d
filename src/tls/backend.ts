/**
 * The proxy's and the admin tools' side of TLS towards the shards: the options every shard
 * connection is opened with (CA, server name, client certificate), and what a failed handshake
 * means, in words that name the setting to fix.
 */
import type { ConnectionOptions } from "node:tls";
import type { Logger } from "pino";
import { TlsErrors } from "../errors.ts";
import { checkedSecureContext, readPem } from "./files.ts";
import type { BackendTls } from "./options.ts";

/** How the user spells the settings, for the error texts: config fields or command-line flags. */
export interface SettingNames {
  ca: string;
  cert: string;
  key: string;
  serverName: string;
}

export const BACKEND_TLS: SettingNames = {
  ca: "backendTls.caFile",
  cert: "backendTls.certFile",
  key: "backendTls.keyFile",
  serverName: "backendTls.serverName",
};

export const TLS_FLAGS: SettingNames = { ca: "--cacert", cert: "--cert", key: "--key", serverName: "--sni" };

/** TLS options for connections to the shards, from the files `tls` names (read now). */
export function backendTlsOptions(tls: BackendTls, names: SettingNames = BACKEND_TLS): ConnectionOptions {
  const ca = tls.caFile === undefined ? undefined : readPem(tls.caFile, names.ca);
  const cert = tls.certFile === undefined ? undefined : readPem(tls.certFile, names.cert);
  const key = tls.keyFile === undefined ? undefined : readPem(tls.keyFile, names.key);
  checkedSecureContext({ ca, cert, key }, `${names.ca}, ${names.cert}, ${names.key}`);
  return {
    ca,
    cert,
    key,
    minVersion: tls.minVersion,
    // Also the name the certificate is checked against; unset, Node checks the node's host (or IP).
    ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
  };
}

/**
 * Re-reads the files of the config's `backendTls` into `credentials` (SIGHUP): new shard
 * connections use them; a file that cannot be used is logged and the running options stay.
 */
export function reloadBackendTls(
  config: { backendTls?: BackendTls | undefined },
  credentials: { tls?: ConnectionOptions | undefined },
  log: Logger,
): void {
  if (config.backendTls === undefined) return;
  try {
    credentials.tls = backendTlsOptions(config.backendTls);
  } catch (err) {
    log.error({ err: (err as Error).message }, "backendTls files not reloaded; the running ones stay");
  }
}

/** Node's codes for a certificate the client does not trust. */
const UNTRUSTED = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_SIGNATURE_FAILURE",
]);

/**
 * A TLS failure towards `peer` as an error whose message names the certificate problem and the
 * setting to look at; other errors are returned as they are.
 */
export function describeTlsError(
  err: Error,
  peer: string,
  names: SettingNames = BACKEND_TLS,
  /** Whether a client certificate was presented: a reset handshake without one is most likely the node asking for one. */
  withClientCert = true,
): Error {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  // OpenSSL's texts carry an address and a source path: keep the reason (e.g. "tlsv1 alert unknown ca").
  const detail = /SSL routines:[^:]*:([^:]+)/.exec(err.message)?.[1] ?? err.message;
  let text: string | undefined;
  if (UNTRUSTED.has(code)) text = TlsErrors.untrusted(peer, names.ca, detail);
  else if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    text = TlsErrors.wrongName(peer, names.serverName, detail);
  else if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID")
    text = TlsErrors.expired(peer, detail);
  // Before the alerts below: without a certificate, the node's "certificate required" alert (or the
  // reset that comes instead when the alert is not read before a write) means none was given.
  else if (
    !withClientCert &&
    /alert certificate required|ECONNRESET|socket disconnected before secure/i.test(`${code} ${err.message}`)
  )
    text = TlsErrors.noClientCert(peer, names.cert, detail);
  else if (/alert (certificate required|bad certificate|unknown ca|handshake failure)/i.test(err.message))
    text = TlsErrors.clientCertRefused(peer, names.cert, detail);
  else if (
    /wrong version number|packet length too long|unexpected eof|ECONNRESET|socket disconnected before secure/i.test(
      `${code} ${err.message}`,
    )
  )
    text = TlsErrors.handshakeFailed(peer, detail);
  if (text === undefined) return err;
  return Object.assign(new Error(text), { code });
}
