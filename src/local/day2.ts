/**
 * Day-2 changes to a running local platform: the roll (every node restarted one at a time, with
 * settings that need a restart) and live changes (settings, a two-step password rotation). Each
 * change is recorded in the state, so the next `up`, a new shard and a later roll keep it.
 */
import { join } from "node:path";
import { Redis } from "ioredis";
import { DredisError, ErrorCodes } from "../errors.ts";
import {
  addPassword,
  applyLiveSettings,
  dropPreviousPasswords,
  rollCluster,
  type ProgressEvent,
  type RollResult,
} from "../cluster/admin/index.ts";
import {
  requireRunning,
  startNode,
  stopPid,
  proxyConfigPath,
  topologyOf,
  writeProxyConfig,
  writeState,
  type LocalState,
} from "./platform.ts";
import { localClientTls } from "../tls/local.ts";
import type { ReadFromSetting } from "../proxy/upstream/read-from.ts";

/**
 * Restarts every node, one at a time (replicas first, each master after handing over to a
 * caught-up replica), with `settings` written into each node's redis.conf just before its
 * restart: how the local platform takes a setting that needs a restart.
 */
export async function roll(
  dir: string,
  options: {
    settings?: Record<string, string>;
    allowDowntime?: boolean;
    onProgress?: (e: ProgressEvent) => void;
  } = {},
): Promise<RollResult> {
  const state = await requireRunning(dir);
  const topology = topologyOf(state);
  const admin = {
    onProgress: options.onProgress,
    password: state.password,
    tls: localClientTls(state.tls),
    allowDowntime: options.allowDowntime,
  };
  if (options.settings && Object.keys(options.settings).length > 0) {
    // A name redis-server does not know would stop the first node restarted from starting again.
    await refuseUnknownSettings(state, options.settings);
    // Kept with the state once the first node restarts with them (a refused roll changes nothing).
    state.settings = { ...state.settings, ...options.settings };
  }
  const byAddress = new Map(state.nodes.map((n) => [`${state.host}:${n.port}`, n]));
  return rollCluster(
    topology,
    async (address) => {
      const node = byAddress.get(address)!;
      await stopPid(node.pid);
      node.pid = await startNode(node, state);
      await writeState(dir, state);
    },
    admin,
  );
}

async function refuseUnknownSettings(state: LocalState, settings: Record<string, string>): Promise<void> {
  const node = state.nodes[0]!;
  const client = new Redis({
    host: state.host,
    port: node.port,
    password: state.password,
    tls: localClientTls(state.tls),
    lazyConnect: true,
  });
  try {
    await client.connect();
    for (const key of Object.keys(settings)) {
      if (["requirepass", "masterauth", "masteruser"].includes(key))
        throw new DredisError(
          ErrorCodes.SETTING,
          `${key} is not changed as a setting; rotate the password with: dredis local set --password-file <file>`,
        );
      const found = (await client.call("CONFIG", "GET", key)) as string[];
      if (found.length === 0)
        throw new DredisError(
          ErrorCodes.SETTING,
          `"${key}" is not a redis.conf setting this Redis knows; nothing was changed`,
        );
    }
  } finally {
    client.disconnect();
  }
}

export interface SetOptions {
  /** redis.conf settings to change live on every node (refused if one needs a restart: use `roll`). */
  settings?: Record<string, string>;
  /** Step 1 of a rotation: nodes accept this password too, and the proxy is told to use it. */
  password?: string;
  /** Step 2: nodes accept only the current password. */
  dropPreviousPassword?: boolean;
  /** The proxy's ACL users, replacing the current ones (the proxy reloads its config). */
  users?: Record<string, string>;
  /** The proxy's `readFrom`, replacing the current one (the proxy reloads its config). */
  readFrom?: ReadFromSetting;
  onProgress?: (e: ProgressEvent) => void;
}

/**
 * Changes a running platform live, and records the change so the next `up`, a new shard and a
 * roll keep it. A password rotation takes two calls: the new password (both accepted, the proxy
 * reloads its config), then `dropPreviousPassword` once the clients use the new one.
 */
export async function set(dir: string, change: SetOptions): Promise<LocalState> {
  const state = await requireRunning(dir);
  const topology = topologyOf(state);
  const admin = { onProgress: change.onProgress, password: state.password, tls: localClientTls(state.tls) };
  if (change.password !== undefined && change.dropPreviousPassword)
    throw new DredisError(
      ErrorCodes.LOCAL_ARGS,
      "a new password and --drop-previous-password are two steps: set the password, move the clients to it, then drop the previous one",
    );
  if (change.settings && Object.keys(change.settings).length > 0) {
    await applyLiveSettings(topology, change.settings, {
      ...admin,
      rollHint: `dredis local roll --dir ${dir} ${Object.entries(change.settings)
        .map(([k, v]) => `--set ${k}=${v === "" ? '""' : v}`)
        .join(" ")}`,
    });
    state.settings = { ...state.settings, ...change.settings };
    await writeState(dir, state);
  }
  if (change.password !== undefined && change.password !== state.password) {
    if (state.password === undefined)
      throw new DredisError(
        ErrorCodes.LOCAL_ARGS,
        `the platform in ${dir} runs without a password, and adding one refuses clients that have none at once; ` +
          `start a platform with one: dredis local up --dir <new-dir> --password-file <file>`,
      );
    if (state.previousPassword !== undefined)
      throw new DredisError(
        ErrorCodes.LOCAL_ARGS,
        `a rotation is in progress (the nodes still accept the previous password); finish it first: dredis local set --dir ${dir} --drop-previous-password`,
      );
    await addPassword(topology, change.password, admin);
    state.previousPassword = state.password;
    state.password = change.password;
    await writeState(dir, state);
    await writeProxyConfig(dir, state);
    // The proxy host re-reads its config on SIGHUP: new backend connections use the new password.
    await reloadProxyHost(dir, state);
  }
  if (change.users !== undefined) {
    state.users = change.users;
    await writeState(dir, state);
    await writeProxyConfig(dir, state);
    await reloadProxyHost(dir, state);
  }
  if (change.readFrom !== undefined) {
    state.proxy.readFrom = change.readFrom;
    await writeState(dir, state);
    await writeProxyConfig(dir, state);
    await reloadProxyHost(dir, state);
  }
  if (change.dropPreviousPassword && state.previousPassword !== undefined) {
    await dropPreviousPasswords(topology, state.password!, admin);
    delete state.previousPassword;
    await writeState(dir, state);
  }
  return state;
}

/**
 * Sends the proxy host SIGHUP and waits until it has re-read its config (its /status counts the
 * reloads it finished): the step after this one (dropping the previous password, say) must not
 * run before the host uses what the new config says. Throws with the host's reason when it
 * refused the new config. A host that does not count reloads (an earlier version) gets the
 * signal alone.
 */
async function reloadProxyHost(dir: string, state: LocalState): Promise<void> {
  const url = `http://127.0.0.1:${state.proxy.adminPort}/status`;
  const reloads = async (): Promise<{ done: number; error?: string } | undefined> =>
    ((await (await fetch(url)).json()) as { reloads?: { done: number; error?: string } }).reloads;
  const before = await reloads().catch(() => undefined);
  process.kill(state.proxy.pid, "SIGHUP");
  if (before === undefined) return;
  const deadline = Date.now() + RELOAD_TIMEOUT_MS;
  while (true) {
    const now = await reloads().catch(() => undefined);
    if (now !== undefined && now.done > before.done) {
      if (now.error !== undefined)
        throw new DredisError(
          ErrorCodes.PROXY_RELOAD,
          `the proxy host refused its new config (${proxyConfigPath(dir)}): ${now.error}; it runs on the old one`,
        );
      return;
    }
    if (Date.now() > deadline)
      throw new DredisError(
        ErrorCodes.PROXY_RELOAD,
        `the proxy host (pid ${state.proxy.pid}) did not re-read its config within ${RELOAD_TIMEOUT_MS / 1000} s; see ${join(dir, "proxy.log")}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

const RELOAD_TIMEOUT_MS = 30_000;
