import { readFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";

/** Lowest port handed out; below it sit well-known services. */
const LOWEST = 10_000;

/**
 * The first port of the kernel's ephemeral range, which outgoing connections take their local
 * ports from (Linux default 32768).
 */
function ephemeralStart(): number {
  try {
    const first = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
    );
    return Number.isInteger(first) && first > 0 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

function listen(port: number, host: string): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(null));
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * Returns `count` distinct TCP ports that were free on `host` a moment ago.
 *
 * They are drawn at random from below the ephemeral range: a port the kernel picks for
 * `listen(0)` comes from that range, and once released any outgoing connection (of this process
 * or of tests running beside it) may take it as its local port before the server meant for it
 * binds, which failed runs with "Address already in use". All are held open together while they
 * are picked, so one call never returns the same port twice.
 */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const highest = ephemeralStart() - 1;
  const servers: Server[] = [];
  for (let tries = 0; servers.length < count && highest - LOWEST > count * 4 && tries < count * 50; tries++) {
    const server = await listen(LOWEST + Math.floor(Math.random() * (highest - LOWEST + 1)), host);
    if (server) servers.push(server);
  }
  // A narrow or crowded low range: the rest from the kernel, as before.
  while (servers.length < count) {
    const server = await listen(0, host);
    if (!server) throw new Error(`no free TCP port on ${host}`);
    servers.push(server);
  }
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
