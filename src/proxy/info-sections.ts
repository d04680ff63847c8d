/**
 * INFO's sections as a standalone Redis lists them, and the ones the proxy writes itself (Server,
 * Clients, Cluster: the proxy's own view); the others hold the shards' figures, which the busy
 * proxy fills in (./busy/info.ts).
 */
import { randomBytes } from "node:crypto";
import { arch, release, type } from "node:os";
import type { Engine } from "../cluster/engine.ts";

/** Every section, in the order Redis prints them. */
export const INFO_SECTIONS = [
  "server",
  "clients",
  "memory",
  "persistence",
  "stats",
  "replication",
  "cpu",
  "modules",
  "commandstats",
  "errorstats",
  "latencystats",
  "cluster",
  "keyspace",
] as const;

/** What `INFO` and `INFO default` print: all but the per-command statistics. */
const DEFAULT: ReadonlySet<string> = new Set(
  INFO_SECTIONS.filter((s) => s !== "commandstats" && s !== "latencystats"),
);

/** Sections whose figures come from the shards. */
export const SHARD_SECTIONS: ReadonlySet<string> = new Set([
  "memory",
  "persistence",
  "stats",
  "replication",
  "cpu",
  "modules",
  "commandstats",
  "errorstats",
  "latencystats",
  "keyspace",
]);

/**
 * The sections `INFO arg ...` asks for, in Redis's order: no argument or `default` the default
 * ones, `all` and `everything` every one, any other name that section (any letter case; unknown
 * names add nothing, as on Redis).
 */
export function requestedSections(args: readonly string[]): string[] {
  if (args.length === 0) return [...DEFAULT];
  const wanted = new Set<string>();
  for (const arg of args) {
    const name = arg.toLowerCase();
    if (name === "all" || name === "everything") return [...INFO_SECTIONS];
    if (name === "default") for (const s of DEFAULT) wanted.add(s);
    else wanted.add(name);
  }
  return INFO_SECTIONS.filter((s) => wanted.has(s));
}

/** The proxy's run id: a new one each time the process starts, as Redis's. */
const RUN_ID = randomBytes(20).toString("hex");

export interface ProxyFigures {
  /** The Redis version the shards report (Valkey's redis_version: the Redis it is compatible with). */
  serverVersion: string;
  serverEngine: Engine;
  /** The engine's own version (valkey_version on Valkey). */
  serverEngineVersion: string;
  port: number;
  startedAt: number;
  connectedClients: number;
  /** Clients waiting on a blocking command. */
  blockedClients: number;
  maxClients: number;
}

/** The lines of a section the proxy writes itself; none for the shards' sections. */
export function proxySectionLines(section: string, figures: ProxyFigures): string[] {
  const now = Date.now();
  const uptime = Math.floor((now - figures.startedAt) / 1000);
  switch (section) {
    case "server":
      return [
        `redis_version:${figures.serverVersion}`,
        // Valkey names itself and its own version after the Redis version, and says server_mode.
        ...(figures.serverEngine === "valkey"
          ? ["server_name:valkey", `valkey_version:${figures.serverEngineVersion}`, "server_mode:standalone"]
          : ["redis_mode:standalone"]),
        "proxy:distributed-redis",
        `os:${type()} ${release()} ${arch() === "x64" ? "x86_64" : arch()}`,
        "arch_bits:64",
        `process_id:${process.pid}`,
        `run_id:${RUN_ID}`,
        `tcp_port:${figures.port}`,
        `server_time_usec:${now * 1000}`,
        `uptime_in_seconds:${uptime}`,
        `uptime_in_days:${Math.floor(uptime / 86400)}`,
      ];
    case "clients":
      // The proxy is no cluster node: it has no cluster bus connections.
      return [
        `connected_clients:${figures.connectedClients}`,
        "cluster_connections:0",
        `maxclients:${figures.maxClients}`,
        `blocked_clients:${figures.blockedClients}`,
      ];
    case "cluster":
      return ["cluster_enabled:0"];
    default:
      return [];
  }
}
