/**
 * Changes every node takes live, without a restart: redis.conf settings (CONFIG SET), the
 * persistence mode, and a password rotation in two steps so that both passwords are accepted in
 * between. Each change ends with CONFIG REWRITE, so a node that has a config file keeps the new
 * value when it restarts.
 *
 * A setting Redis cannot change while running is refused before anything changes: it needs the
 * roll (`dredis cluster roll`, or `dredis local roll --set` on the local platform).
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import type { Topology } from "../topology.ts";
import { persistenceConfig, type Persistence } from "../redis-conf.ts";
import { withPool, type NodePool } from "./node-pool.ts";
import { report, type AdminOptions } from "./options.ts";

export type { Persistence };
export const PERSISTENCE_MODES: readonly Persistence[] = ["aof", "rdb", "none"];

/** A persistence mode's settings as CONFIG SET takes them: the same the nodes' redis.conf carries. */
export function persistenceSettings(mode: Persistence): Record<string, string> {
  return Object.fromEntries(
    Object.entries(persistenceConfig(mode)).map(([key, value]) => [
      key,
      value === true ? "yes" : value === false ? "no" : String(value),
    ]),
  );
}

const allNodes = (topology: Topology) => topology.shards.flatMap((s) => [...s.replicas, s.master]);

/** Changed only through the two-step rotation, never as a plain setting. */
const PASSWORD_SETTINGS = new Set(["requirepass", "masterauth", "masteruser"]);

/** Redis's answer to CONFIG SET on a setting that only a restart changes. */
const IMMUTABLE = /immutable/i;

/**
 * Checks every setting on one node before any node changes: an unknown name, or one that needs a
 * restart, is refused with what to do instead.
 */
export async function checkLiveSettings(
  pool: NodePool,
  address: string,
  settings: Record<string, string>,
  rollHint = "dredis cluster roll after changing the nodes' redis.conf (local platform: dredis local roll --set key=value)",
): Promise<void> {
  const client = pool.get(address);
  const needRestart: string[] = [];
  for (const key of Object.keys(settings)) {
    if (PASSWORD_SETTINGS.has(key))
      throw new DredisError(
        ErrorCodes.SETTING,
        `${key} is not changed as a setting (clients would be refused at once); rotate the password in two steps: ` +
          "--password-file with --previous-password-file, then --drop-previous-password",
      );
    const current = (await client.call("CONFIG", "GET", key)) as string[];
    if (current.length === 0)
      throw new DredisError(
        ErrorCodes.SETTING,
        `"${key}" is not a redis.conf setting this Redis (${address}) knows`,
      );
    // Setting the current value again changes nothing, and tells whether Redis can change it live.
    await client.call("CONFIG", "SET", key, current[1]!).catch((err: Error) => {
      if (!IMMUTABLE.test(err.message)) throw err;
      needRestart.push(key);
    });
  }
  if (needRestart.length > 0)
    throw new DredisError(
      ErrorCodes.NEEDS_RESTART,
      `${needRestart.join(", ")} cannot change while Redis runs; nothing was changed. ` +
        `It needs every node restarted, one at a time: ${rollHint}`,
    );
}

/** CONFIG SET on every node (all settings at once per node), then CONFIG REWRITE. */
export async function applyLiveSettings(
  topology: Topology,
  settings: Record<string, string>,
  options: AdminOptions & { rollHint?: string } = {},
): Promise<void> {
  const keys = Object.keys(settings);
  if (keys.length === 0) return;
  await withPool(options, async (pool) => {
    const nodes = allNodes(topology);
    await checkLiveSettings(pool, nodes[0]!, settings, options.rollHint);
    if (options.dryRun) return;
    for (const node of nodes) {
      await pool.get(node).call("CONFIG", "SET", ...keys.flatMap((k) => [k, settings[k]!]));
      await rewrite(pool, node, options);
    }
    report(options, {
      type: "step",
      message: `set live on ${nodes.length} nodes: ${keys.map((k) => `${k}=${JSON.stringify(settings[k])}`).join(" ")}`,
    });
  });
}

async function rewrite(pool: NodePool, node: string, options: AdminOptions): Promise<void> {
  // A node started without a config file cannot rewrite one; the live value still holds.
  await pool
    .get(node)
    .call("CONFIG", "REWRITE")
    .catch((err: Error) =>
      report(options, {
        type: "warning",
        message: `${node}: CONFIG REWRITE failed (${err.message}); the change holds until it restarts`,
      }),
    );
}

/**
 * Whether every node accepts `password`. A step 1 run again once the rotation is done (the
 * previous password left in the deployment's config) connects with the new password instead of
 * the dropped one, and changes nothing.
 */
export async function everyNodeAccepts(
  topology: Topology,
  password: string,
  options: AdminOptions,
): Promise<boolean> {
  return withPool({ ...options, password }, async (pool) => {
    for (const node of allNodes(topology)) {
      const ok = await pool
        .get(node)
        .ping()
        .then(
          () => true,
          () => false,
        );
      if (!ok) return false;
    }
    return true;
  });
}

/**
 * Step 1 of a rotation: every node accepts `password` as well as the one it had, replicas
 * authenticate to their master with the new one, and both persist. Connects with
 * `options.password` (the password the nodes accept now). Idempotent.
 */
export async function addPassword(
  topology: Topology,
  password: string,
  options: AdminOptions,
): Promise<void> {
  const user = options.username ?? "default";
  await withPool(options, async (pool) => {
    const nodes = allNodes(topology);
    for (const node of nodes) {
      const client = pool.get(node);
      await client.call("ACL", "SETUSER", user, `>${password}`);
      // Masters accept both now, so a replica may reconnect with either.
      await client.call(
        "CONFIG",
        "SET",
        "masterauth",
        password,
        ...(options.username ? ["masteruser", user] : []),
      );
      await rewrite(pool, node, options);
    }
    report(options, {
      type: "step",
      message: `${nodes.length} nodes accept the new password as well as the previous one; drop the previous one once every client uses the new`,
    });
  });
}

/**
 * Step 2, run only after every client (the proxies) uses the new password: the nodes accept only
 * `password`. Connects with it, so a node that did not take step 1 is named and left unchanged.
 */
export async function dropPreviousPasswords(
  topology: Topology,
  password: string,
  options: AdminOptions,
): Promise<void> {
  const user = options.username ?? "default";
  await withPool({ ...options, password }, async (pool) => {
    const nodes = allNodes(topology);
    for (const node of nodes)
      await pool
        .get(node)
        .ping()
        .catch((err: Error) => {
          throw new DredisError(
            ErrorCodes.SETTING,
            `node ${node} does not accept the new password (${pool.lastError(node) ?? err.message}); nothing was dropped. ` +
              "Run the first step (--previous-password-file) first",
          );
        });
    for (const node of nodes) {
      const client = pool.get(node);
      if (user === "default") await client.call("CONFIG", "SET", "requirepass", password);
      else await client.call("ACL", "SETUSER", user, "resetpass", `>${password}`);
      await rewrite(pool, node, options);
    }
    report(options, { type: "step", message: `${nodes.length} nodes accept only the new password` });
  });
}
