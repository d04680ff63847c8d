/**
 * TLS on the local platform (`dredis local up --tls`): a CA and certificates under `<dir>/tls/`,
 * shard nodes that serve only TLS, and the proxy serving TLS on its port and reaching the shards
 * over TLS with the client certificate.
 */
import { join } from "node:path";
import type { ConnectionOptions } from "node:tls";
import type { ShardTlsFiles } from "../cluster/redis-conf.ts";
import type { ProxyConfigInput } from "../proxy/config.ts";
import { backendTlsOptions } from "./backend.ts";
import { makeLocalCertificates } from "./certificates.ts";

/** What the local platform's state keeps of TLS: where its files are. */
export interface LocalTls {
  /** `<dir>/tls`, absolute. */
  dir: string;
}

/** Makes the CA and certificates (kept if already there) and returns the state's TLS entry. */
export async function prepareLocalTls(platformDir: string): Promise<LocalTls> {
  const certificates = await makeLocalCertificates(join(platformDir, "tls"));
  return { dir: certificates.dir };
}

const file = (tls: LocalTls, name: string) => join(tls.dir, name);

/** The files a TLS-only shard node is configured with. */
export function localNodeTls(tls: LocalTls): ShardTlsFiles {
  return {
    certFile: file(tls, "server.crt"),
    keyFile: file(tls, "server.key"),
    caFile: file(tls, "ca.crt"),
  };
}

/** How the platform's own tools (admin, status, readiness pings) connect to the nodes. */
export function localClientTls(tls: LocalTls | undefined): ConnectionOptions | undefined {
  if (tls === undefined) return undefined;
  return backendTlsOptions({
    caFile: file(tls, "ca.crt"),
    certFile: file(tls, "client.crt"),
    keyFile: file(tls, "client.key"),
    minVersion: "TLSv1.2",
  });
}

/** The proxy config's TLS fields: TLS on the client port, TLS with the client certificate to the shards. */
export function localProxyTls(tls: LocalTls, port: number): Pick<ProxyConfigInput, "tls" | "backendTls"> {
  return {
    tls: { port, certFile: file(tls, "server.crt"), keyFile: file(tls, "server.key") },
    backendTls: {
      caFile: file(tls, "ca.crt"),
      certFile: file(tls, "client.crt"),
      keyFile: file(tls, "client.key"),
    },
  };
}
