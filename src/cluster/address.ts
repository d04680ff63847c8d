/**
 * Node addresses as the cluster spells them ("host:port", "[v6]:port"), parsed in one place for
 * the proxy's shard connections, its slot-map reads and the admin tool's node connections.
 */
import { DredisError, ErrorCodes } from "../errors.ts";

/** Where a socket connects: a TCP host and port, or a local (unix) socket path. */
export type Endpoint = { host: string; port: number } | { path: string };

/**
 * "10.0.0.5:6379", "redis-0.redis:6379" or "[fd00::5]:6379" to host and port (brackets removed).
 * The host may be empty: a node alone in its cluster does not know its own IP and reports
 * ":6379", and node:net connects to localhost for an empty host (as before this parser).
 */
export function parseAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  const host = at < 0 ? "" : address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  const portText = address.slice(at + 1);
  const port = Number(portText);
  if (at < 0 || !/^\d{1,5}$/.test(portText) || port > 65535)
    throw new DredisError(
      ErrorCodes.ADDRESS,
      `expected "host:port" (or "[ipv6]:port") with a port from 0 to 65535, got "${address}"`,
    );
  return { host, port };
}

/** The "host:port" spelling of an endpoint, with an IPv6 host in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
