/**
 * The failover-safe roll: every change that needs a node restarted goes through it. Nodes are
 * restarted one at a time, replicas first; a master only after it handed its slots over to a
 * replica that has caught up (CLUSTER FAILOVER without FORCE: the master pauses writes, the
 * replica applies everything up to the master's offset, then takes over, so no acknowledged
 * write is lost and clients see only a redirect). After each restart the roll waits until the
 * node is back in the cluster, the cluster is ok and (for a replica) the node has synced.
 *
 * `handover` and `waitSynced` are the steps on their own, for platforms that restart nodes
 * themselves (a Kubernetes preStop hook, a container entrypoint): they need only a node's
 * address, not the topology.
 */
import { DredisError, ErrorCodes } from "../../errors.ts";
import type { Topology } from "../topology.ts";
import { isFailed, parseClusterNodes, type NodeEntry } from "./cluster-nodes.ts";
import { readSettled, refuseOnProblems, GATE_REFUSED } from "./gates.ts";
import { withPool, type NodePool } from "./node-pool.ts";
import { defaults, report, type AdminOptions } from "./options.ts";
import { waitForAgreement } from "./wait.ts";

export interface RollOptions extends AdminOptions {
  /** How long a restarted node may take to come back and sync. @default 300000 */
  syncTimeoutMs?: number;
  /** Restart the master of a shard without a replica (its slots are unavailable meanwhile). @default false */
  allowDowntime?: boolean;
}

export interface RollResult {
  /** Every node restarted, in order. */
  restarted: string[];
  /** Each handover: the master that stepped down and the replica that took over. */
  handovers: { from: string; to: string }[];
}

/** Restarts one node, by whatever means the platform has; resolves once the restart was issued. */
export type RestartNode = (address: string) => Promise<void>;

const SYNC_TIMEOUT_MS = 300_000;
/** A manual failover that has not happened within this is retried (Redis gives up on it after 5 s). */
const FAILOVER_ATTEMPT_MS = 10_000;
const FAILOVER_ATTEMPTS = 3;
const POLL_MS = 100;
/** After a handover: how long the former master must see no redirected client, and the bound. */
const QUIET_MS = 500;
const CLIENTS_LEAVE_MS = 10_000;

interface NodeInfo {
  runId: string;
  role: "master" | "slave";
  loading: boolean;
  masterLinkUp: boolean;
  syncing: boolean;
  /** A master's replication offset, or the offset a replica has applied. */
  offset: number;
  clusterOk: boolean;
  view: NodeEntry[];
  self: NodeEntry;
}

async function readNode(pool: NodePool, address: string): Promise<NodeInfo> {
  const client = pool.get(address);
  const [infoText, clusterInfo, nodes] = await Promise.all([
    client.call("INFO", "server", "persistence", "replication"),
    client.call("CLUSTER", "INFO"),
    client.call("CLUSTER", "NODES"),
  ]);
  const info = Object.fromEntries(
    String(infoText)
      .split(/\r?\n/)
      .filter((l) => l.includes(":"))
      .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1)]),
  );
  const view = parseClusterNodes(String(nodes));
  const role = info.role === "slave" ? "slave" : "master";
  return {
    runId: info.run_id ?? "",
    role,
    loading: info.loading === "1",
    masterLinkUp: info.master_link_status === "up",
    syncing: info.master_sync_in_progress === "1",
    offset: Number(role === "slave" ? info.slave_repl_offset : info.master_repl_offset),
    clusterOk: String(clusterInfo).includes("cluster_state:ok"),
    view,
    self: view.find((e) => e.flags.includes("myself"))!,
  };
}

async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * Resolves once the node at `address` is back in the cluster and serving: cluster_state ok on it
 * and on every node it knows, no node flags it as failing, and a replica has its master link up,
 * is neither loading nor syncing, and has applied the master's offset as it was when the link came
 * up. `notRunId` waits for a restart first (the node must answer with another run id).
 */
export async function waitSynced(
  pool: NodePool,
  address: string,
  options: RollOptions & { notRunId?: string } = {},
): Promise<{ offset: number }> {
  const deadline = Date.now() + (options.syncTimeoutMs ?? SYNC_TIMEOUT_MS);
  let waitingFor = "the node to answer";
  let target: number | undefined;
  while (Date.now() < deadline) {
    try {
      const node = await readNode(pool, address);
      if (options.notRunId !== undefined && node.runId === options.notRunId)
        waitingFor = "the node to restart";
      else if (node.loading) waitingFor = "the node to load its data";
      else if (!node.clusterOk) waitingFor = "cluster_state:ok on the node";
      else if (!(await seenHealthyByAll(pool, node))) waitingFor = "every node to see it as healthy, and ok";
      else if (node.role === "master") return { offset: node.offset };
      else if (!node.masterLinkUp || node.syncing) waitingFor = "its master link to be up and the sync done";
      else {
        const masterEntry = node.view.find((e) => e.id === node.self.masterId);
        if (!masterEntry) waitingFor = "its master to be known";
        else {
          target ??= (await readNode(pool, masterEntry.address)).offset;
          if (node.offset >= target) return { offset: node.offset };
          waitingFor = `its offset ${node.offset} to reach the master's ${target}`;
        }
      }
    } catch (err) {
      waitingFor = `the node to answer (${pool.lastError(address) ?? (err as Error).message})`;
      // A connection that saw the node go away has given up; the next read connects afresh.
      pool.drop(address);
    }
    await sleep(POLL_MS, options.signal);
  }
  throw new DredisError(
    ErrorCodes.ROLL,
    `node ${address} did not sync within ${options.syncTimeoutMs ?? SYNC_TIMEOUT_MS} ms (waiting for ${waitingFor}); ` +
      `nothing else was restarted: find out why (its log), then re-run`,
  );
}

/** Every node `node` knows (and that is not failed) reports ok and does not flag it as failing. */
async function seenHealthyByAll(pool: NodePool, node: NodeInfo): Promise<boolean> {
  const others = node.view.filter((e) => e !== node.self && !isFailed(e) && !e.flags.includes("noaddr"));
  for (const other of others) {
    const seen = await readNode(pool, other.address);
    const entry = seen.view.find((e) => e.id === node.self.id);
    if (!seen.clusterOk || !entry || isFailed(entry)) return false;
  }
  return true;
}

/**
 * Hands the slots of the master at `address` over to its most caught-up replica with CLUSTER
 * FAILOVER (no FORCE), and resolves with that replica's address once it is master and every node
 * reports ok. A node that is not a master has nothing to hand over: resolves with undefined.
 */
export async function handover(
  pool: NodePool,
  address: string,
  options: RollOptions = {},
): Promise<string | undefined> {
  const master = await readNode(pool, address);
  if (master.role !== "master" || master.self.slots.length === 0) return undefined;
  const started = Date.now();
  for (let attempt = 1; attempt <= FAILOVER_ATTEMPTS; attempt++) {
    const target = await caughtUpReplica(pool, address, master.self.id, options);
    report(options, {
      type: "step",
      message: `  handing ${address} over to its replica ${target.address} (caught up at offset ${target.offset})`,
    });
    const refused = await pool
      .get(target.address)
      .call("CLUSTER", "FAILOVER")
      .then(
        () => undefined,
        (err: Error) => err.message,
      );
    // Refused, say, while the master is flagged failing: nothing happened, the next attempt may pass.
    const deadline = refused === undefined ? Date.now() + FAILOVER_ATTEMPT_MS : 0;
    while (Date.now() < deadline) {
      await sleep(POLL_MS, options.signal);
      const [now, old] = await Promise.all([
        readNode(pool, target.address).catch(() => undefined),
        readNode(pool, address).catch(() => undefined),
      ]);
      if (now?.role === "master" && old?.role === "slave") {
        await waitSynced(pool, target.address, options);
        report(options, {
          type: "step",
          message: `  ${target.address} is master; ${address} is its replica (${((Date.now() - started) / 1000).toFixed(1)} s)`,
        });
        return target.address;
      }
    }
    report(options, {
      type: "warning",
      message:
        `the failover of ${address} to ${target.address} ` +
        (refused !== undefined
          ? `was refused: ${refused}`
          : `did not happen within ${FAILOVER_ATTEMPT_MS} ms`) +
        ` (attempt ${attempt} of ${FAILOVER_ATTEMPTS})`,
    });
    if (refused !== undefined) await sleep(1_000, options.signal);
  }
  throw new DredisError(
    ErrorCodes.ROLL,
    `master ${address} could not hand over to a replica in ${FAILOVER_ATTEMPTS} attempts; it was not restarted. ` +
      `See its log and its replicas' logs, then re-run (dredis cluster check shows the cluster's state)`,
  );
}

/**
 * After a handover the former master answers writes with MOVED until every proxy and client has
 * learned the new master; stopping it sooner resets the connections of writes still on their way
 * to it ("may or may not have run"). Waits, bounded, until its MOVED count stops growing.
 */
async function waitForClientsToLeave(pool: NodePool, address: string, options: RollOptions): Promise<void> {
  const moved = async () =>
    Number(
      /errorstat_MOVED:count=(\d+)/.exec(String(await pool.get(address).call("INFO", "errorstats")))?.[1] ??
        0,
    );
  const deadline = Date.now() + CLIENTS_LEAVE_MS;
  let last = await moved().catch(() => 0);
  let quietSince = Date.now();
  while (Date.now() < deadline && Date.now() - quietSince < QUIET_MS) {
    await sleep(POLL_MS, options.signal);
    const now = await moved().catch(() => last);
    if (now !== last) [last, quietSince] = [now, Date.now()];
  }
}

/** The replica of `masterId` with the highest offset, once it has applied the master's current offset. */
async function caughtUpReplica(
  pool: NodePool,
  masterAddress: string,
  masterId: string,
  options: RollOptions,
): Promise<{ address: string; offset: number }> {
  const deadline = Date.now() + (options.syncTimeoutMs ?? SYNC_TIMEOUT_MS);
  let reason = "no replica";
  while (Date.now() < deadline) {
    const master = await readNode(pool, masterAddress);
    const replicas = master.view.filter((e) => e.masterId === masterId && !isFailed(e));
    const ready = (
      await Promise.all(
        replicas.map((e) =>
          readNode(pool, e.address).then(
            (info) => ({ address: e.address, info }),
            () => undefined,
          ),
        ),
      )
    ).filter((r) => r !== undefined && r.info.masterLinkUp && !r.info.syncing && !r.info.loading);
    if (ready.length > 0) {
      const best = ready.reduce((a, b) => (b!.info.offset > a!.info.offset ? b : a))!;
      // Offsets equal (or past: writes go on) the master's as read above.
      const offset = (await readNode(pool, best.address)).offset;
      if (offset >= master.offset) return { address: best.address, offset };
      reason = `replica ${best.address} at offset ${offset}, master at ${master.offset}`;
    } else reason = replicas.length === 0 ? "no replica" : "no replica with its link up and synced";
    await sleep(POLL_MS, options.signal);
  }
  throw new DredisError(
    ErrorCodes.ROLL,
    `master ${masterAddress} has no caught-up replica to hand over to (${reason}); it was not restarted`,
  );
}

/**
 * Restarts every node of the topology, one at a time: replicas first, then each master after its
 * handover. Refuses to start on a cluster with problems, and (unless `allowDowntime`) on a shard
 * whose master has no replica.
 */
export async function rollCluster(
  topology: Topology,
  restart: RestartNode,
  options: RollOptions = {},
): Promise<RollResult> {
  return withPool(options, async (pool) => {
    const { state, problems } = await readSettled(pool, topology);
    refuseOnProblems("roll the cluster", problems, () => false);
    const alone = state.shards.filter((s) => s.nodes.length < 2);
    if (alone.length > 0 && !options.allowDowntime)
      throw new DredisError(
        GATE_REFUSED,
        `refusing to roll the cluster: ${alone.map((s) => s.name).join(", ")} ha${alone.length > 1 ? "ve" : "s"} no replica, ` +
          "so restarting its master makes its slots unavailable until it is back.\n" +
          "    fix: add a replica to every shard first, or accept the downtime with --allow-downtime",
      );
    const replicas = state.shards.flatMap((s) =>
      s.nodes.filter((n) => n !== s.master).map((n) => ({ shard: s.name, address: n.address })),
    );
    const masters = state.shards.map((s) => ({ shard: s.name, address: s.master!.address }));
    const order = [...replicas, ...masters];
    const result: RollResult = { restarted: [], handovers: [] };
    const started = Date.now();
    report(options, {
      type: "step",
      message: `roll: ${order.length} nodes, one at a time: ${replicas.length} replicas first, then ${masters.length} masters, each after a handover`,
    });
    for (const [i, node] of order.entries()) {
      options.signal?.throwIfAborted();
      const isMasterStep = i >= replicas.length;
      report(options, {
        type: "step",
        message: `roll [${i + 1}/${order.length}] ${node.shard} ${isMasterStep ? "master" : "replica"} ${node.address}`,
      });
      if (isMasterStep) {
        const to = await handover(pool, node.address, options);
        if (to) result.handovers.push({ from: node.address, to });
        await waitForClientsToLeave(pool, node.address, options);
      }
      const { runId } = await readNode(pool, node.address);
      const restartedAt = Date.now();
      await restart(node.address);
      pool.drop(node.address);
      const { offset } = await waitSynced(pool, node.address, { ...options, notRunId: runId });
      result.restarted.push(node.address);
      report(options, {
        type: "step",
        message: `  restarted and synced (offset ${offset}) in ${((Date.now() - restartedAt) / 1000).toFixed(1)} s`,
      });
    }
    await waitForAgreement(pool, topology, {
      timeoutMs: options.agreementTimeoutMs ?? defaults.agreementTimeoutMs,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    report(options, {
      type: "step",
      message: `roll done: ${result.restarted.length} nodes restarted, ${result.handovers.length} masters handed over, in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    });
    return result;
  });
}
