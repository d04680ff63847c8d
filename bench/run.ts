/**
 * `npm run bench`: side-by-side throughput, latency and CPU of a single redis-server, a 3-master
 * cluster reached directly, our proxy host with 1 and 2 workers over that cluster, and twemproxy
 * over three standalone servers; then the proxy's memory benchmark.
 *
 *   npm run bench                    5 interleaved rounds + memory (about 7-8 minutes)
 *   npm run bench -- --quick         1 short round + short memory run (under 2 minutes)
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
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machine } from "./lib/machine.ts";
import { goals, goalsMarkdown, markdown, summarise, svgChart } from "./lib/report.ts";
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
} from "./lib/workloads.ts";
import { runMemoryBench, memoryMarkdown, type MemoryResult } from "./memory.ts";

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
const budgetMs = (quick ? 4 : 25) * 60_000 * Math.max(1, rounds / 3);
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
  if (pin) pinEverything(targets);
  log("warming up keys (GET keyspace and 1 KB mix keys) on every target");
  for (const t of targets) {
    const outs = await runStreams(warmupStreams(t), 120_000);
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
  const runs: RunResult[] = [];
  const timeoutMs = 60_000;
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
        const r = await measure(w, t, round, scale, timeoutMs);
        runs.push(r);
        log(
          `round ${round}/${rounds} ${w.id.padEnd(10)} ${t.id.padEnd(9)} ` +
            (r.ok
              ? `${Math.round(r.rps).toString().padStart(7)} rps p50 ${r.p50Ms.toFixed(3)} ms p99 ${r.p99Ms.toFixed(3)} ms ` +
                `cpu proxy ${r.proxyCpuSeconds.toFixed(2)} s redis ${r.serverCpuSeconds.toFixed(2)} s`
              : `FAILED: ${r.error}`),
        );
      }
    }
  }
  return { targets, runs };
}

/**
 * `--pin`: the load generator gets CPU 0 to itself and every server and proxy process (all their
 * threads) shares the other CPUs, as when the clients run on other machines. Without it the
 * scheduler mixes them, and every proxy competes with redis-benchmark for the same cores.
 */
function pinEverything(targets: Target[]): void {
  const cpus = availableParallelism();
  if (cpus < 2) throw new Error(`--pin needs at least 2 CPUs (this machine has ${cpus})`);
  const rest = cpus === 2 ? "1" : `1-${cpus - 1}`;
  const pids = new Set(targets.flatMap((t) => [...t.proxyPids(), ...t.serverPids()]));
  for (const pid of pids) execFileSync("taskset", ["-a", "-p", "-c", rest, String(pid)], { stdio: "ignore" });
  pinLoadGenerator(0);
  log(`pinned: redis-benchmark on CPU 0, ${pids.size} server and proxy processes on CPU ${rest}`);
}

async function main() {
  const dir = await benchDir(cleanups);
  const info = machine();
  await mkdir(outDir, { recursive: true });
  const stamp = new Date().toISOString();
  let memory: MemoryResult | undefined;
  const report: string[] = [];
  const json: Record<string, unknown> = { date: stamp, machine: info, rounds, quick, scale, pinned: pin };

  if (!onlyMemory) {
    const { targets, runs } = await throughput(dir);
    const ids = targets.map((t) => t.id);
    const labels = Object.fromEntries(targets.map((t) => [t.id, t.label]));
    const cells = summarise(runs, workloads, ids);
    const goalList = goals(cells);
    const title = `distributed-redis bench, ${stamp.slice(0, 16)}Z, ${rounds} round(s)${quick ? " (quick)" : ""}, ${info.nproc} x ${info.cpuModel}`;
    report.push(
      `### Throughput, latency and CPU (${rounds} interleaved round(s)${quick ? ", quick" : ""})`,
      "",
      ...(pin
        ? [
            "Pinned (`--pin`): redis-benchmark alone on CPU 0, every server and proxy process on the other CPU(s).",
            "",
          ]
        : []),
      `Machine: ${info.nproc} CPUs (${info.cpuModel}), ${info.memTotalGiB} GiB, Linux ${info.kernel}, Node ${info.node}, ${info.redis}, ${info.nutcracker}. Load average at start: ${info.loadAverageAtStart}.`,
      "",
      markdown(cells, workloads, labels),
      "### Tracker goals",
      "",
      goalsMarkdown(goalList),
      "",
    );
    Object.assign(json, { targets: labels, workloads: workloads.map((w) => ({ id: w.id, label: w.label })) });
    Object.assign(json, { summary: cells, goals: goalList, runs });
    await writeFile(join(outDir, "throughput.svg"), svgChart(cells, workloads, ids, labels, title));
    await cleanups.run(); // free the cores before the memory benchmark
  }
  if (onlyMemory || withMemory) {
    log("memory benchmark");
    memory = await runMemoryBench(cleanups, { quick, log });
    json.memory = memory;
    report.push(memoryMarkdown(memory), "");
    await cleanups.run();
  }
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
