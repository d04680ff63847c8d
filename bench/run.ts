/**
 * `npm run bench`: side-by-side throughput, latency and CPU of a single redis-server, a 3-master
 * cluster reached directly, our proxy host with 1 and 2 workers over that cluster, and twemproxy
 * over three standalone servers (every rps timed by the harness, lib/counters.ts); then a pinned
 * pass for worker scaling (redis-benchmark alone on CPU 0), the proxy's memory benchmark, and the
 * 3- and 30-shard scale figures beside the capacity model.
 *
 *   npm run bench                    all of it (5 + 3 pinned rounds; about 12 minutes)
 *   npm run bench -- --quick         every path, short (under 3 minutes)
 *   npm run bench -- --no-pinned     without the pinned pass;  --no-scale: without the shard scale
 *   npm run bench -- --pinned-rounds 2   rounds of the pinned pass (3 by default, 1 with --quick)
 *   npm run bench -- --rounds 5      more rounds
 *   npm run bench -- --memory        memory benchmark only
 *   npm run bench -- --no-memory     throughput only
 *   npm run bench -- --out DIR       where results go (default bench/results)
 *   npm run bench -- --only a,b      only these workloads (ids as in the table)
 *   npm run bench -- --pin           redis-benchmark on CPU 0, everything under test on the others
 *   npm run bench -- --targets a,b   only these targets (ids as in the table)
 *   npm run bench -- --no-tls        without the TLS pair (cluster direct and dredis 2w over TLS)
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machine } from "./lib/machine.ts";
import {
  goals,
  goalsMarkdown,
  markdown,
  scalingMarkdown,
  summarise,
  svgChart,
  workerScaling,
  type Goal,
} from "./lib/report.ts";
import { Cleanups, REPO_ROOT, benchDir, startEnvironment, type Target } from "./lib/targets.ts";
import { killBounded } from "./lib/procs.ts";
import { startTlsTargets } from "./lib/tls-targets.ts";
import {
  WORKLOADS,
  closePollers,
  measure,
  pinLoadGenerator,
  probeCrossSlot,
  runStreams,
  warmupStreams,
  type RunResult,
  type Workload,
} from "./lib/workloads.ts";
import { runMemoryBench, memoryMarkdown, type MemoryResult } from "./memory.ts";
import { capacityMarkdown, measureShards, scaleMarkdown, type ShardScaleResult } from "./scale.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string" },
    quick: { type: "boolean", default: false },
    memory: { type: "boolean", default: false },
    "no-memory": { type: "boolean", default: false },
    out: { type: "string" },
    only: { type: "string" },
    pin: { type: "boolean", default: false },
    targets: { type: "string" },
    "no-tls": { type: "boolean", default: false },
    "no-pinned": { type: "boolean", default: false },
    "pinned-rounds": { type: "string" },
    "no-scale": { type: "boolean", default: false },
  },
});

const quick = values.quick!;
const rounds = Number(values.rounds ?? (quick ? 1 : 5));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds expects a whole number >= 1`);
const scale = quick ? 0.3 : 1;
const outDir = values.out ?? join(REPO_ROOT, "bench", "results");
const onlyMemory = values.memory!;
const withMemory = !values["no-memory"];
const pin = values.pin!;
const workloads = values.only ? WORKLOADS.filter((w) => values.only!.split(",").includes(w.id)) : WORKLOADS;
if (values.only && !workloads.length)
  throw new Error(
    `--only ${values.only}: no such workload (known: ${WORKLOADS.map((w) => w.id).join(", ")})`,
  );
/** The pinned pass (worker scaling): these workloads, these targets, fewer rounds. */
const PINNED_WORKLOADS = ["get-p1", "set-p1", "get-p16", "set-p16"];
const PINNED_TARGETS = ["cluster", "proxy1", "proxy2", "twemproxy"];
const pinnedRounds = Number(values["pinned-rounds"] ?? (quick ? 1 : 3));
if (!Number.isInteger(pinnedRounds) || pinnedRounds < 1)
  throw new Error(`--pinned-rounds expects a whole number >= 1`);
const withPinned = !pin && !values["no-pinned"] && workloads.some((w) => PINNED_WORKLOADS.includes(w.id));
const withScale = !values["no-scale"];

const cleanups = new Cleanups();
let stopping = false;
const shutdown = async (code: number, why?: string) => {
  if (stopping) return;
  stopping = true;
  if (why) console.error(why);
  killBounded();
  await cleanups.run();
  process.exit(code);
};
process.on("SIGINT", () => void shutdown(130, "interrupted: stopping everything"));
process.on("SIGTERM", () => void shutdown(143, "terminated: stopping everything"));
// A whole run is bounded in time: a stuck process must not hold the machine.
// A quick run takes under 3 minutes on a quiet machine; the bound leaves room for a loaded one.
const budgetMs = (quick ? 10 : 25 * Math.max(1, rounds / 3) + 5 * pinnedRounds) * 60_000;
setTimeout(() => void shutdown(1, `bench exceeded its ${budgetMs / 60_000} min budget`), budgetMs).unref();

const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

async function throughput(dir: string) {
  log("starting single redis, 3-master cluster, proxy hosts (1 and 2 workers), twemproxy");
  const env = await startEnvironment(cleanups, dir);
  if (!values["no-tls"]) {
    log(
      "starting the TLS pair: a TLS-only 3-master cluster and a 2-worker proxy host with TLS on both sides",
    );
    env.targets.push(...(await startTlsTargets(cleanups, dir)));
  }
  cleanups.after(closePollers); // runs before the servers stop (cleanups run in reverse)
  const wanted = values.targets?.split(",");
  const targets = wanted ? env.targets.filter((t) => wanted.includes(t.id)) : env.targets;
  const unpin = pin ? pinEverything(targets) : undefined;
  log("warming up keys (GET keyspace and 1 KB mix keys) on every target");
  for (const t of targets) {
    const outs = await runStreams(warmupStreams(t, quick), 120_000);
    const bad = outs.find((o) => o.code !== 0);
    if (bad) throw new Error(`warm-up on ${t.id} failed: ${bad.stderr || bad.stdout}`);
  }
  // Cross-slot MSET through a proxy needs the busy proxy: probe once rather than hang or fake it.
  const crossSlotError = new Map<string, string>();
  for (const t of targets.filter((t) => !t.cluster)) {
    const error = await probeCrossSlot(t);
    if (error) {
      crossSlotError.set(t.id, error);
      log(`${t.id}: cross-slot MSET answered "${error}": MSET workloads not measurable there`);
    }
  }
  const runs = await rounds_(targets, workloads, rounds, crossSlotError, pin);
  unpin?.(); // the memory and scale parts start processes that would inherit this one's CPU
  let pinnedRuns: RunResult[] = [];
  let pinnedLoad = "";
  if (withPinned) {
    const pinnedTargets = targets.filter((t) => PINNED_TARGETS.includes(t.id));
    const restore = pinEverything(pinnedTargets);
    pinnedLoad = loadAverage();
    try {
      const ws = workloads.filter((w) => PINNED_WORKLOADS.includes(w.id));
      pinnedRuns = await rounds_(pinnedTargets, ws, pinnedRounds, crossSlotError, true);
    } finally {
      restore();
    }
  }
  return { targets, runs, pinnedRuns, pinnedLoad };
}

const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

/** Interleaved rounds of the workloads over the targets. */
async function rounds_(
  targets: Target[],
  workloads: Workload[],
  rounds: number,
  crossSlotError: Map<string, string>,
  pinned: boolean,
): Promise<RunResult[]> {
  const runs: RunResult[] = [];
  const timeoutMs = 60_000;
  const tag = pinned ? "pinned " : "";
  for (let round = 1; round <= rounds; round++) {
    for (const w of workloads) {
      // Interleave targets (A B C D E, then B C D E A in the next round...) so drift hits all alike.
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]!);
      for (const t of order) {
        const skip = w.crossSlot ? crossSlotError.get(t.id) : undefined;
        if (skip) {
          runs.push({
            ...{
              workload: w.id,
              target: t.id,
              round,
              ok: false,
              error: skip,
              rps: 0,
              toolRps: 0,
              p50Ms: 0,
              p99Ms: 0,
            },
            ...{ requests: 0, wallSeconds: 0, proxyCpuSeconds: 0, serverCpuSeconds: 0, streams: [] },
          });
          continue;
        }
        const r = { ...(await measure(w, t, round, scale, timeoutMs)), pinned };
        runs.push(r);
        log(
          `${tag}round ${round}/${rounds} ${w.id.padEnd(10)} ${t.id.padEnd(11)} ` +
            (r.ok
              ? `${Math.round(r.rps).toString().padStart(7)} rps over ${r.timing!.windowSeconds.toFixed(2)} s ` +
                `(tool ${Math.round(r.toolRps)}) p50 ${r.p50Ms.toFixed(3)} ms p99 ${r.p99Ms.toFixed(3)} ms ` +
                `cpu proxy ${r.proxyCpuSeconds.toFixed(2)} s redis ${r.serverCpuSeconds.toFixed(2)} s`
              : `FAILED: ${r.error}`),
        );
      }
    }
  }
  return runs;
}

/**
 * `--pin`: the load generator gets CPU 0 to itself and every server and proxy process (all their
 * threads) shares the other CPUs, as when the clients run on other machines. Without it the
 * scheduler mixes them, and every proxy competes with redis-benchmark for the same cores. This
 * process (it samples the counters) joins redis-benchmark on CPU 0. Returns what undoes it.
 */
function pinEverything(targets: Target[]): () => void {
  const cpus = availableParallelism();
  if (cpus < 2) throw new Error(`--pin needs at least 2 CPUs (this machine has ${cpus})`);
  const rest = cpus === 2 ? "1" : `1-${cpus - 1}`;
  const all = `0-${cpus - 1}`;
  const taskset = (cpuList: string, pid: number) =>
    execFileSync("taskset", ["-a", "-p", "-c", cpuList, String(pid)], { stdio: "ignore" });
  const pids = new Set(targets.flatMap((t) => [...t.proxyPids(), ...t.serverPids()]));
  for (const pid of pids) taskset(rest, pid);
  taskset("0", process.pid);
  pinLoadGenerator(0);
  log(
    `pinned: redis-benchmark and the harness on CPU 0, ${pids.size} server and proxy processes on CPU ${rest}`,
  );
  return () => {
    pinLoadGenerator(null);
    taskset(all, process.pid);
    for (const pid of pids) {
      try {
        taskset(all, pid);
      } catch {
        // exited
      }
    }
  };
}

const TIMING_NOTE =
  "Every rps is timed by the harness, the same way for every target: the servers' command counters " +
  "(`INFO commandstats`) sampled every 25 ms during the run, the rate taken over a window inside it " +
  "(10% of the active period left out at each end), divided by the run's commands per request. " +
  "Each round's figure is given with that window (its effective duration) and the worst-case error " +
  "from the samples' timing. redis-benchmark's own figure is shown beside it: with `--cluster` it " +
  "runs threaded and times whole 250 ms ticks, so for `cluster direct` it is coarse.";

async function main() {
  const dir = await benchDir(cleanups);
  const info = machine();
  await mkdir(outDir, { recursive: true });
  const stamp = new Date().toISOString();
  const report: string[] = [];
  const json: Record<string, unknown> = { date: stamp, machine: info, rounds, quick, scale, pinned: pin };
  const loads: Record<string, string> = { start: info.loadAverageAtStart };
  let goalList: Goal[] = [];
  report.push(
    `## distributed-redis bench, ${stamp.slice(0, 16)}Z${quick ? " (quick)" : ""}`,
    "",
    `Machine: ${info.nproc} CPUs (${info.cpuModel}), ${info.memTotalGiB} GiB, Linux ${info.kernel}, Node ${info.node}, ${info.redis}, ${info.nutcracker}. Load average (1, 5, 15 min) at start: ${info.loadAverageAtStart}.`,
    "",
  );

  if (!onlyMemory) {
    const { targets, runs, pinnedRuns, pinnedLoad } = await throughput(dir);
    const ids = targets.map((t) => t.id);
    const labels = Object.fromEntries(targets.map((t) => [t.id, t.label]));
    const cells = summarise(runs, workloads, ids);
    goalList = goals(cells);
    const title = `distributed-redis bench, ${stamp.slice(0, 16)}Z, ${rounds} round(s)${quick ? " (quick)" : ""}, ${info.nproc} x ${info.cpuModel}`;
    report.push(
      `### Throughput, latency and CPU (${rounds} interleaved round(s)${quick ? ", quick" : ""})`,
      "",
      ...(pin
        ? [
            "Pinned (`--pin`): redis-benchmark and the harness alone on CPU 0, every server and proxy process on the other CPU(s).",
            "",
          ]
        : []),
      TIMING_NOTE,
      "",
      markdown(cells, workloads, labels),
    );
    Object.assign(json, { targets: labels, workloads: workloads.map((w) => ({ id: w.id, label: w.label })) });
    Object.assign(json, { summary: cells, runs });
    const scaling = workerScaling(pin ? runs : pinnedRuns, workloads);
    if (pinnedRuns.length || pin) {
      const pinnedWorkloads = pin ? workloads : workloads.filter((w) => PINNED_WORKLOADS.includes(w.id));
      const pinnedIds = pin ? ids : ids.filter((id) => PINNED_TARGETS.includes(id));
      const pinnedCells = pin ? cells : summarise(pinnedRuns, pinnedWorkloads, pinnedIds);
      report.push(
        `### Worker scaling: the pinned pass (${pin ? rounds : pinnedRounds} interleaved round(s))`,
        "",
        "redis-benchmark and the harness alone on CPU 0; every server and proxy process on the other CPU(s), " +
          "as when clients run on other machines. This is the headline for 1 vs 2 workers: unpinned, the load " +
          "generator takes a core from the workers. With 2 CPUs the workers, the busy proxy and the servers " +
          `then share one core, so a second worker can only show what it costs, not what it adds. Load average at the start of this pass: ${pinnedLoad || info.loadAverageAtStart.split(" ").slice(0, 3).join(" ")}.`,
        "",
        scalingMarkdown(scaling.filter((r) => pinnedWorkloads.some((w) => w.id === r.workload))),
        "",
        ...(pin ? [] : [markdown(pinnedCells, pinnedWorkloads, labels)]),
      );
      if (pinnedLoad) loads.pinned = pinnedLoad;
      // The pipeline-1 and -16 goals again from the pinned pass, beside (not instead of) the
      // unpinned ones: there the worker does not share its core with the load generator.
      if (!pin) goalList.push(...goals(pinnedCells, ", pinned").filter((g) => g.met !== undefined));
      json.pinnedSummary = pinnedCells;
      json.pinnedRuns = pinnedRuns;
      json.workerScaling = scaling;
    }
    await writeFile(join(outDir, "throughput.svg"), svgChart(cells, workloads, ids, labels, title));
    await cleanups.run(); // free the cores before the memory benchmark
  }
  let memory: MemoryResult | undefined;
  if (onlyMemory || withMemory) {
    log("memory benchmark");
    loads.memory = loadAverage();
    memory = await runMemoryBench(cleanups, { quick, log });
    json.memory = memory;
    report.push(memoryMarkdown(memory), "");
    goalList.push({
      what: `idle proxy host, ${memory.workers} workers + busy proxy, compiled build: RSS summed over its processes`,
      target: "< 200 MB",
      observed: `${(memory.idleRssBytes / 1048576).toFixed(1)} MB (${memory.idleClients} idle clients: ${(memory.idleClientsRssBytes / 1048576).toFixed(1)} MB)`,
      met: memory.idleRssBytes < 200 * 1048576,
    });
    await cleanups.run();
  }
  if (withScale && !onlyMemory) {
    const counts = [3, 30];
    const refreshes = quick ? 50 : 200;
    loads.scale = loadAverage();
    const results: ShardScaleResult[] = [];
    for (const n of counts) {
      log(
        `scale: ${n}-master cluster, ${refreshes} slot-map refreshes, a 1-worker host with a connection to every master`,
      );
      results.push(await measureShards(n, refreshes, cleanups));
    }
    await cleanups.run();
    const processRss = memory ? memory.idleRssBytes / memory.idleByProcess.length : undefined;
    report.push(
      `### Scale: ${counts.join(" and ")} masters on this machine, beside the capacity model`,
      "",
      `Load average at the start of this part: ${loads.scale} (the CPU columns are only as good as the machine is quiet; bytes and memory are not affected). The routing check at 32 masters is test/proxy/scale.test.ts; the model and its knobs are in bench/README.md.`,
      "",
      scaleMarkdown(results),
      "",
      capacityMarkdown(results, processRss),
      "",
    );
    json.scale = results;
  }
  loads.end = loadAverage();
  json.loadAverage = loads;
  if (goalList.length)
    report.push(
      "### Goals of issue 15 (dredis 1w against twemproxy in the same round; the rows marked pinned are from the pinned pass)",
      "",
      goalsMarkdown(goalList),
      "",
      `Load average (1, 5, 15 min): ${Object.entries(loads)
        .map(([k, v]) => `${k} ${v}`)
        .join("; ")}.`,
      "",
    );
  json.goals = goalList;
  const text = report.join("\n");
  console.log(text);
  const base = onlyMemory ? "memory" : "results";
  await writeFile(join(outDir, `${base}.json`), JSON.stringify(json, null, 2) + "\n");
  await writeFile(join(outDir, `${base}.md`), text + "\n");
  log(`wrote ${join(outDir, `${base}.json`)}, ${base}.md${onlyMemory ? "" : ", throughput.svg"}`);
}

main().then(
  () => shutdown(0),
  (err: Error) => shutdown(1, `bench failed: ${err.stack ?? err.message}`),
);
