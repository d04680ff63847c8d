/**
 * Options every cluster-administration operation accepts, and the progress events it reports.
 */

import type { ConnectionOptions } from "node:tls";

/** Credentials for every node (and for MIGRATE to authenticate on the target). */
export interface Credentials {
  /** ACL user. @default the default user */
  username?: string;
  password?: string;
  /** TLS towards the nodes (CA, client certificate); unset: plain TCP. */
  tls?: ConnectionOptions;
}

export interface AdminOptions extends Credentials {
  /** Receives progress as the operation runs. @default ignore */
  onProgress?: (event: ProgressEvent) => void;
  /** Throttle for slot migration, in keys per second over the whole run. @default unlimited */
  maxKeysPerSecond?: number;
  /** Compute and return the plan, change nothing. @default false */
  dryRun?: boolean;
  /** Stops the operation between two steps; the cluster is left resumable. */
  signal?: AbortSignal;
  /** A key whose MEMORY USAGE reaches this is reported as big before it moves. @default 16 MiB */
  bigKeyBytes?: number;
  /** Slots migrated in one pipelined batch between one source and one target. @default 64 */
  slotsPerBatch?: number;
  /** Batches migrated at the same time (different sources and targets run in parallel). @default 4 */
  parallelBatches?: number;
  /** Keys per MIGRATE command. @default 100 */
  keysPerMigrate?: number;
  /** How long to wait for all nodes to agree after a change. @default 60000 */
  agreementTimeoutMs?: number;
  /**
   * How slots move: "atomic" (Valkey 9 MIGRATESLOTS; refused unless every node has it), "legacy"
   * (key by key with MIGRATE), or "auto" (atomic when every node has it). @default "auto"
   */
  slotMigration?: "auto" | "atomic" | "legacy";
  /** Slots per MIGRATESLOTS job. @default slotsPerBatch when set, else 512 */
  atomicSlotsPerBatch?: number;
  /** Tries of one MIGRATESLOTS job before the run stops (valkey#4545). @default 5 */
  atomicMaxTries?: number;
  /**
   * MIGRATESLOTS jobs one node takes part in at once, as source or as target. A source pauses
   * every write (not only the moving slots') from its handoff until the target has taken the
   * slots; a target busy loading another job's snapshot, or a source forking for another job,
   * makes that pause longer. @default 1
   */
  atomicJobsPerNode?: number;
}

export const defaults = {
  bigKeyBytes: 16 * 1024 * 1024,
  slotsPerBatch: 64,
  parallelBatches: 4,
  keysPerMigrate: 100,
  agreementTimeoutMs: 60_000,
  /** MIGRATE's I/O timeout for ordinary keys, as redis-cli uses. */
  migrateTimeoutMs: 60_000,
  /** Slots per MIGRATESLOTS job: one fork and one write pause per job, so larger than legacy batches. */
  atomicSlotsPerBatch: 512,
  atomicMaxTries: 5,
  atomicJobsPerNode: 1,
} as const;

/** Progress, as plain JSON-able objects (the CLI prints them as JSON lines when stderr is not a TTY). */
export type ProgressEvent =
  | { type: "step"; message: string }
  | { type: "warning"; message: string }
  | { type: "migration-start"; slots: number; keys: number; bytes: number }
  | { type: "slot-start"; slot: number; from: string; to: string }
  | { type: "keys-moved"; slot: number; moved: number; totalMoved: number; totalKeys: number }
  | { type: "slot-done"; slot: number; from: string; to: string; slotsDone: number; slotsTotal: number }
  | { type: "migration-done"; slots: number; keys: number; seconds: number }
  /** Atomic migration: a MIGRATESLOTS job changed state (GETSLOTMIGRATIONS). */
  | { type: "atomic-job"; job: string; from: string; to: string; slots: string; state: string }
  /** Atomic migration: bytes the sources sent so far, against the planned slots' MEMORY USAGE. */
  | {
      type: "bytes-moved";
      bytesSent: number;
      bytesPlanned: number;
      slotsDone: number;
      slotsTotal: number;
      pendingReplBytes: number;
    };

export function report(options: AdminOptions, event: ProgressEvent): void {
  options.onProgress?.(event);
}
