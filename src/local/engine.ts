/**
 * The server binary a local platform's nodes run: redis-server (Debian package), or valkey-server
 * (on PATH, or the pinned build `scripts/valkey/install.sh` puts under ~/.cache/distributed-redis).
 */
import { spawnSync } from "node:child_process";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DredisError, ErrorCodes } from "../errors.ts";
import type { Engine } from "../cluster/engine.ts";
import { findRedisServer } from "./redis-server.ts";

export type { Engine };

/** The Valkey version `scripts/valkey/install.sh` installs (its VALKEY_VERSION; a test keeps them equal). */
export const VALKEY_PINNED = "9.1.2";
/** Oldest Valkey accepted from PATH: 9 has atomic slot migration and numbered databases in cluster mode. */
const VALKEY_MIN_MAJOR = 9;

export const VALKEY_INSTALL_SCRIPT = fileURLToPath(
  new URL("../../scripts/valkey/install.sh", import.meta.url),
);

/** Where the install script puts the pinned valkey-server. */
export function pinnedValkeyServerPath(): string {
  return join(homedir(), ".cache", "distributed-redis", `valkey-${VALKEY_PINNED}`, "bin", "valkey-server");
}

const found = new Map<Engine, string>();

/** The server binary of an engine, or an error that says how to install it. */
export function findServer(engine: Engine): string {
  if (engine === "redis") return findRedisServer();
  const known = found.get(engine);
  if (known) return known;
  const tried: string[] = [];
  for (const candidate of [process.env.VALKEY_SERVER, "valkey-server", pinnedValkeyServerPath()]) {
    if (!candidate) continue;
    const probe = spawnSync(candidate, ["--version"], { encoding: "utf8" });
    if (probe.status !== 0) {
      tried.push(`${candidate}: ${probe.error ? "not found" : `exit ${probe.status}`}`);
      continue;
    }
    // "Valkey server v=9.1.2 sha=..."
    const version = /Valkey server v=(\d+)\.(\d+)\.(\d+)/.exec(probe.stdout);
    if (!version || Number(version[1]) < VALKEY_MIN_MAJOR) {
      tried.push(`${candidate}: not Valkey ${VALKEY_MIN_MAJOR} or later (${probe.stdout.trim()})`);
      continue;
    }
    found.set(engine, candidate);
    return candidate;
  }
  throw new DredisError(
    ErrorCodes.ENGINE_MISSING,
    `no valkey-server ${VALKEY_MIN_MAJOR}.x found (tried ${tried.join("; ")}). ` +
      `Install the pinned Valkey ${VALKEY_PINNED} with: ${VALKEY_INSTALL_SCRIPT} ` +
      `(or point VALKEY_SERVER at a valkey-server ${VALKEY_MIN_MAJOR}+ binary)`,
  );
}

/** The binary's name, for messages ("3 shards x 2 valkey-server processes"). */
export function serverName(engine: Engine): string {
  return engine === "valkey" ? "valkey-server" : "redis-server";
}
