/**
 * TLS of the proxy fleet, as the platforms render it: where the certificate files sit in a proxy
 * container, the proxy config's `tls` block, and keepalived's check of a TLS-only proxy port.
 * The files are those of a Kubernetes TLS Secret (`tls.crt`, `tls.key`, `ca.crt`: what
 * cert-manager writes), so both platforms mount or write the same names.
 */
import type { ProxyConfigInput } from "../../src/proxy/config.ts";

/** Directory of the proxy's certificate files in its container (beside /etc/dredis, not in it: that is a volume of its own on Kubernetes). */
export const PROXY_TLS_DIR = "/etc/dredis-tls";
export const TLS_FILES = { certificate: "tls.crt", privateKey: "tls.key", clientCa: "ca.crt" } as const;

/** What the proxy config needs to know of TLS (the files themselves come from the platform). */
export interface ProxyTlsPlan {
  /** Clients must present a certificate signed by `ca.crt`. */
  verifyClients: boolean;
  minVersion: "TLSv1.2" | "TLSv1.3";
}

/** The proxy config's `tls`: TLS only, on the endpoint's port, files re-read when the platform renews them. */
export function proxyTlsConfig(port: number, tls: ProxyTlsPlan): NonNullable<ProxyConfigInput["tls"]> {
  return {
    port,
    certFile: `${PROXY_TLS_DIR}/${TLS_FILES.certificate}`,
    keyFile: `${PROXY_TLS_DIR}/${TLS_FILES.privateKey}`,
    ...(tls.verifyClients ? { clientCaFile: `${PROXY_TLS_DIR}/${TLS_FILES.clientCa}` } : {}),
    minVersion: tls.minVersion,
  };
}

/**
 * keepalived's check of a proxy serving TLS only: redis-cli over TLS on loopback, without
 * verifying the certificate (it is this host's own proxy), PONG required. No double quotes,
 * backslashes or newlines, as keepalived.conf needs.
 */
export function proxyTlsHealthCheckCommand(port: number, password: string | undefined): string {
  const auth = password === undefined ? "" : ` -a ${password} --no-auth-warning`;
  return `/bin/bash -c 'timeout 1 redis-cli --tls --insecure -h 127.0.0.1 -p ${port}${auth} PING | grep -qx PONG'`;
}
