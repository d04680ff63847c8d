/**
 * `npm run bench:ab -- --base DIR`: this checkout's proxy against another checkout's (say the
 * commit before a refactor, from `git worktree add DIR REV`), both compiled, one worker each, over
 * the same 3-master cluster, run interleaved (A B, then B A...) for `--rounds` rounds. Prints per
 * workload the median rps of each (min-max), and the per-round ratio this/base with its spread:
 * the spread of that ratio is the run's own noise, against which a change is judged.
 *
 *   npm run bench:ab -- --base ../before --rounds 6 --only get-p1,set-p1,get-p16,set-p16,mset-p16
 *
 * `--node-args` / `--base-node-args` (space-separated) start either host's node with flags, so a
 * runtime flag can be judged on one build: `--base . --node-args=--single-threaded-gc`.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { spread, type Spread } from "./lib/report.ts";
import { killBounded } from "./lib/procs.ts";
import {
  Cleanups,
  REPO_ROOT,
  benchDir,
  startBenchCluster,
  startProxyHost,
  type Target,
} from "./lib/targets.ts";
import {
  WORKLOADS,
  closePollers,
  measure,
  runStreams,
  warmupStreams,
  type RunResult,
} from "./lib/workloads.ts";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    rounds: { type: "string", default: "6" },
    only: { type: "string", default: "get-p1,set-p1,get-p16,set-p16,mset-p1,mset-p16" },
    workers: { type: "string", default: "1" },
    "node-args": { type: "string", default: "" },
    "base-node-args": { type: "string", default: "" },
  },
});
if (values.base === undefined) throw new Error("--base DIR is required: a checkout to compare with");
const baseRoot = resolve(values.base);
if (!existsSync(resolve(baseRoot, "tsconfig.build.json")))
  throw new Error(`--base ${baseRoot}: not a checkout of this project (no tsconfig.build.json)`);
const rounds = Number(values.rounds);
const workers = Number(values.workers);
const workloads = WORKLOADS.filter((w) => values.only!.split(",").includes(w.id));
if (workloads.length === 0) throw new Error(`--only ${values.only}: no such workload`);

const cleanups = new Cleanups();
const log = (msg: string) => console.error(`[ab ${new Date().toISOString().slice(11, 19)}] ${msg}`);
process.on("SIGINT", () => {
  killBounded();
  void cleanups.run().then(() => process.exit(130));
});
// Bounded like the main benchmark: a stuck process must not hold the machine.
setTimeout(
  () => {
    console.error("bench:ab exceeded its budget");
    killBounded();
    void cleanups.run().then(() => process.exit(1));
  },
  (10 + rounds * workloads.length) * 60_000,
).unref();

try {
  const dir = await benchDir(cleanups, "dredis-ab-");
  const cluster = await startBenchCluster(cleanups);
  const seeds = cluster.masters.map((m) => m.address);
  const serverPids = () => cluster.masters.map((m) => m.pid!).filter(Boolean);
  const targets: Target[] = [];
  const words = (s: string) => s.split(" ").filter(Boolean);
  for (const [id, root, nodeArgs] of [
    ["this", REPO_ROOT, words(values["node-args"]!)],
    ["base", baseRoot, words(values["base-node-args"]!)],
  ] as const) {
    log(`building and starting ${id} (${root}${nodeArgs.length ? ` with node ${nodeArgs.join(" ")}` : ""})`);
    const host = await startProxyHost(cleanups, dir, seeds, workers, { root, nodeArgs });
    targets.push({
      id,
      label: id,
      port: host.port,
      cluster: false,
      proxyPids: host.pids,
      serverPids,
      counterSources: () => cluster.masters.map((m) => ({ port: m.port })),
    });
  }
  for (const t of targets) await runStreams(warmupStreams(t), 120_000);
  const runs: RunResult[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const w of workloads) {
      const order = round % 2 === 1 ? targets : [...targets].reverse();
      for (const t of order) {
        const run = await measure(w, t, round, 1, 60_000);
        if (!run.ok) throw new Error(`${w.id} on ${t.id}: ${run.error}`);
        runs.push(run);
      }
    }
    log(`round ${round}/${rounds} done`);
  }
  console.log(table(runs));
} finally {
  closePollers();
  await cleanups.run();
}

function table(runs: RunResult[]): string {
  const fmt = (s: Spread | undefined, f: (n: number) => string) =>
    s === undefined ? "-" : `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
  const k = (n: number) => `${Math.round(n / 1000)}k`;
  const x = (n: number) => n.toFixed(3);
  const lines = [
    `${rounds} interleaved rounds, ${workers} worker(s) each; ratio = this / base per round`,
    "",
    "| workload | this rps | base rps | ratio this/base | this CPU s/100k | base CPU s/100k | this redis CPU s/100k | base redis CPU s/100k | this p99 ms | base p99 ms | servers on this's CPU | servers on base's CPU |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const w of workloads) {
    const of = (id: string) => runs.filter((r) => r.workload === w.id && r.target === id);
    const mine = of("this");
    const base = of("base");
    const ratios = mine.map((r) => r.rps / base.find((b) => b.round === r.round)!.rps);
    const cpu = (rs: RunResult[]) => spread(rs.map((r) => (r.proxyCpuSeconds / r.requests) * 100_000));
    // The shards' CPU per request: what a change to the proxy's batching moves most (one write
    // to a shard wakes it once, whatever it carries).
    const redis = (rs: RunResult[]) => spread(rs.map((r) => (r.serverCpuSeconds / r.requests) * 100_000));
    const p99 = (rs: RunResult[]) => spread(rs.map((r) => r.p99Ms));
    // Unpinned, where the kernel ran the shards decides much of a round (README, "Where the kernel
    // puts the processes"): a change that moves this moves rps on a shared machine only.
    const placed = (rs: RunResult[]) => spread(rs.map((r) => r.serversOnProxyCpu ?? NaN));
    const s2 = (n: number) => n.toFixed(2);
    lines.push(
      `| ${w.id} | ${fmt(spread(mine.map((r) => r.rps)), k)} | ${fmt(spread(base.map((r) => r.rps)), k)} | ` +
        `${fmt(spread(ratios), x)} | ${fmt(cpu(mine), s2)} | ${fmt(cpu(base), s2)} | ` +
        `${fmt(redis(mine), s2)} | ${fmt(redis(base), s2)} | ${fmt(p99(mine), x)} | ${fmt(p99(base), x)} | ` +
        `${fmt(placed(mine), s2)} | ${fmt(placed(base), s2)} |`,
    );
  }
  return lines.join("\n");
}
