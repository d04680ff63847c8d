/**
 * System calls and CPU per request of each proxy process, for GET at the given pipelines: the
 * proxy is syscall-bound on loopback, so these say more than a CPU profile. (V8's profiler samples
 * wall time, so time a worker spends descheduled inside write(2), while the process it woke runs
 * on the same core, shows as `writeBuffer`.)
 *
 *   node --import tsx bench/syscalls.ts [--workers 1] [--pipelines 1,16] [--requests 300000]
 *
 * Reads `syscr`/`syscw` from /proc/<pid>/io and utime/stime from /proc/<pid>/stat around one
 * redis-benchmark run (50 clients) per pipeline depth, and prints a table per process (also written
 * to bench/results/syscalls.md).
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CLK_TCK, runBounded } from "./lib/procs.ts";
import { Cleanups, REPO_ROOT, benchDir, startBenchCluster, startProxyHost } from "./lib/targets.ts";
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

async function main() {
  const { values } = parseArgs({
    options: {
      workers: { type: "string", default: "1" },
      pipelines: { type: "string", default: "1,16" },
      requests: { type: "string", default: "300000" },
    },
  });
  const cleanups = new Cleanups();
  process.on("SIGINT", () => void cleanups.run().then(() => process.exit(130)));
  const timer = setTimeout(() => void cleanups.run().then(() => process.exit(1)), 300_000);
  try {
    const dir = await benchDir(cleanups, "dredis-bench-sys-");
    const cluster = await startBenchCluster(cleanups);
    const host = await startProxyHost(cleanups, dir, cluster.seeds.slice(0, 1), Number(values.workers));
    const fill = ["-p", String(host.port), "-c", "50", "-n", String(KEYSPACE * 3), "-P", "16"];
    await runBounded("redis-benchmark", [...fill, "-t", "set", "-r", String(KEYSPACE), "-q"], 60_000);
    const lines = [
      "| pipeline | rps | process | reads / request | writes / request | user us / request | system us / request |",
      "|---|---|---|---|---|---|---|",
    ];
    for (const pipeline of values.pipelines!.split(",")) {
      const requests = Number(values.requests) * (pipeline === "1" ? 1 : 8);
      const pids = host.pids();
      const before = pids.map(counters);
      const started = process.hrtime.bigint();
      const args = ["-p", String(host.port), "-c", "50", "-n", String(requests), "-P", pipeline];
      const run = await runBounded(
        "redis-benchmark",
        [...args, "-t", "get", "-r", String(KEYSPACE), "-q"],
        120_000,
      );
      if (run.code !== 0) throw new Error(`redis-benchmark failed: ${run.stderr || run.stdout}`);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const after = pids.map(counters);
      pids.forEach((pid, i) => {
        const a = after[i]!;
        const b = before[i]!;
        const per = (x: number) => (x / requests).toFixed(3);
        // The primary and an idle busy proxy are not on this data path.
        if ((a.reads - b.reads + a.writes - b.writes) / requests < 0.01) return;
        lines.push(
          `| ${pipeline} | ${Math.round(requests / seconds / 1000)}k | ${pid} | ${per(a.reads - b.reads)} | ` +
            `${per(a.writes - b.writes)} | ${(((a.userSeconds - b.userSeconds) * 1e6) / requests).toFixed(2)} | ` +
            `${(((a.systemSeconds - b.systemSeconds) * 1e6) / requests).toFixed(2)} |`,
        );
      });
    }
    const text = [
      `### System calls and CPU per request, GET through ${values.workers} worker(s), 50 clients`,
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
