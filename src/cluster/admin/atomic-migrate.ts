/**
 * Atomic slot migration (Valkey 9): `CLUSTER MIGRATESLOTS SLOTSRANGE a b ... NODE id` on the
 * source, which streams a forked snapshot of the slots and then their live writes to the target,
 * pauses writes briefly and hands the slots over in one ownership change. No ASK, no key-by-key
 * MIGRATE, no slot left half open: a job either moves all its slots or none.
 *
 * - Batches: the moves of one source -> target pair, in ranges of consecutive slots, at most
 *   `atomicSlotsPerBatch` slots per job; jobs of different pairs run at the same time, but a node
 *   takes part in at most `atomicJobsPerNode` (1) at once. The source's write pause at the handoff
 *   is server-wide (every client write to it waits, not only the moving slots'), and it lasts until
 *   the target has taken the slots. With jobs sharing a node, client requests waited behind the
 *   target loading three snapshots at once, or the source forking for its next job (up to 605 ms
 *   on a loaded machine against 368 ms with one job per node: bench/README-migration.md, run C).
 * - Progress: each job's state from `CLUSTER GETSLOTMIGRATIONS` on its source; bytes from the
 *   sources' `total_net_cluster_slot_export_bytes` (GETSLOTMIGRATIONS has no byte count of its own,
 *   only what is still queued: `remaining_repl_size`).
 * - Failure: a failed job is started again after a backoff, at most `atomicMaxTries` times
 *   (valkey#4545: under heavy writes to the moving slots a job can fail every time), then the run
 *   stops with the slots, the tries and Valkey's own message.
 * - Failover: a job of a shard whose primary changed mid-run (the source or the target was demoted
 *   to a replica) fails, or MIGRATESLOTS is refused ("can only be used on primary nodes"). The
 *   demoted node names its new primary; the rest of the run moves the shard's slots with it (that
 *   job is tried again at once, without counting a try). A primary that cannot be followed stops
 *   the run naming the shard, the old and the new primary.
 * - Cancellation: on abort (Ctrl-C, SIGTERM) or a failure, `CLUSTER CANCELSLOTMIGRATIONS` on every
 *   source with a job of ours in flight; the slots stay with their source, nothing is half done.
 * - Resume: jobs outlive the dredis that started them. A new run first waits for jobs still in
 *   flight on any node (`settleAtomicMigrations`), then plans from the cluster as it is.
 */
import { DredisError, ErrorCodes, AtomicMigrationErrors } from "../../errors.ts";
import { clusterEngines, hasAtomicSlotMigration } from "../engine.ts";
import type { MigrationContext, MigrationResult } from "./migrate.ts";
import type { NodePool } from "./node-pool.ts";
import { checkPrimary, primaryChangedError, type PlannedPrimary } from "./primary-change.ts";
import { defaults, report, type AdminOptions } from "./options.ts";
import type { SlotMove } from "./plan.ts";

/** How often a job's state is read while it runs. */
const POLL_MS = 100;
/** How often byte progress is reported. */
const BYTES_EVERY_MS = 500;
/** Backoff before the next try of a failed job: doubling from this, at most the cap. */
const RETRY_BASE_MS = 1_000;
const RETRY_CAP_MS = 15_000;
/** A job that MIGRATESLOTS accepted must show in GETSLOTMIGRATIONS within this. */
const JOB_APPEAR_MS = 10_000;

export type SlotMigrationMethod = "atomic" | "legacy";

/** One entry of `CLUSTER GETSLOTMIGRATIONS`. */
export interface SlotMigrationJob {
  name: string;
  operation: "EXPORT" | "IMPORT";
  /** "0-99 200-299", as Valkey prints it. */
  slotRanges: string;
  targetNode: string;
  sourceNode: string;
  state: string;
  message: string;
  /** Bytes of the slots' writes still queued for the target. */
  remainingReplBytes: number;
}

const TERMINAL = new Set(["success", "failed", "cancelled"]);
export const isTerminal = (job: SlotMigrationJob): boolean => TERMINAL.has(job.state);

/** Parses `CLUSTER GETSLOTMIGRATIONS` (RESP2: an array of flat field/value arrays). */
export function parseSlotMigrations(reply: unknown): SlotMigrationJob[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry: unknown) => {
    const fields = new Map<string, string>();
    const list = Array.isArray(entry) ? entry : [];
    for (let i = 0; i + 1 < list.length; i += 2) fields.set(String(list[i]), String(list[i + 1]));
    return {
      name: fields.get("name") ?? "",
      operation: fields.get("operation") === "IMPORT" ? "IMPORT" : "EXPORT",
      slotRanges: fields.get("slot_ranges") ?? "",
      targetNode: fields.get("target_node") ?? "",
      sourceNode: fields.get("source_node") ?? "",
      state: fields.get("state") ?? "",
      message: fields.get("message") ?? "",
      remainingReplBytes: Number(fields.get("remaining_repl_size") ?? 0) || 0,
    };
  });
}

/** Consecutive slots as [first, last] ranges, in order. */
export function toRanges(slots: readonly number[]): [number, number][] {
  const sorted = [...slots].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const slot of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && slot === last[1] + 1) last[1] = slot;
    else ranges.push([slot, slot]);
  }
  return ranges;
}

/** "0-99 200-299" to the slots it names. */
export function slotsOfRanges(text: string): number[] {
  const slots: number[] = [];
  for (const part of text.split(" ").filter(Boolean)) {
    const [a, b = a] = part.split("-").map(Number);
    for (let s = a!; s <= b!; s++) slots.push(s);
  }
  return slots;
}

const describeRanges = (ranges: readonly [number, number][]): string =>
  ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");

/**
 * Which method moves the slots: atomic when `slotMigration` allows it and every reachable node
 * runs an engine with MIGRATESLOTS (a mixed cluster cannot: the target must speak SYNCSLOTS).
 */
export async function chooseMigrationMethod(
  pool: NodePool,
  addresses: readonly string[],
  options: AdminOptions,
): Promise<SlotMigrationMethod> {
  const wanted = options.slotMigration ?? "auto";
  if (wanted === "legacy" || addresses.length === 0) return "legacy";
  const engines = await clusterEngines(addresses, (a) => pool.get(a));
  const without = [...engines].filter(([, e]) => !hasAtomicSlotMigration(e));
  if (without.length === 0) return "atomic";
  if (wanted === "atomic")
    throw new DredisError(
      ErrorCodes.ATOMIC_UNSUPPORTED,
      AtomicMigrationErrors.unsupported(without.map(([a, e]) => `${a} (${e.engine} ${e.version})`)),
    );
  return "legacy";
}

/** The jobs on a node, or none when it cannot say (Redis, unreachable). */
async function jobsOn(pool: NodePool, address: string): Promise<SlotMigrationJob[]> {
  try {
    return parseSlotMigrations(await pool.get(address).call("CLUSTER", "GETSLOTMIGRATIONS"));
  } catch {
    return [];
  }
}

/**
 * Waits until no node has an export job in flight (one a previous, killed run started), so the
 * plan is made from settled ownership. Bounded by `agreementTimeoutMs` per job seen stuck.
 */
export async function settleAtomicMigrations(
  pool: NodePool,
  addresses: readonly string[],
  options: AdminOptions,
): Promise<void> {
  let announced = false;
  const timeoutMs = options.agreementTimeoutMs ?? defaults.agreementTimeoutMs;
  let lastChange = Date.now();
  let lastSeen = "";
  while (true) {
    const running = (await Promise.all(addresses.map((a) => jobsOn(pool, a))))
      .flat()
      .filter((j) => j.operation === "EXPORT" && !isTerminal(j));
    if (running.length === 0) return;
    const seen = running.map((j) => `${j.name}:${j.state}`).join(",");
    if (seen !== lastSeen) {
      lastSeen = seen;
      lastChange = Date.now();
    }
    if (!announced) {
      announced = true;
      report(options, {
        type: "step",
        message: `waiting for ${running.length} atomic slot migration(s) already in flight (slots ${running.map((j) => j.slotRanges).join(" ")}) to finish before planning`,
      });
    }
    if (Date.now() - lastChange > timeoutMs)
      throw new DredisError(ErrorCodes.ATOMIC_MIGRATION, AtomicMigrationErrors.stuck(running, timeoutMs));
    options.signal?.throwIfAborted();
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Batch {
  moves: SlotMove[];
  ranges: [number, number][];
}

/** Moves per source -> target pair, in ranges of consecutive slots, `size` slots per batch, pairs interleaved. */
export function atomicBatches(moves: readonly SlotMove[], size: number): Batch[] {
  const byPair = new Map<string, SlotMove[]>();
  for (const move of moves) {
    const pair = `${move.fromId}>${move.toId}`;
    if (!byPair.has(pair)) byPair.set(pair, []);
    byPair.get(pair)!.push(move);
  }
  const perPair = [...byPair.values()].map((list) => {
    const sorted = [...list].sort((a, b) => a.slot - b.slot);
    const chunks: Batch[] = [];
    for (let i = 0; i < sorted.length; i += size) {
      const chunk = sorted.slice(i, i + size);
      chunks.push({ moves: chunk, ranges: toRanges(chunk.map((m) => m.slot)) });
    }
    return chunks;
  });
  const batches: Batch[] = [];
  for (let round = 0; perPair.some((chunks) => round < chunks.length); round++)
    for (const chunks of perPair) if (round < chunks.length) batches.push(chunks[round]!);
  return batches;
}

interface Run {
  done: MigrationResult;
  movedKeys: number;
  totalKeys: number;
  slotsTotal: number;
  /** Sources with a job of this run in flight (cancelled on abort or failure). */
  active: Map<string, number>;
  /** Bytes each running job still has queued for its target (GETSLOTMIGRATIONS remaining_repl_size). */
  pendingRepl: Map<string, number>;
  failure: Error | null;
  stop: AbortController;
  /** Primaries demoted during the run, by node id: the shard's primary that took over. */
  successors: Map<string, { id: string; address: string; from: string }>;
}

/** The current primary for a primary of the plan (following every failover seen so far). */
function follow(run: Run, id: string, address: string): { id: string; address: string } {
  for (let next = run.successors.get(id), hops = 0; next && hops < 16; next = run.successors.get(id), hops++)
    ({ id, address } = next);
  return { id, address };
}

/** The current address for an address of the plan. */
function followAddress(run: Run, address: string): string {
  for (const [id, next] of run.successors) if (next.from === address) return follow(run, id, address).address;
  return address;
}

/** The batch with its source and target replaced by their shards' current primaries. */
function rebase(run: Run, batch: Batch): Batch {
  if (run.successors.size === 0) return batch;
  const moves = batch.moves.map((m) => {
    const from = follow(run, m.fromId, m.fromAddress);
    const to = follow(run, m.toId, m.toAddress);
    return { ...m, fromId: from.id, fromAddress: from.address, toId: to.id, toAddress: to.address };
  });
  return { moves, ranges: batch.ranges };
}

/** Executes the moves with MIGRATESLOTS; resolves with the moves done (all of them) or throws. */
export async function migrateSlotsAtomic(
  ctx: MigrationContext,
  moves: readonly SlotMove[],
): Promise<MigrationResult> {
  const { options, pool } = ctx;
  const perNode = options.atomicJobsPerNode ?? defaults.atomicJobsPerNode;
  // Checked before any job starts: 0 would wait forever for a free node.
  if (!Number.isInteger(perNode) || perNode < 1)
    throw new DredisError(
      ErrorCodes.ATOMIC_MIGRATION,
      `atomicJobsPerNode is ${perNode}: it must be a whole number of 1 or more (how many MIGRATESLOTS jobs one node takes part in at once); nothing was moved`,
    );
  const started = Date.now();
  const totalKeys = moves.reduce((sum, m) => sum + m.keys, 0);
  const totalBytes = moves.reduce((sum, m) => sum + m.bytes, 0);
  report(options, { type: "migration-start", slots: moves.length, keys: totalKeys, bytes: totalBytes });
  const batches = atomicBatches(
    moves,
    options.atomicSlotsPerBatch ?? options.slotsPerBatch ?? defaults.atomicSlotsPerBatch,
  );
  const run: Run = {
    done: [],
    movedKeys: 0,
    totalKeys,
    slotsTotal: moves.length,
    active: new Map(),
    pendingRepl: new Map(),
    failure: null,
    stop: new AbortController(),
    successors: new Map(),
  };
  const onAbort = () => run.stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const sources = [...new Set(moves.map((m) => m.fromAddress))];
  const bytes = bytesReporter(pool, sources, totalBytes, run, options);
  const nodes = nodeSlots(batches, perNode, run.stop.signal, (a) => followAddress(run, a));
  try {
    const workers = Array.from({ length: options.parallelBatches ?? defaults.parallelBatches }, async () => {
      for (let batch = await nodes.next(); batch; batch = await nodes.next()) {
        try {
          await migrateBatch(ctx, run, batch);
        } catch (err) {
          run.failure ??= err as Error;
          run.stop.abort();
        } finally {
          nodes.release(batch);
        }
      }
    });
    await Promise.all(workers);
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await bytes.stop();
  }
  if (run.failure || options.signal?.aborted) {
    // Both throw below; first make sure no job of ours goes on without us.
    await cancelJobs(pool, [...run.active.keys()], options);
    options.signal?.throwIfAborted();
    throw run.failure;
  }
  report(options, {
    type: "migration-done",
    slots: run.done.length,
    keys: run.movedKeys,
    seconds: (Date.now() - started) / 1000,
  });
  return run.done;
}

/**
 * Hands out the batches in order, skipping one whose source or target already takes part in
 * `perNode` running jobs (the next batch of another pair goes first); waits when every batch
 * left is so held. Undefined when none is left or the run stops.
 */
function nodeSlots(
  batches: Batch[],
  perNode: number,
  signal: AbortSignal,
  current: (address: string) => string,
): { next(): Promise<Batch | undefined>; release(batch: Batch): void } {
  const jobs = new Map<string, number>();
  // The nodes a batch was counted against, released the same even if a failover moved them since.
  const held = new Map<Batch, string[]>();
  const ends = (b: Batch) => [current(b.moves[0]!.fromAddress), current(b.moves[0]!.toAddress)];
  let wake: (() => void)[] = [];
  const wakeAll = () => {
    const list = wake;
    wake = [];
    for (const w of list) w();
  };
  signal.addEventListener("abort", wakeAll, { once: true });
  return {
    async next() {
      while (batches.length > 0 && !signal.aborted) {
        const i = batches.findIndex((b) => ends(b).every((a) => (jobs.get(a) ?? 0) < perNode));
        if (i >= 0) {
          const [batch] = batches.splice(i, 1);
          held.set(batch!, ends(batch!));
          for (const a of held.get(batch!)!) jobs.set(a, (jobs.get(a) ?? 0) + 1);
          return batch;
        }
        await new Promise<void>((resolve) => wake.push(resolve));
      }
      return undefined;
    },
    release(batch) {
      for (const a of held.get(batch) ?? []) jobs.set(a, (jobs.get(a) ?? 1) - 1);
      held.delete(batch);
      wakeAll();
    },
  };
}

/** Cancels every export job on the given sources (a job of another run there goes too: said in the step). */
async function cancelJobs(pool: NodePool, sources: string[], options: AdminOptions): Promise<void> {
  if (sources.length === 0) return;
  report(options, {
    type: "step",
    message: `cancelling the atomic slot migrations in flight on ${sources.join(", ")} (CLUSTER CANCELSLOTMIGRATIONS); their slots stay with their source`,
  });
  await Promise.all(
    sources.map((address) =>
      pool
        .get(address)
        .call("CLUSTER", "CANCELSLOTMIGRATIONS")
        .catch(() => {}),
    ),
  );
}

/** Reports bytes sent by the sources (their export byte counters, since the start) every BYTES_EVERY_MS. */
function bytesReporter(
  pool: NodePool,
  sources: string[],
  totalBytes: number,
  run: Run,
  options: AdminOptions,
): { stop(): Promise<void> } {
  const base = new Map<string, number>();
  const read = async (address: string): Promise<number | undefined> => {
    try {
      const info = String(await pool.get(address).info("stats"));
      const match = /total_net_cluster_slot_export_bytes:(\d+)/.exec(info);
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined;
    }
  };
  const tick = async () => {
    let sent = 0;
    for (const address of sources) {
      const now = await read(address);
      if (now === undefined) continue;
      if (!base.has(address)) base.set(address, now);
      sent += now - base.get(address)!;
    }
    report(options, {
      type: "bytes-moved",
      bytesSent: sent,
      bytesPlanned: totalBytes,
      slotsDone: run.done.length,
      slotsTotal: run.slotsTotal,
      pendingReplBytes: [...run.pendingRepl.values()].reduce((a, b) => a + b, 0),
    });
  };
  const first = Promise.all(sources.map(async (a) => base.set(a, (await read(a)) ?? 0)));
  const timer = setInterval(() => void tick(), BYTES_EVERY_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await first;
      await tick();
    },
  };
}

/** Runs one batch to success, trying again after a failure (bounded), or throws. */
async function migrateBatch(ctx: MigrationContext, run: Run, batch: Batch): Promise<void> {
  const { pool, options } = ctx;
  const maxTries = options.atomicMaxTries ?? defaults.atomicMaxTries;
  const label = describeRanges(batch.ranges);
  for (const move of batch.moves)
    report(options, { type: "slot-start", slot: move.slot, from: move.from, to: move.to });
  const messages: string[] = [];
  let pending = rebase(run, batch);
  let first = pending.moves[0]!;
  let primaryChanges = 0;
  for (let attempt = 1; ; attempt++) {
    run.stop.signal.throwIfAborted();
    const outcome = await runJob(ctx, run, pending);
    if (outcome.state === "success") break;
    run.stop.signal.throwIfAborted();
    // Valkey fails a job whose source or target was demoted, and refuses MIGRATESLOTS on a
    // replica: after a failover, go on with the shards' new primaries, at once.
    const changed = await followPrimaries(ctx, run, pending);
    if (changed) {
      if (++primaryChanges > maxTries)
        throw new DredisError(
          ErrorCodes.ATOMIC_MIGRATION,
          `the primaries of ${first.from} and ${first.to} changed ${primaryChanges} times during the move of slots ${describeRanges(pending.ranges)}; ` +
            "wait until the shards have settled (dredis cluster check --topology <topology>), then re-run the same command",
        );
      pending = rebase(run, pending);
      first = pending.moves[0]!;
    }
    // A job that failed after the handoff still moved its slots: only those left are tried again.
    const left = await slotsStillOwned(pool, first.fromAddress, pending.moves).catch((err: Error) => {
      throw new DredisError(
        ErrorCodes.ATOMIC_MIGRATION,
        AtomicMigrationErrors.sourceLost(
          `${first.from} (${first.fromAddress})`,
          describeRanges(pending.ranges),
          `${outcome.message}; ${pool.lastError(first.fromAddress) ?? err.message}`,
        ),
      );
    });
    if (left.length === 0) break;
    pending = { moves: left, ranges: toRanges(left.map((m) => m.slot)) };
    if (changed) {
      attempt--;
      continue;
    }
    messages.push(outcome.message || outcome.state);
    if (attempt >= maxTries)
      throw new DredisError(
        ErrorCodes.ATOMIC_MIGRATION,
        AtomicMigrationErrors.failed(
          { from: `${first.from} (${first.fromAddress})`, to: `${first.to} (${first.toAddress})` },
          describeRanges(pending.ranges),
          attempt,
          messages,
        ),
      );
    const delay = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
    report(options, {
      type: "warning",
      message: `atomic migration of slots ${label} from ${first.from} to ${first.to} ended "${outcome.state}" (try ${attempt} of ${maxTries}): ${outcome.message || "no message"}; trying again in ${delay / 1000} s`,
    });
    await sleep(delay, run.stop.signal);
  }
  const keys = batch.moves.reduce((sum, m) => sum + m.keys, 0);
  run.movedKeys += keys;
  report(options, {
    type: "keys-moved",
    slot: first.slot,
    moved: keys,
    totalMoved: run.movedKeys,
    totalKeys: run.totalKeys,
  });
  for (const move of batch.moves) {
    run.done.push({ slot: move.slot, from: move.from, to: move.to, keys: move.keys });
    report(options, {
      type: "slot-done",
      slot: move.slot,
      from: move.from,
      to: move.to,
      slotsDone: run.done.length,
      slotsTotal: run.slotsTotal,
    });
  }
}

/**
 * Checks that the batch's source and target are still their shards' primaries; records the new
 * primary of each that is not (warning once per node). True when one changed; throws when a
 * changed primary cannot be followed.
 */
async function followPrimaries(ctx: MigrationContext, run: Run, batch: Batch): Promise<boolean> {
  const first = batch.moves[0]!;
  const ends: PlannedPrimary[] = [
    { shard: first.from, id: first.fromId, address: first.fromAddress },
    { shard: first.to, id: first.toId, address: first.toAddress },
  ];
  let changed = false;
  for (const planned of ends) {
    if (run.successors.has(planned.id)) {
      changed = true;
      continue;
    }
    const check = await checkPrimary(ctx.pool, planned);
    if (!check.changed) continue;
    if (check.id === undefined)
      throw primaryChangedError(
        ErrorCodes.ATOMIC_MIGRATION,
        [{ planned, now: check.address, detail: check.detail }],
        describeRanges(batch.ranges),
        "An atomic job moves all its slots or none, so they are whole on one side; every other move of this run was cancelled or finished.",
      );
    if (run.successors.has(planned.id)) {
      changed = true;
      continue;
    }
    run.successors.set(planned.id, { id: check.id, address: check.address, from: planned.address });
    changed = true;
    report(ctx.options, {
      type: "warning",
      message: `shard ${planned.shard}'s primary changed from ${planned.address} to ${check.address} during the move (a failover); moving its slots with ${check.address} from now on`,
    });
  }
  return changed;
}

/** The batch's moves whose slot the source still owns (its own view, from CLUSTER NODES). */
async function slotsStillOwned(pool: NodePool, address: string, moves: SlotMove[]): Promise<SlotMove[]> {
  const nodes = String(await pool.get(address).call("CLUSTER", "NODES"));
  const myself = nodes.split("\n").find((line) => line.split(" ")[2]?.includes("myself"));
  const owned = new Set<number>();
  for (const part of myself?.split(" ").slice(8) ?? []) {
    if (part.startsWith("[")) continue;
    const [a, b = a] = part.split("-").map(Number);
    for (let s = a!; s <= b!; s++) owned.add(s);
  }
  return moves.filter((m) => owned.has(m.slot));
}

/** Starts one MIGRATESLOTS job and follows it to its end state. */
async function runJob(
  ctx: MigrationContext,
  run: Run,
  batch: Batch,
): Promise<{ state: string; message: string }> {
  const { pool } = ctx;
  const first = batch.moves[0]!;
  const address = first.fromAddress;
  const source = pool.get(address);
  const before = new Set((await jobsOn(pool, address)).map((j) => j.name));
  const wanted = batch.moves
    .map((m) => m.slot)
    .sort((a, b) => a - b)
    .join(",");
  try {
    await source.call(
      "CLUSTER",
      "MIGRATESLOTS",
      "SLOTSRANGE",
      ...batch.ranges.flatMap(([a, b]) => [a, b]),
      "NODE",
      first.toId,
    );
  } catch (err) {
    const text = (err as Error).message;
    if ((err as Error).name !== "ReplyError")
      throw new DredisError(
        ErrorCodes.ATOMIC_MIGRATION,
        AtomicMigrationErrors.sourceLost(
          `${first.from} (${address})`,
          describeRanges(batch.ranges),
          pool.lastError(address) ?? text,
        ),
      );
    // Another job (of a run that was killed, or a concurrent tool) holds some of these slots: a
    // failed try, retried after its backoff, by when that job has ended.
    // A source demoted by a failover since the plan: the caller follows the shard's new primary.
    if (/already migrating|not served by this node|span multiple shards|only be used on primary/i.test(text))
      return { state: "refused", message: text };
    throw new DredisError(
      ErrorCodes.ATOMIC_MIGRATION,
      AtomicMigrationErrors.refused(first.from, first.to, describeRanges(batch.ranges), text),
    );
  }
  run.active.set(address, (run.active.get(address) ?? 0) + 1);
  try {
    const appearBy = Date.now() + JOB_APPEAR_MS;
    let name: string | undefined;
    let lastState = "";
    while (true) {
      const jobs = await jobsOn(pool, address);
      const job = name
        ? jobs.find((j) => j.name === name)
        : jobs.find(
            (j) =>
              !before.has(j.name) &&
              j.operation === "EXPORT" &&
              j.targetNode === first.toId &&
              slotsOfRanges(j.slotRanges).join(",") === wanted,
          );
      if (job) {
        name = job.name;
        if (isTerminal(job)) run.pendingRepl.delete(job.name);
        else run.pendingRepl.set(job.name, job.remainingReplBytes);
        if (job.state !== lastState) {
          lastState = job.state;
          report(ctx.options, {
            type: "atomic-job",
            job: job.name,
            from: first.from,
            to: first.to,
            slots: job.slotRanges,
            state: job.state,
          });
        }
        if (isTerminal(job)) return { state: job.state, message: job.message };
      } else if (!name && Date.now() > appearBy) {
        return { state: "lost", message: "the job MIGRATESLOTS accepted never showed in GETSLOTMIGRATIONS" };
      } else if (name) {
        // The log is bounded (cluster-slot-migration-log-max-len) or the node restarted.
        return { state: "lost", message: `job ${name} is no longer listed by its source` };
      }
      // On abort the caller cancels the job; stop following it.
      if (run.stop.signal.aborted) return { state: "cancelled", message: "cancelled by dredis" };
      await sleep(POLL_MS, run.stop.signal).catch(() => {});
    }
  } finally {
    const count = (run.active.get(address) ?? 1) - 1;
    if (count > 0) run.active.set(address, count);
    // Kept while aborting, so the job is cancelled.
    else if (!run.stop.signal.aborted) run.active.delete(address);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
