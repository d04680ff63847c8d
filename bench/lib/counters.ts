/**
 * Throughput timed by the harness, the same way for every target: the servers' own command
 * counters (`INFO commandstats`, calls of the workload's commands summed over the servers that
 * serve the target) are sampled every SAMPLE_MS while redis-benchmark runs, and the rate is taken
 * over a window strictly inside the run (after its start-up, before its tail), on hrtime.
 *
 * Why not redis-benchmark's own figure: `--cluster` runs one thread per node, and a threaded run
 * only notices that it is finished in its 250 ms progress timer, so its duration is a multiple of
 * 250 ms (150k requests read 120k rps three rounds out of three). Its single-threaded mode is
 * finer, but then direct and proxied targets would be timed differently.
 *
 * A proxy can send its servers more than one command per client request (MSET of 10 keys across
 * shards: one MSET per slot through our proxy, one per server through twemproxy). The run's
 * commands per request is exact over the whole run (counter delta / requests sent), and the
 * window's count is divided by it; over a window of thousands of random-key requests its error is
 * far below the timing bound reported beside each figure.
 */
import type { ConnectionOptions } from "node:tls";
import { Redis } from "ioredis";

/**
 * Poll interval. 25 ms: ~40 INFO per second per server at a few tens of microseconds each
 * (~0.1% of a server's core), and a quick run's 0.25 s pass still holds several samples.
 */
export const SAMPLE_MS = 25;
/** Share of the active period left out at each end (connection set-up, clients finishing). */
export const TRIM = 0.1;

export interface CounterSource {
  port: number;
  tls?: ConnectionOptions;
}

export interface Sample {
  /** Seconds (hrtime) at the midpoint between sending INFO to every server and the last reply. */
  t: number;
  /** Seconds from the first send to the last reply: the snapshot lies somewhere inside it. */
  span: number;
  count: number;
}

/** Sum of `calls` over `cmdstat_<name>` lines for the given command names (lower case). */
export function parseCommandCalls(info: string, commands: readonly string[]): number {
  let total = 0;
  for (const line of info.split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m && commands.includes(m[1]!)) total += Number(m[2]);
  }
  return total;
}

/** One connection per server of a target; `sample` reads all of them at once. */
export class CounterPoller {
  private readonly clients: Redis[];
  constructor(sources: readonly CounterSource[]) {
    this.clients = sources.map(
      (s) =>
        new Redis({
          host: "127.0.0.1",
          port: s.port,
          ...(s.tls ? { tls: s.tls } : {}),
          maxRetriesPerRequest: 1,
          connectTimeout: 5000,
        }),
    );
  }

  async sample(commands: readonly string[]): Promise<Sample> {
    const sent = process.hrtime.bigint();
    const infos = await Promise.all(this.clients.map((c) => c.info("commandstats")));
    const got = process.hrtime.bigint();
    const count = infos.reduce((sum, info) => sum + parseCommandCalls(info, commands), 0);
    return { t: Number(sent + got) / 2e9, span: Number(got - sent) / 1e9, count };
  }

  /** Samples every SAMPLE_MS until `until` settles, with one sample before and one after. */
  async during<T>(commands: readonly string[], until: Promise<T>): Promise<{ result: T; samples: Sample[] }> {
    const samples: Sample[] = [await this.sample(commands)];
    let done = false;
    const finished = until.finally(() => (done = true));
    while (!done) {
      await Promise.race([finished, new Promise((r) => setTimeout(r, SAMPLE_MS))]);
      if (!done) samples.push(await this.sample(commands));
    }
    const result = await finished;
    samples.push(await this.sample(commands));
    return { result, samples };
  }

  close(): void {
    for (const c of this.clients) c.disconnect();
  }
}

export interface Timing {
  /** Client requests per second over the window. */
  rps: number;
  /** Seconds between the window's two samples. */
  windowSeconds: number;
  /** Seconds during which the counters moved (first to last sample that saw a change). */
  activeSeconds: number;
  /** Worst-case relative error of rps from where in its span each sample's snapshot fell. */
  errorBound: number;
  /** Server commands per client request over the whole run. */
  commandsPerRequest: number;
  samples: number;
}

/**
 * The rate over the window [start + TRIM, end - TRIM] of the active period, from samples taken
 * during one run that sent `requests` client requests. Undefined when the run was too short to
 * hold a window of at least two sample intervals (the caller then reports it as not timed).
 */
export function windowRate(samples: readonly Sample[], requests: number): Timing | undefined {
  if (samples.length < 2) return undefined;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const total = last.count - first.count;
  if (total <= 0 || requests <= 0) return undefined;
  const commandsPerRequest = total / requests;
  // Active: from the last sample before the counters moved to the first one after they stopped.
  let a = 0;
  while (a + 1 < samples.length && samples[a + 1]!.count === first.count) a++;
  let b = samples.length - 1;
  while (b - 1 > a && samples[b - 1]!.count === last.count) b--;
  const tA = samples[a]!.t;
  const tB = samples[b]!.t;
  const lo = tA + TRIM * (tB - tA);
  const hi = tB - TRIM * (tB - tA);
  let i = a;
  while (i < b && samples[i]!.t < lo) i++;
  let j = b;
  while (j > i && samples[j]!.t > hi) j--;
  if (j - i < 2) return undefined;
  const si = samples[i]!;
  const sj = samples[j]!;
  const windowSeconds = sj.t - si.t;
  return {
    rps: (sj.count - si.count) / commandsPerRequest / windowSeconds,
    windowSeconds,
    activeSeconds: tB - tA,
    errorBound: (si.span + sj.span) / 2 / windowSeconds,
    commandsPerRequest,
    samples: samples.length,
  };
}
