/**
 * Workloads as redis-benchmark invocations, and one measured run of a workload against a target:
 * throughput and latency from redis-benchmark's --csv line, CPU seconds of the proxy's process
 * tree and of the redis-servers from /proc before and after.
 */
import { readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { connect as connectTls } from "node:tls";
import { CounterPoller, windowRate, type Timing } from "./counters.ts";
import { PlacementSampler, cpuSeconds, runBounded } from "./procs.ts";
import type { Target } from "./targets.ts";

/** Distinct keys per workload: small enough that a warm-up fills it, large enough to spread over slots. */
export const KEYSPACE = 10_000;
const VALUE_1K = "x".repeat(1024);
const MSET_KEYS = 10;

export interface Stream {
  args: string[];
  requests: number;
}

export interface Workload {
  id: string;
  label: string;
  /** Keys on several slots in one command: checked once per target before it is measured. */
  crossSlot?: boolean;
  /** The servers' commands that count its requests (lower case, as in `INFO commandstats`). */
  commands: string[];
  /** Streams run concurrently; their throughputs add up. */
  streams(target: Target, scale: number): Stream[];
}

const n = (base: number, scale: number) => Math.max(1000, Math.round(base * scale));

function common(target: Target, clients: number, pipeline: number, requests: number): string[] {
  const args = ["-h", "127.0.0.1", "-p", String(target.port), "-c", String(clients), "-n", String(requests)];
  args.push("-P", String(pipeline), "-r", String(KEYSPACE), "--csv");
  if (target.cluster) args.push("--cluster");
  if (target.tls)
    args.push("--tls", "--cacert", target.tls.ca, "--cert", target.tls.cert, "--key", target.tls.key);
  return args;
}

/** A key pattern: cluster-aware redis-benchmark needs `{tag}` to route custom commands. */
const key = (target: Target, prefix: string) =>
  target.cluster ? `${prefix}{tag}:__rand_int__` : `${prefix}:__rand_int__`;

function builtin(
  id: string,
  label: string,
  test: string,
  clients: number,
  pipeline: number,
  base: number,
  extra: string[] = [],
) {
  return {
    id,
    label,
    commands: [test],
    streams: (t: Target, scale: number) => {
      const requests = n(base, scale);
      return [{ args: [...common(t, clients, pipeline, requests), ...extra, "-t", test], requests }];
    },
  } satisfies Workload;
}

function mset(id: string, label: string, pipeline: number, base: number): Workload {
  return {
    id,
    label,
    crossSlot: true,
    // One MSET per slot through our proxy, one per server through twemproxy; SET counted too in
    // case a proxy sends single-key parts as SET.
    commands: ["mset", "set"],
    streams: (t, scale) => {
      const requests = n(base, scale);
      const pairs: string[] = [];
      for (let i = 0; i < MSET_KEYS; i++) pairs.push(key(t, "mk"), "xxx");
      return [{ args: [...common(t, 50, pipeline, requests), "MSET", ...pairs], requests }];
    },
  };
}

export const WORKLOADS: Workload[] = [
  builtin("set-p1", "SET, 50 clients, -P 1", "set", 50, 1, 150_000),
  builtin("get-p1", "GET, 50 clients, -P 1", "get", 50, 1, 150_000),
  builtin("set-p16", "SET, 50 clients, -P 16", "set", 50, 16, 1_000_000),
  builtin("get-p16", "GET, 50 clients, -P 16", "get", 50, 16, 1_000_000),
  mset("mset-p1", "MSET 10 keys, 50 clients, -P 1", 1, 60_000),
  mset("mset-p16", "MSET 10 keys, 50 clients, -P 16", 16, 300_000),
  {
    id: "mix-90-10",
    label: "90% GET / 10% SET, 1 KB, 50 clients (45+5 concurrent streams)",
    commands: ["get", "set"],
    streams: (t, scale) => {
      const gets = n(135_000, scale);
      const sets = n(15_000, scale);
      return [
        { args: [...common(t, 45, 1, gets), "GET", key(t, "mix")], requests: gets },
        { args: [...common(t, 5, 1, sets), "SET", key(t, "mix"), VALUE_1K], requests: sets },
      ];
    },
  },
  builtin("one-client", "GET, 1 client, -P 1 (one hop's latency)", "get", 1, 1, 20_000),
  // Clients that connect per request (PHP's default, a script per request): what a connection costs.
  builtin("connect", "GET, a new connection per request (-k 0), 20 clients", "get", 20, 1, 15_000, [
    "-k",
    "0",
  ]),
];

/**
 * Fills the keys that the GET workloads read (3-byte values) and the 1 KB keys of the mix: 6 random
 * SETs per key leave 0.25% of keys unset, 2 (`light`, for --quick) leave 14%.
 */
export function warmupStreams(t: Target, light = false): Stream[] {
  const requests = KEYSPACE * (light ? 2 : 6);
  return [
    { args: [...common(t, 50, 16, requests), "-t", "set"], requests },
    { args: [...common(t, 50, 16, requests), "SET", key(t, "mix"), VALUE_1K], requests },
  ];
}

export interface RunResult {
  workload: string;
  target: string;
  round: number;
  /** Set for the runs of the pinned pass (`--pin` or the scaling pass of a full run). */
  pinned?: boolean;
  ok: boolean;
  error?: string;
  /** Requests per second timed by the harness (lib/counters.ts); redis-benchmark's own in toolRps. */
  rps: number;
  /** The sum of redis-benchmark's own figures (coarse for --cluster: a multiple of 250 ms). */
  toolRps: number;
  /** The harness's window: its duration, error bound, commands per request. */
  timing?: Timing;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  wallSeconds: number;
  proxyCpuSeconds: number;
  serverCpuSeconds: number;
  /** Servers that shared the busiest proxy process's CPU, averaged over the run (see PlacementSampler). */
  serversOnProxyCpu?: number;
  /** Per stream, as redis-benchmark reported it. */
  streams: { rps: number; p50Ms: number; p99Ms: number; requests: number }[];
}

interface CsvRow {
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

/** The data line of redis-benchmark --csv (Redis 7.0 columns: test, rps, avg, min, p50, p95, p99, max). */
export function parseCsv(stdout: string): CsvRow | undefined {
  for (const line of stdout.split("\n")) {
    const cells = line.match(/"((?:[^"]|"")*)"/g)?.map((c) => c.slice(1, -1));
    if (!cells || cells.length < 8 || cells[0] === "test") continue;
    const rps = Number(cells[1]);
    if (!Number.isFinite(rps)) continue;
    return { rps, p50Ms: Number(cells[4]), p99Ms: Number(cells[6]) };
  }
  return undefined;
}

/** The CPU redis-benchmark is pinned to (`--pin`), or null to let the scheduler place it. */
let loadGeneratorCpu: number | null = null;

export function pinLoadGenerator(cpu: number | null): void {
  loadGeneratorCpu = cpu;
}

export async function runStreams(streams: Stream[], timeoutMs: number) {
  return Promise.all(
    streams.map((s) =>
      loadGeneratorCpu === null
        ? runBounded("redis-benchmark", s.args, timeoutMs)
        : runBounded("taskset", ["-c", String(loadGeneratorCpu), "redis-benchmark", ...s.args], timeoutMs),
    ),
  );
}

const pollers = new Map<Target, CounterPoller>();

/** Closes the harness's counter connections (one per server of each target measured). */
export function closePollers(): void {
  for (const p of pollers.values()) p.close();
  pollers.clear();
}

/**
 * Runs one workload against one target, with CPU accounting around it and its throughput timed
 * by the harness from the servers' command counters. A run too short to hold a timing window
 * fails rather than fall back on the tool's timer.
 */
export async function measure(
  workload: Workload,
  target: Target,
  round: number,
  scale: number,
  timeoutMs: number,
): Promise<RunResult> {
  const streams = workload.streams(target, scale);
  const proxyPids = target.proxyPids();
  const serverPids = target.serverPids();
  const proxyBefore = cpuSeconds(proxyPids);
  const serverBefore = cpuSeconds(serverPids);
  let poller = pollers.get(target);
  if (!poller) pollers.set(target, (poller = new CounterPoller(target.counterSources())));
  const placement = proxyPids.length > 0 ? new PlacementSampler(proxyPids, serverPids) : null;
  const started = process.hrtime.bigint();
  const { result: outputs, samples } = await poller
    .during(workload.commands, runStreams(streams, timeoutMs))
    .finally(() => placement?.stop());
  const serversOnProxyCpu = placement?.result ?? undefined;
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const proxyCpuSeconds = cpuSeconds(proxyPids) - proxyBefore;
  const serverCpuSeconds = cpuSeconds(serverPids) - serverBefore;
  const rows = outputs.map((o) => parseCsv(o.stdout));
  const requests = streams.reduce((sum, s) => sum + s.requests, 0);
  const base = { workload: workload.id, target: target.id, round, requests, wallSeconds, serversOnProxyCpu };
  const timing = windowRate(samples, requests);
  const failed = outputs.findIndex((o, i) => o.timedOut || o.code !== 0 || !rows[i]);
  if (failed >= 0 || !timing) {
    const o = outputs[failed];
    const text = o ? `${o.stderr}\n${o.stdout}` : "";
    const error = !o
      ? `run too short to time: ${samples.length} counter samples over ${wallSeconds.toFixed(2)} s`
      : o.timedOut
        ? `timed out after ${timeoutMs} ms`
        : (text.match(/(?:Error from server: )?(\w*ERR\w*|CROSSSLOT|MOVED)[^\n]*/)?.[0] ??
          text.trim().slice(0, 200));
    return {
      ...base,
      ok: false,
      error,
      rps: 0,
      toolRps: 0,
      p50Ms: 0,
      p99Ms: 0,
      proxyCpuSeconds,
      serverCpuSeconds,
      streams: [],
    };
  }
  const perStream = rows.map((r, i) => ({ ...r!, requests: streams[i]!.requests }));
  // Latency of a mix is that of its largest stream (the GETs, 90% of requests).
  const main = perStream.reduce((a, b) => (b.requests > a.requests ? b : a));
  return {
    ...base,
    ok: true,
    rps: timing.rps,
    toolRps: perStream.reduce((sum, s) => sum + s.rps, 0),
    timing,
    p50Ms: main.p50Ms,
    p99Ms: main.p99Ms,
    proxyCpuSeconds,
    serverCpuSeconds,
    streams: perStream,
  };
}

/**
 * Sends one MSET whose keys hash to different slots and returns the error, if any (within 3 s).
 * A proxy whose busy proxy is not finished answers CROSSSLOT (or nothing): not measurable yet.
 */
export function probeCrossSlot(target: Pick<Target, "port" | "tls">): Promise<string | undefined> {
  return new Promise((resolve) => {
    const { port, tls } = target;
    const socket = tls
      ? connectTls({ host: "127.0.0.1", port, ca: readFileSync(tls.ca) })
      : createConnection({ host: "127.0.0.1", port });
    let data = "";
    const done = (error: string | undefined) => {
      socket.destroy();
      resolve(error);
    };
    socket.setTimeout(3000, () => done("no reply within 3 s to a cross-slot MSET"));
    // {a} and {b} hash to slots 15495 and 3300: different shards of a 3-master cluster.
    socket.on(tls ? "secureConnect" : "connect", () =>
      socket.write("*5\r\n$4\r\nMSET\r\n$6\r\nx{a}:1\r\n$1\r\n1\r\n$6\r\nx{b}:1\r\n$1\r\n2\r\n"),
    );
    socket.on("data", (c: Buffer) => {
      data += c.toString("latin1");
      const end = data.indexOf("\r\n");
      if (end >= 0) done(data.startsWith("+OK") ? undefined : data.slice(1, end));
    });
    socket.on("error", (err) => done(err.message));
  });
}
