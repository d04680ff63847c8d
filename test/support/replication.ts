/**
 * Waiting for replicas in tests: until a master's replicas have acknowledged every write the master
 * had taken when the wait began, read from the master's own `INFO replication`.
 *
 * Not `WAIT n` on a test's admin connection: WAIT waits for the replication offset of that
 * connection's own last write, and a connection that wrote nothing returns at once with the number
 * of replicas online, however far behind they are (the writes went through the proxy, or another
 * connection). So does Valkey 9 whatever the connection ran before. Redis 7.0 moves that offset at
 * every command, writes or not, so there WAIT waits for the master's offset as of the connection's
 * previous command: enough only when that command came after the writes.
 * test/support/replication.test.ts shows WAIT and this helper against a stopped replica.
 */
import type { Redis } from "ioredis";

/** One `slaveN:` line of a master's `INFO replication`. */
export interface ReplicaAck {
  /** "host:port" the replica announced. */
  address: string;
  /** online once its first sync is done; wait_bgsave, send_bulk... before. */
  state: string;
  /** The replication offset the replica last acknowledged (it sends REPLCONF ACK every second). */
  offset: number;
  /** Seconds since the master last heard from the replica. */
  lag: number;
}

export interface MasterReplication {
  /** master_repl_offset: how far the master's replication stream has come. */
  offset: number;
  replicas: ReplicaAck[];
}

/** Reads a master's `INFO replication` text. */
export function parseReplication(info: string): MasterReplication {
  const offset = /^master_repl_offset:(\d+)/m.exec(info)?.[1];
  if (offset === undefined) throw new Error(`no master_repl_offset in INFO replication: ${info.trim()}`);
  const replicas = [...info.matchAll(/^slave\d+:(.*)$/gm)].map(([, line]) => {
    const fields = Object.fromEntries(
      line!
        .trim()
        .split(",")
        .map((field) => field.split("=") as [string, string]),
    );
    return {
      address: `${fields["ip"]}:${fields["port"]}`,
      state: fields["state"] ?? "unknown",
      offset: Number(fields["offset"] ?? -1),
      lag: Number(fields["lag"] ?? -1),
    };
  });
  return { offset: Number(offset), replicas };
}

export interface CaughtUpOptions {
  /** How many replicas the master must have, every one online and caught up. */
  replicas: number;
  /** @default 20000 */
  timeoutMs?: number;
  /** Time between two `INFO replication` calls. @default 50 */
  intervalMs?: number;
}

/**
 * Resolves once `master` (a connection to a master node) has at least `replicas` replicas, each
 * online and having acknowledged the master's replication offset as it was at the first look: every
 * write the master had acknowledged before this call is then applied on every replica. Throws after
 * `timeoutMs` naming the master, the offset awaited and what each replica had acknowledged.
 */
export async function replicasCaughtUp(master: Redis, options: CaughtUpOptions): Promise<void> {
  const { replicas: expected, timeoutMs = 20_000, intervalMs = 50 } = options;
  const name = `${master.options.host ?? "localhost"}:${master.options.port ?? 6379}`;
  const deadline = Date.now() + timeoutMs;
  let target: number | undefined;
  let last: MasterReplication | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = parseReplication(String(await master.call("INFO", "replication")));
      target ??= last.offset;
      if (
        last.replicas.length >= expected &&
        last.replicas.every((r) => r.state === "online" && r.offset >= target!)
      )
        return;
    } catch (err) {
      lastError = err;
      if (master.status === "end") break; // closed for good: no answer will come
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  const seen =
    last === undefined
      ? "no INFO replication answered"
      : `${last.replicas.length} of ${expected} replicas: ` +
        (last.replicas.map((r) => `${r.address} ${r.state} offset=${r.offset} lag=${r.lag}s`).join(", ") ||
          "none") +
        ` (master_repl_offset now ${last.offset})`;
  const why = master.status === "end" ? "gave up (the connection closed)" : `timed out after ${timeoutMs} ms`;
  throw new Error(
    `${why} waiting for the replicas of master ${name} to acknowledge offset ${target ?? "?"}: ` +
      `${seen}${lastError ? `; last error: ${String(lastError)}` : ""}`,
  );
}
