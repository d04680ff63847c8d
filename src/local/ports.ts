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

/** How far above a Redis Cluster node's port its cluster bus listens unless `cluster-port` says. */
export const CLUSTER_BUS_OFFSET = 10_000;

/**
 * Returns `count` ports for Redis Cluster nodes that keep their default bus port: each port and
 * its port + 10000 were free a moment ago, and both lie below the ephemeral range, for the reason
 * `freePorts` gives (a bus port drawn above it was taken by an outgoing connection between the
 * pick and redis-server's bind, and the node failed to start).
 */
export async function freeNodePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const highest = ephemeralStart() - 1 - CLUSTER_BUS_OFFSET;
  if (highest - LOWEST < count * 4)
    throw new Error(`the port range below ${highest} is too narrow for ${count} node ports`);
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; ports.length < count; tries++) {
      if (tries >= count * 100)
        throw new Error(`no ${count} free node port pairs (port, port + ${CLUSTER_BUS_OFFSET}) on ${host}`);
      const port = LOWEST + Math.floor(Math.random() * (highest - LOWEST + 1));
      if (
        ports.includes(port) ||
        ports.includes(port + CLUSTER_BUS_OFFSET) ||
        ports.includes(port - CLUSTER_BUS_OFFSET)
      )
        continue;
      const server = await listen(port, host);
      if (!server) continue;
      const bus = await listen(port + CLUSTER_BUS_OFFSET, host);
      if (!bus) {
        await new Promise((r) => server.close(r));
        continue;
      }
      held.push(server, bus);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
}
