/**
 * redis.conf settings the local platform changed after a node was created (password, `local set`,
 * `local roll --set`): written into each node's redis.conf before it starts, so a restart keeps
 * them whatever the file said. The rendered base of the file is not this module's business.
 */
import { readFile, writeFile } from "node:fs/promises";
import { DredisError, ErrorCodes } from "../errors.ts";
import { renderRedisConf } from "../cluster/redis-conf.ts";

/** Replaces each setting's directive lines in the file (names are case-insensitive, as Redis reads them). */
export async function writeNodeSettings(confPath: string, settings: Record<string, string>): Promise<void> {
  const names = new Set(Object.keys(settings).map((k) => k.toLowerCase()));
  if (names.size === 0) return;
  const text = await readFile(confPath, "utf8");
  const kept = text
    .split("\n")
    .filter((line) => line.trim() !== "" && !names.has(line.trim().split(/\s+/)[0]!.toLowerCase()));
  await writeFile(confPath, [...kept, renderRedisConf(settings)].join("\n"));
}

/** Parses repeated `key=value` flags (the value may be empty, e.g. `save=`). */
export function parseSettings(pairs: readonly string[]): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    const key = at > 0 ? pair.slice(0, at).trim().toLowerCase() : "";
    if (!/^[a-z][a-z0-9-]*$/.test(key))
      throw new DredisError(
        ErrorCodes.SETTING,
        `expected a redis.conf setting as key=value (e.g. maxmemory-policy=noeviction), got "${pair}"`,
      );
    settings[key] = pair.slice(at + 1);
  }
  return settings;
}
