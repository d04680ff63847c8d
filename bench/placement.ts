/**
 * Where the kernel puts the processes, and what that does to rps. Unpinned on 2 cores, the load
 * generator, the proxy and its three servers share two CPUs as the scheduler decides, and a round's
 * rps depends on that more than on the proxy's own cost (bench/README.md, "Where the kernel puts
 * the processes"). This runs one worker and twemproxy interleaved for many rounds, samples each
 * run's placement (how many servers shared the busiest proxy process's CPU, lib/procs.ts
 * PlacementSampler), and prints rps by placement.
 *
 *   node --import tsx bench/placement.ts [--rounds 12] [--only get-p1,set-p1]
 *
 * Writes bench/results/placement.md.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadavg } from "node:os";
import { spread } from "./lib/report.ts";
import { killBounded } from "./lib/procs.ts";
import { Cleanups, REPO_ROOT, benchDir, startEnvironment } from "./lib/targets.ts";
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
    rounds: { type: "string", default: "12" },
    only: { type: "string", default: "get-p1,set-p1" },
  },
});
const rounds = Number(values.rounds);
const workloads = WORKLOADS.filter((w) => values.only!.split(",").includes(w.id));
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`--rounds ${values.rounds}: a whole number >= 1`);
if (workloads.length === 0) throw new Error(`--only ${values.only}: no such workload`);

const cleanups = new Cleanups();
const log = (msg: string) => console.error(`[placement ${new Date().toISOString().slice(11, 19)}] ${msg}`);
process.on("SIGINT", () => {
  killBounded();
  void cleanups.run().then(() => process.exit(130));
});
setTimeout(
  () => {
    console.error("bench/placement.ts exceeded its budget");
    killBounded();
    void cleanups.run().then(() => process.exit(1));
  },
  (10 + rounds * workloads.length) * 60_000,
).unref();

/** The buckets rounds are grouped in: servers on the proxy's CPU, averaged over the run. */
const BUCKETS = [
  { label: "under 0.5", has: (x: number) => x < 0.5 },
  { label: "0.5 to 1.5", has: (x: number) => x >= 0.5 && x < 1.5 },
  { label: "1.5 or more", has: (x: number) => x >= 1.5 },
];

try {
  const dir = await benchDir(cleanups, "dredis-placement-");
  const { targets: all } = await startEnvironment(cleanups, dir);
  const targets = all.filter((t) => t.id === "proxy1" || t.id === "twemproxy");
  for (const t of targets) await runStreams(warmupStreams(t), 120_000);
  const loadAtStart = loadavg().map((x) => x.toFixed(2));
  const runs: RunResult[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const w of workloads) {
      for (const t of round % 2 === 1 ? targets : [...targets].reverse()) {
        const run = await measure(w, t, round, 1, 60_000);
        if (!run.ok) throw new Error(`${w.id} on ${t.label}: ${run.error}`);
        runs.push(run);
        log(
          `${w.id} ${t.label}: ${(run.rps / 1000).toFixed(1)}k rps, ${run.serversOnProxyCpu?.toFixed(2)} servers on its CPU`,
        );
      }
    }
  }
  const lines = [
    `## Placement and rps, ${new Date().toISOString().slice(0, 16)}Z`,
    "",
    `${rounds} interleaved rounds per workload, unpinned (load average at the start ${loadAtStart.join(" ")}). "Servers on its CPU": how many of the three ` +
      "servers behind the proxy (shards, or twemproxy's redis-servers) last ran on the CPU of the busiest " +
      "proxy process, sampled every 20 ms and averaged over the run.",
    "",
    "| workload | target | servers on its CPU, median (min-max) | rps, all rounds | " +
      BUCKETS.map((b) => `rps with ${b.label} (rounds)`).join(" | ") +
      " |",
    "|---|---|---|---|" + BUCKETS.map(() => "---|").join(""),
  ];
  const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
  for (const w of workloads) {
    for (const t of targets) {
      const mine = runs.filter((r) => r.workload === w.id && r.target === t.id);
      const placed = spread(mine.map((r) => r.serversOnProxyCpu ?? NaN));
      const rps = spread(mine.map((r) => r.rps));
      const cells = BUCKETS.map((b) => {
        const some = mine.filter((r) => r.serversOnProxyCpu !== undefined && b.has(r.serversOnProxyCpu));
        const s = spread(some.map((r) => r.rps));
        return s ? `${k(s.median)} (${some.length})` : "- (0)";
      });
      lines.push(
        `| ${w.id} | ${t.label} | ${placed ? `${placed.median.toFixed(2)} (${placed.min.toFixed(2)}-${placed.max.toFixed(2)})` : "-"} | ` +
          `${rps ? `${k(rps.median)} (${k(rps.min)}-${k(rps.max)})` : "-"} | ${cells.join(" | ")} |`,
      );
    }
  }
  const text = lines.join("\n") + "\n";
  console.log(text);
  const out = join(REPO_ROOT, "bench", "results", "placement.md");
  await writeFile(out, text);
  log(`wrote ${out}`);
} finally {
  closePollers();
  await cleanups.run();
}
