/**
 * System calls and CPU per request of the proxy's worker and of twemproxy, interleaved, for GET
 * and SET at the given pipelines: the proxy is syscall-bound on loopback, so these say more than
 * a CPU profile. (V8's profiler samples wall time, so time a worker spends descheduled inside
 * write(2), while the process it woke runs on the same core, shows as `writeBuffer`.)
 *
 *   node --import tsx bench/syscalls.ts [--workers 1] [--pipelines 1,16] [--commands get,set]
 *     [--requests 300000] [--rounds 3] [--base DIR] [--floor]
 *
 * Reads `syscr`/`syscw` from /proc/<pid>/io and utime/stime from /proc/<pid>/stat around each
 * redis-benchmark run (50 clients): per round, pipeline and command, the proxy host (over a
 * three-master cluster) and twemproxy (nutcracker over three standalone redis-servers, as in
 * `npm run bench`) run one after the other; with `--base`, so does the same host built from
 * another checkout (`git worktree add DIR main`), on the same cluster; with `--floor`, so does
 * `lib/node-floor.mjs` (a Node relay that does the worker's I/O and nothing else) over twemproxy's
 * servers: what Node itself costs per request. Prints the medians (min-max over rounds) per
 * process that carried the load, and writes them to bench/results/syscalls.md.
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePorts } from "../src/local/ports.ts";
import { CLK_TCK, processTree, runBounded, spawnTracked, stopChild } from "./lib/procs.ts";
import {
  Cleanups,
  REPO_ROOT,
  benchDir,
  respPing,
  startBenchCluster,
  startProxyHost,
  startTwemproxy,
} from "./lib/targets.ts";
import { KEYSPACE } from "./lib/workloads.ts";

interface Counters {
  reads: number;
  writes: number;
  userSeconds: number;
  systemSeconds: number;
}

function counters(pid: number): Counters {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return {
    reads: Number(/syscr: (\d+)/.exec(io)![1]),
    writes: Number(/syscw: (\d+)/.exec(io)![1]),
    userSeconds: Number(stat[11]) / CLK_TCK,
    systemSeconds: Number(stat[12]) / CLK_TCK,
  };
}

/** One process's figures for one run, per request. */
interface Sample {
  rps: number;
  reads: number;
  writes: number;
  userUs: number;
  systemUs: number;
}

interface Target {
  name: string;
  port: number;
  pids(): number[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "median (min-max)" with the given decimals. */
function spread(values: number[], digits: number, unit = ""): string {
  const f = (x: number) => x.toFixed(digits) + unit;
  return `${f(median(values))} (${f(Math.min(...values))}-${f(Math.max(...values))})`;
}

async function measure(target: Target, command: string, pipeline: string, requests: number) {
  const pids = target.pids();
  const before = pids.map(counters);
  const started = process.hrtime.bigint();
  const args = ["-p", String(target.port), "-c", "50", "-n", String(requests), "-P", pipeline];
  const run = await runBounded(
    "redis-benchmark",
    [...args, "-t", command, "-r", String(KEYSPACE), "-q"],
    120_000,
  );
  if (run.code !== 0) throw new Error(`redis-benchmark failed: ${run.stderr || run.stdout}`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const samples = new Map<number, Sample>();
  pids.forEach((pid, i) => {
    const a = counters(pid);
    const b = before[i]!;
    const reads = (a.reads - b.reads) / requests;
    const writes = (a.writes - b.writes) / requests;
    // The primary and an idle busy proxy are not on this data path.
    if (reads + writes < 0.05) return;
    samples.set(pid, {
      rps: requests / seconds,
      reads,
      writes,
      userUs: ((a.userSeconds - b.userSeconds) * 1e6) / requests,
      systemUs: ((a.systemSeconds - b.systemSeconds) * 1e6) / requests,
    });
  });
  return samples;
}

async function main() {
  const { values } = parseArgs({
    options: {
      workers: { type: "string", default: "1" },
      pipelines: { type: "string", default: "1,16" },
      commands: { type: "string", default: "get,set" },
      requests: { type: "string", default: "300000" },
      rounds: { type: "string", default: "3" },
      base: { type: "string" },
      floor: { type: "boolean", default: false },
    },
  });
  const pipelines = values.pipelines!.split(",");
  const commands = values.commands!.split(",");
  const rounds = Number(values.rounds);
  const cleanups = new Cleanups();
  process.on("SIGINT", () => void cleanups.run().then(() => process.exit(130)));
  // Bounded: up to four targets per round, pipeline and command, each run bounded at 120 s.
  const boundMs = 120_000 + rounds * pipelines.length * commands.length * 4 * 120_000;
  const timer = setTimeout(() => void cleanups.run().then(() => process.exit(1)), boundMs);
  const loadBefore = loadavg()[0]!;
  const startedAt = new Date();
  try {
    const dir = await benchDir(cleanups, "dredis-bench-sys-");
    const cluster = await startBenchCluster(cleanups);
    const host = await startProxyHost(cleanups, dir, cluster.seeds.slice(0, 1), Number(values.workers));
    const twem = await startTwemproxy(cleanups, dir);
    const targets: Target[] = [
      { name: `dredis ${values.workers}w`, port: host.port, pids: host.pids },
      { name: "twemproxy", port: twem.port, pids: () => processTree(twem.child.pid!) },
    ];
    if (values.base !== undefined) {
      const seeds = cluster.seeds.slice(0, 1);
      const base = await startProxyHost(cleanups, dir, seeds, Number(values.workers), { root: values.base });
      targets.push({ name: `dredis ${values.workers}w (base)`, port: base.port, pids: base.pids });
    }
    if (values.floor) {
      const [port] = await freePorts(1);
      const floor = spawnTracked(
        process.execPath,
        [
          join(REPO_ROOT, "bench", "lib", "node-floor.mjs"),
          String(port),
          ...twem.servers.map((s) => String(s.port)),
        ],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      cleanups.after(() => stopChild(floor, "SIGTERM", 5_000));
      const deadline = Date.now() + 10_000;
      while (!(await respPing(port!))) {
        if (floor.exitCode !== null || Date.now() > deadline)
          throw new Error("node-floor did not answer PING");
        await new Promise((r) => setTimeout(r, 50));
      }
      targets.push({ name: "node floor", port: port!, pids: () => [floor.pid!] });
    }
    for (const target of targets) {
      const fill = ["-p", String(target.port), "-c", "50", "-n", String(KEYSPACE * 3), "-P", "16"];
      await runBounded("redis-benchmark", [...fill, "-t", "set", "-r", String(KEYSPACE), "-q"], 60_000);
    }
    // Samples per "pipeline command target pid".
    const results = new Map<string, Sample[]>();
    for (let round = 0; round < rounds; round++) {
      for (const pipeline of pipelines) {
        for (const command of commands) {
          const requests = Number(values.requests) * (pipeline === "1" ? 1 : 8);
          // Alternate the order, so no target always runs on the warmer machine.
          const order = round % 2 === 0 ? targets : [...targets].reverse();
          for (const target of order) {
            for (const [pid, sample] of await measure(target, command, pipeline, requests)) {
              const key = `${pipeline}\t${command}\t${target.name}\t${pid}`;
              results.set(key, [...(results.get(key) ?? []), sample]);
            }
          }
        }
      }
    }
    const lines = [
      "| pipeline | command | process | rps | reads / request | writes / request | user us / request | system us / request | CPU s / 100k requests |",
      "|---|---|---|---|---|---|---|---|---|",
    ];
    for (const [key, samples] of results) {
      const [pipeline, command, name, pid] = key.split("\t");
      const of = (field: keyof Sample, digits: number, scale = 1, unit = "") =>
        spread(
          samples.map((s) => s[field] * scale),
          digits,
          unit,
        );
      const cpu = spread(
        samples.map((s) => (s.userUs + s.systemUs) / 10),
        2,
      );
      const cells = [
        pipeline,
        command!.toUpperCase(),
        `${name} (${pid})`,
        of("rps", 0, 1 / 1000, "k"),
        of("reads", 3),
        of("writes", 3),
        of("userUs", 2),
        of("systemUs", 2),
        cpu,
      ];
      lines.push(`| ${cells.join(" | ")} |`);
    }
    const text = [
      `### System calls and CPU per request through ${values.workers} worker(s) and twemproxy${values.floor ? " (and the Node floor)" : ""}, 50 clients`,
      "",
      `${startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC, ${rounds} interleaved rounds, ` +
        `${values.requests} requests per run at pipeline 1 (8x that at higher pipelines); ` +
        `medians (min-max over rounds); load average ${loadBefore.toFixed(1)} at the start, ` +
        `${loadavg()[0]!.toFixed(1)} at the end.`,
      "",
      ...lines,
      "",
    ].join("\n");
    console.log(text);
    await writeFile(join(REPO_ROOT, "bench", "results", "syscalls.md"), text);
  } finally {
    clearTimeout(timer);
    await cleanups.run();
  }
}

main().catch((err: Error) => {
  console.error(err.stack);
  process.exitCode = 1;
});
