/**
 * Continuous load through the proxy while a day-2 change runs: a pipelined writer and a reader
 * that checks every value it reads against the last acknowledged write of that key. Bounded in
 * time and in rounds. `stop()` also reads every key back, so a lost acknowledged write shows.
 */
import { Redis } from "ioredis";

export interface LoadReport {
  rounds: number;
  /** Every error a client saw (writes and reads). */
  errors: string[];
  /** Reads whose value was not the last acknowledged write of the key. */
  wrong: string[];
  /** Keys whose final value is not their last acknowledged write. */
  lost: string[];
}

export interface Load {
  stop(): Promise<LoadReport>;
}

const KEYS = 5_000;
const BATCH = 100;

export async function startLoad(port: number, prefix: string, maxMs = 240_000): Promise<Load> {
  const writer = new Redis({ port, maxRetriesPerRequest: 0 });
  const reader = new Redis({ port, maxRetriesPerRequest: 0 });
  // Failed commands reject and are counted; the event would only repeat them.
  writer.on("error", () => {});
  reader.on("error", () => {});
  const key = (k: number) => `${prefix}:${k}`;
  const acked = new Map<number, string>();
  const errors: string[] = [];
  const wrong: string[] = [];
  // Every key exists before the change starts.
  for (let i = 0; i < KEYS; i += 1000) {
    const pipeline = writer.pipeline();
    for (let k = i; k < i + 1000; k++) pipeline.set(key(k), `v0-${k}`);
    (await pipeline.exec())!.forEach(([err], j) =>
      err ? errors.push(err.message) : acked.set(i + j, `v0-${i + j}`),
    );
  }
  let stopping = false;
  let rounds = 0;
  const deadline = Date.now() + maxMs;
  const loop = (async () => {
    for (let round = 1; !stopping && Date.now() < deadline && round < 1_000_000; round++) {
      const batch = Array.from({ length: BATCH }, (_, j) => (round * BATCH + j) % KEYS);
      const writes = writer.pipeline();
      for (const k of batch) writes.set(key(k), `v${round}-${k}`);
      const written = await writes.exec().catch((err: Error) => {
        errors.push(err.message);
        return [];
      });
      written!.forEach(([err], j) =>
        err
          ? errors.push(`SET ${key(batch[j]!)}: ${err.message}`)
          : acked.set(batch[j]!, `v${round}-${batch[j]}`),
      );
      const reads = reader.pipeline();
      for (const k of batch) reads.get(key(k));
      const values = await reads.exec().catch((err: Error) => {
        errors.push(err.message);
        return [];
      });
      values!.forEach(([err, value], j) => {
        const k = batch[j]!;
        if (err) errors.push(`GET ${key(k)}: ${err.message}`);
        else if (value !== acked.get(k))
          wrong.push(`${key(k)}: read ${String(value)}, acknowledged ${acked.get(k)}`);
      });
      rounds = round;
    }
  })();
  let report: Promise<LoadReport> | undefined;
  return {
    // Idempotent: the test's cleanup stops a load an assertion left running.
    stop: () => (report ??= finish()),
  };

  async function finish(): Promise<LoadReport> {
    stopping = true;
    await loop;
    const lost: string[] = [];
    for (let i = 0; i < KEYS; i += 1000) {
      const keys = Array.from({ length: 1000 }, (_, j) => i + j);
      const pipeline = reader.pipeline();
      for (const k of keys) pipeline.get(key(k));
      (await pipeline.exec())!.forEach(([err, value], j) => {
        const k = keys[j]!;
        if (err) errors.push(`final GET ${key(k)}: ${err.message}`);
        else if (value !== acked.get(k)) lost.push(`${key(k)}: ${String(value)} instead of ${acked.get(k)}`);
      });
    }
    writer.disconnect();
    reader.disconnect();
    return { rounds, errors, wrong, lost };
  }
}
