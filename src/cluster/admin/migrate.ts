/**
 * Executes slot moves online with the native protocol: SETSLOT IMPORTING on the target,
 * SETSLOT MIGRATING on the source, pipelined `MIGRATE ... KEYS` batches until the slot is empty,
 * then SETSLOT NODE on the target, the source and every other master.
 *
 * Slots travel in batches (many slots of one source -> target pair per round trip), and batches
 * of different pairs run at the same time. Every step is idempotent, so the same code finishes a
 * slot that an interrupted run left open: a re-run resumes from whatever state the cluster is in.
 *
 * A failover of the source's or the target's shard mid-run stops the run with an error naming
 * the shard and both primaries: the open slots name the old primary, so they are not followed
 * (the atomic driver, whose jobs are all or nothing, follows the new primary instead).
 */
import type { Redis } from "ioredis";
import { DredisError, ErrorCodes } from "../../errors.ts";
import { defaults, report, type AdminOptions } from "./options.ts";
import type { NodePool } from "./node-pool.ts";
import { splitAddress } from "./node-pool.ts";
import type { SlotMove } from "./plan.ts";
import { databasesWithKeys, migrateTimeoutFor, type BigKey } from "./slot-sizes.ts";
import { Throttle } from "./throttle.ts";
import { migrateSlotsAtomic, type SlotMigrationMethod } from "./atomic-migrate.ts";
import { replicasBehindError, replicasNotInSync, waitForReplicasInSync } from "./replica-sync.ts";
import { checkPrimary, primaryChangedError, type PrimaryChange } from "./primary-change.ts";
import { formatSlots } from "./cluster-state.ts";

/** Keys asked of GETKEYSINSLOT per slot per round. */
const KEYS_PER_ROUND = 1_000;
/** Rounds retried after a CLUSTERDOWN or TRYAGAIN reply (0.5 s apart) before giving up. */
const TRANSIENT_RETRIES = 20;
/** SETSLOT pipelines retried after NOREPLICAS (a replica fell out of sync mid-run), and the wait for it each time. */
const NOREPLICAS_RETRIES = 3;
const NOREPLICAS_WAIT_MS = 60_000;

export interface MigrationContext {
  pool: NodePool;
  /** Addresses of every master, each told the new owner of every moved slot. */
  masters: readonly string[];
  bigKeys: readonly BigKey[];
  options: AdminOptions;
  /** "atomic": Valkey 9 MIGRATESLOTS (atomic-migrate.ts) instead of the steps above. @default "legacy" */
  method?: SlotMigrationMethod;
}

/** The moves actually done, in completion order. */
export type MigrationResult = { slot: number; from: string; to: string; keys: number }[];

export async function migrateSlots(
  ctx: MigrationContext,
  moves: readonly SlotMove[],
): Promise<MigrationResult> {
  if (ctx.method === "atomic") return migrateSlotsAtomic(ctx, moves);
  const { options } = ctx;
  const started = Date.now();
  const totalKeys = moves.reduce((sum, m) => sum + m.keys, 0);
  report(options, {
    type: "migration-start",
    slots: moves.length,
    keys: totalKeys,
    bytes: moves.reduce((sum, m) => sum + m.bytes, 0),
  });
  // Valkey 8+: SETSLOT waits for the master's replicas, so a new shard's replica must have synced.
  await waitForReplicasInSync(
    ctx.pool,
    [...new Set(moves.flatMap((m) => [m.fromAddress, m.toAddress]))],
    options,
  );
  const batches = toBatches(moves, options.slotsPerBatch ?? defaults.slotsPerBatch);
  const run: RunState = {
    done: [],
    movedKeys: 0,
    totalKeys,
    slotsTotal: moves.length,
    throttle: new Throttle(options.maxKeysPerSecond),
  };
  const workers = Array.from({ length: options.parallelBatches ?? defaults.parallelBatches }, async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      options.signal?.throwIfAborted();
      await migrateBatch(ctx, run, batch).catch((err: Error) => explainPrimaryChange(ctx, batch, err));
    }
  });
  await Promise.all(workers);
  report(options, {
    type: "migration-done",
    slots: run.done.length,
    keys: run.movedKeys,
    seconds: (Date.now() - started) / 1000,
  });
  return run.done;
}

interface RunState {
  done: MigrationResult;
  movedKeys: number;
  totalKeys: number;
  slotsTotal: number;
  throttle: Throttle;
}

/** Groups moves by source -> target pair, in plan order, `size` slots per batch. */
function toBatches(moves: readonly SlotMove[], size: number): SlotMove[][] {
  const byPair = new Map<string, SlotMove[]>();
  for (const move of moves) {
    const pair = `${move.fromId}>${move.toId}`;
    if (!byPair.has(pair)) byPair.set(pair, []);
    byPair.get(pair)!.push(move);
  }
  const perPair = [...byPair.values()].map((list) => {
    const chunks: SlotMove[][] = [];
    for (let i = 0; i < list.length; i += size) chunks.push(list.slice(i, i + size));
    return chunks;
  });
  // Round-robin over pairs, so concurrent workers load different nodes.
  const batches: SlotMove[][] = [];
  for (let round = 0; perPair.some((chunks) => round < chunks.length); round++)
    for (const chunks of perPair) if (round < chunks.length) batches.push(chunks[round]!);
  return batches;
}

async function migrateBatch(ctx: MigrationContext, run: RunState, batch: SlotMove[]): Promise<void> {
  const { pool, options } = ctx;
  const first = batch[0]!;
  const source = pool.get(first.fromAddress);
  for (const move of batch)
    report(options, { type: "slot-start", slot: move.slot, from: move.from, to: move.to });

  // Already-done steps answer with these errors on a re-run; anything else is a real failure.
  await setSlots(
    ctx,
    first.toAddress,
    batch.map((m) => ["CLUSTER", "SETSLOT", m.slot, "IMPORTING", m.fromId]),
    /already the owner/,
  );
  await setSlots(
    ctx,
    first.fromAddress,
    batch.map((m) => ["CLUSTER", "SETSLOT", m.slot, "MIGRATING", m.toId]),
    /not the owner/,
  );

  await moveAllDatabases(ctx, run, batch, source);

  // Target first: once it owns the slot, the source can only redirect there (the order redis-cli uses).
  await setSlots(
    ctx,
    first.toAddress,
    batch.map((m) => ["CLUSTER", "SETSLOT", m.slot, "NODE", m.toId]),
  );
  for (let attempt = 0; ; attempt++) {
    try {
      // A master that lost its last slot (through the targets' gossip, maybe of another batch)
      // turns itself into a replica (Redis 7 replica migration): the hand-over is then complete.
      await setSlots(
        ctx,
        first.fromAddress,
        batch.map((m) => ["CLUSTER", "SETSLOT", m.slot, "NODE", m.toId]),
        /only with masters/,
      );
      break;
    } catch (err) {
      // A key reached the source between the last empty GETKEYSINSLOT and now: move it too.
      if (attempt >= 3 || !/still hold keys/.test((err as Error).message)) throw err;
      await moveAllDatabases(ctx, run, batch, source);
    }
  }
  const others = ctx.masters.filter((a) => a !== first.fromAddress && a !== first.toAddress);
  // Other masters also learn the owner by gossip (the target bumped its epoch); telling them
  // directly only shortens the time they redirect with a stale MOVED, so a failure here is not fatal.
  await Promise.all(
    others.map((address) =>
      exec(
        pool.get(address),
        batch.map((m) => ["CLUSTER", "SETSLOT", m.slot, "NODE", m.toId]),
      ).catch(() => {}),
    ),
  );
  for (const move of batch) {
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
 * Moves the batch's keys of every database that has keys on the source (Valkey 9's
 * cluster-databases: a node refuses, or deletes, a slot's keys of any database when it loses it).
 */
async function moveAllDatabases(ctx: MigrationContext, run: RunState, batch: SlotMove[], source: Redis) {
  const dbs = await databasesWithKeys(source);
  // With keys outside database 0, every pipeline selects its own database first, so a connection
  // left in another one (a reconnect between a SELECT and its SELECT 0) never moves the wrong keys.
  const select = dbs.some((db) => db !== 0);
  for (const db of dbs) await moveKeys(ctx, run, batch, source, db, select);
}

/** Moves every key of the batch's slots in database `db` from source to target, until GETKEYSINSLOT is empty. */
async function moveKeys(
  ctx: MigrationContext,
  run: RunState,
  batch: SlotMove[],
  source: Redis,
  db: number,
  select: boolean,
): Promise<void> {
  // Each pipeline runs in `db` and leaves the shared connection in db 0.
  const inDb = (commands: (string | number)[][]) =>
    select ? [["SELECT", db], ...commands, ["SELECT", 0]] : commands;
  const replies = (results: unknown[]) => (select ? results.slice(1, -1) : results);
  const { options } = ctx;
  const first = batch[0]!;
  const { host, port } = splitAddress(first.toAddress);
  const keysPerMigrate = options.keysPerMigrate ?? defaults.keysPerMigrate;
  const big = new Map(
    ctx.bigKeys.filter((k) => k.node === first.fromAddress && k.db === db).map((k) => [k.key, k.bytes]),
  );
  const auth = options.password
    ? options.username
      ? ["AUTH2", options.username, options.password]
      : ["AUTH", options.password]
    : [];
  let pending = batch.map((m) => m.slot);
  let transientFailures = 0;
  while (pending.length > 0) {
    options.signal?.throwIfAborted();
    const perSlot = run.throttle.batchLimit(KEYS_PER_ROUND);
    const lists = replies(
      await exec(source, inDb(pending.map((slot) => ["CLUSTER", "GETKEYSINSLOT", slot, perSlot]))),
    ) as string[][];
    const migrates: (string | number)[][] = [];
    let chunk: string[] = [];
    const flush = (timeout: number) => {
      if (chunk.length > 0)
        migrates.push(["MIGRATE", host, port, "", db, timeout, ...auth, "KEYS", ...chunk]);
      chunk = [];
    };
    lists.forEach((keys) => {
      for (const key of keys) {
        const bytes = big.get(key);
        if (bytes !== undefined) {
          // A big key travels alone, with a timeout sized to it.
          flush(defaults.migrateTimeoutMs);
          chunk.push(key);
          flush(migrateTimeoutFor(bytes));
          continue;
        }
        chunk.push(key);
        if (chunk.length >= keysPerMigrate) flush(defaults.migrateTimeoutMs);
      }
      // A cluster node refuses a multi-key MIGRATE across slots (CROSSSLOT): one slot per command.
      flush(defaults.migrateTimeoutMs);
    });
    const count = lists.reduce((sum, keys) => sum + keys.length, 0);
    if (count === 0) break;
    await run.throttle.take(count, options.signal);
    try {
      await exec(source, inDb(migrates));
    } catch (err) {
      // The target (or source) briefly sees the cluster down, e.g. right after it joined: the
      // round is repeated, which is safe because keys already moved are no longer listed.
      if (!/CLUSTERDOWN|TRYAGAIN/.test((err as Error).message) || ++transientFailures > TRANSIENT_RETRIES)
        throw explainMigrateError(err as Error, first);
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    run.movedKeys += count;
    lists.forEach((keys, i) => {
      if (keys.length > 0)
        report(options, {
          type: "keys-moved",
          slot: pending[i]!,
          moved: keys.length,
          totalMoved: run.movedKeys,
          totalKeys: run.totalKeys,
        });
    });
    // A slot whose list came back shorter than asked is empty now: while it is MIGRATING, new
    // keys are created on the target (ASK), never on the source.
    pending = pending.filter((_slot, i) => lists[i]!.length >= perSlot);
  }
}

/**
 * Rethrows a batch's failure, as the exact error when a failover demoted its source or target
 * (MIGRATE to a replica answers MOVED, SETSLOT on one "only with masters").
 */
async function explainPrimaryChange(ctx: MigrationContext, batch: SlotMove[], err: Error): Promise<never> {
  const first = batch[0]!;
  const changes: PrimaryChange[] = [];
  for (const planned of [
    { shard: first.from, id: first.fromId, address: first.fromAddress },
    { shard: first.to, id: first.toId, address: first.toAddress },
  ]) {
    const check = await checkPrimary(ctx.pool, planned);
    if (check.changed)
      changes.push({ planned, now: check.address, detail: "detail" in check ? check.detail : "a failover" });
  }
  if (changes.length === 0) throw err;
  throw primaryChangedError(
    ErrorCodes.MIGRATE,
    changes,
    formatSlots(batch.map((m) => m.slot).sort((a, b) => a - b)),
    `The move failed with: ${err.message}. Slots of this batch may be left open naming the old primary: ` +
      "dredis cluster fix closes them without losing keys; the slots moved before them are done.",
  );
}

function explainMigrateError(err: Error, move: SlotMove): DredisError {
  const text = err.message;
  const why = /BUSYKEY/.test(text)
    ? "a key of the slot already exists on the target; inspect both copies, delete the wrong one, then re-run"
    : /IOERR|timeout/i.test(text)
      ? "the source could not reach the target in time; check the network (and big keys), then re-run to resume"
      : "re-run to resume; the slot stays open and is finished from where it stopped";
  return new DredisError(
    ErrorCodes.MIGRATE,
    `MIGRATE from ${move.from} (${move.fromAddress}) to ${move.to} (${move.toAddress}) failed: ${text}. ${why}`,
  );
}

/**
 * A pipeline of CLUSTER SETSLOT on one node. Valkey 8+ answers NOREPLICAS when the node's replicas
 * did not acknowledge in time (one fell out of sync): wait until they are in sync again and send
 * the pipeline again (every SETSLOT step is idempotent), a bounded number of times.
 */
async function setSlots(
  ctx: MigrationContext,
  address: string,
  commands: (string | number)[][],
  tolerated?: RegExp,
): Promise<unknown[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await exec(ctx.pool.get(address), commands, tolerated);
    } catch (err) {
      if (!/NOREPLICAS/.test((err as Error).message)) throw err;
      const behind = await replicasNotInSync(ctx.pool.get(address));
      if (attempt > NOREPLICAS_RETRIES)
        throw replicasBehindError(
          behind.length > 0 ? behind : [`the replicas of ${address}`],
          `kept CLUSTER SETSLOT on ${address} from completing (NOREPLICAS ${attempt} times)`,
        );
      await waitForReplicasInSync(ctx.pool, [address], ctx.options, NOREPLICAS_WAIT_MS);
    }
  }
}

/** Sends commands as one pipeline; errors matching `tolerated` count as done. */
async function exec(client: Redis, commands: (string | number)[][], tolerated?: RegExp): Promise<unknown[]> {
  if (commands.length === 0) return [];
  const pipeline = client.pipeline();
  for (const [name, ...args] of commands) pipeline.call(String(name), ...args);
  const results = (await pipeline.exec()) ?? [];
  return results.map(([err, reply]) => {
    if (err && !(tolerated && tolerated.test(err.message))) throw err;
    return reply;
  });
}
