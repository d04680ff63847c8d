/**
 * The busy proxy: one process per host that runs multi-key commands whose keys span slots
 * (split by slot, fan out, merge), so that slow fan-out work never stalls the workers.
 * Workers reach it over a local socket, speaking RESP, pipelined.
 *
 * Not built yet: until it is, it answers every command with CROSSSLOT, as a worker without it would.
 */
import { createServer } from "node:net";
import { rm } from "node:fs/promises";
import type { Logger } from "pino";
import { RedisErrors } from "../errors.ts";
import type { ProxyConfig } from "./config.ts";

export interface BusyProxy {
  close(): Promise<void>;
}

export async function startBusyProxy(
  _config: ProxyConfig,
  socketPath: string,
  _log: Logger,
): Promise<BusyProxy> {
  await rm(socketPath, { force: true });
  const server = createServer((socket) => {
    socket.on("data", () => socket.write(`-${RedisErrors.crossSlot}\r\n`));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { close: () => new Promise((resolve) => server.close(() => resolve())) };
}
