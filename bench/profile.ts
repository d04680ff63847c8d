/**
 * CPU profiles under the benchmark: a proxy host with one worker (the compiled build, as
 * benchmarked) is started with `--cpu-prof`, redis-benchmark drives the chosen workloads through
 * it, the host is stopped (profiles are written on exit), and the worker's and the busy proxy's
 * profiles are summarised as top self-time functions and self time per source file.
 *
 *   node --import tsx bench/profile.ts [--quick] [--workloads set-p1,get-p16]
 *
 * Writes bench/results/profile.md (and leaves the .cpuprofile files in bench/results/tmp/, which
 * Chrome DevTools or speedscope open).
 */
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  Cleanups,
  REPO_ROOT,
  benchDir,
  startBenchCluster,
  startProxyHost,
  type Target,
} from "./lib/targets.ts";
import { WORKLOADS, closePollers, measure, runStreams, warmupStreams } from "./lib/workloads.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function shortUrl(url: string): string {
  if (!url) return "(native)";
  const i = url.indexOf("/src/");
  if (i >= 0) return url.slice(i + 1);
  const d = url.indexOf("/dist/"); // the compiled build: line numbers are the emitted JS's
  if (d >= 0) return url.slice(d + 1);
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  return url.replace(/^file:\/\//, "");
}

/** Self time per function and per file, in ms, from the samples (idle excluded). */
export function selfTimes(profile: Profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const perNode = new Map<number, number>();
  profile.samples.forEach((id, i) => perNode.set(id, (perNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of perNode) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === "(idle)") {
      idle += us;
      continue;
    }
    total += us;
    const name = `${f.functionName || "(anonymous)"} ${shortUrl(f.url)}${f.url && f.lineNumber > 0 ? `:${f.lineNumber + 1}` : ""}`;
    fns.set(name, (fns.get(name) ?? 0) + us);
    const file = f.url ? shortUrl(f.url) : f.functionName;
    files.set(file, (files.get(file) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalMs: total / 1000, idleMs: idle / 1000, functions: sorted(fns), files: sorted(files) };
}

async function main() {
  const { values } = parseArgs({
    options: { quick: { type: "boolean", default: false }, workloads: { type: "string" } },
  });
  const ids = (values.workloads ?? "set-p1,get-p1,set-p16,get-p16").split(",");
  const workloads = WORKLOADS.filter((w) => ids.includes(w.id));
  const cleanups = new Cleanups();
  process.on("SIGINT", () => void cleanups.run().then(() => process.exit(130)));
  const timer = setTimeout(() => void cleanups.run().then(() => process.exit(1)), 300_000);
  const profDir = join(REPO_ROOT, "bench", "results", "tmp", "cpuprofile");
  await rm(profDir, { recursive: true, force: true });
  await mkdir(profDir, { recursive: true });
  try {
    const dir = await benchDir(cleanups, "dredis-bench-prof-");
    const cluster = await startBenchCluster(cleanups);
    const host = await startProxyHost(cleanups, dir, cluster.seeds.slice(0, 1), 1, {
      // Node 20 refuses --cpu-prof in NODE_OPTIONS; execArgv is inherited by the forked workers.
      nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}`],
    });
    const target: Target = {
      id: "proxy1",
      label: "dredis 1w",
      port: host.port,
      cluster: false,
      proxyPids: host.pids,
      serverPids: () => cluster.masters.map((m) => m.pid!),
      counterSources: () => cluster.masters.map((m) => ({ port: m.port })),
    };
    await runStreams(warmupStreams(target), 60_000);
    for (const w of workloads) {
      const r = await measure(w, target, 1, values.quick ? 0.3 : 1, 120_000);
      console.error(`${w.id}: ${Math.round(r.rps)} rps ${r.ok ? "" : r.error}`);
    }
    closePollers();
    await host.stop();
  } finally {
    clearTimeout(timer);
    await cleanups.run();
  }
  // One summary per process that did work: the worker, and the busy proxy when a workload
  // sends it commands (MSET across slots). The primary idles.
  const summaries: (ReturnType<typeof selfTimes> & { file: string; role: string })[] = [];
  for (const file of await readdir(profDir)) {
    const p = JSON.parse(await readFile(join(profDir, file), "utf8")) as Profile;
    const times = selfTimes(p);
    const role = roleOf(times.files.map(([name]) => name));
    if (role !== null) summaries.push({ file, role, ...times });
  }
  summaries.sort((a, b) => b.totalMs - a.totalMs);
  if (summaries.length === 0) throw new Error("no CPU profile was written");
  const lines: string[] = [];
  for (const s of summaries.filter((x, i) => i === 0 || x.totalMs > summaries[0]!.totalMs * 0.1)) {
    const role = s.role;
    const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1)}%`;
    lines.push(
      `### CPU profile of ${role} (${workloads.map((w) => w.id).join(", ")})`,
      "",
      `Busy ${(s.totalMs / 1000).toFixed(1)} s on the JS thread's samples (idle ${(s.idleMs / 1000).toFixed(1)} s excluded). ` +
        `Kernel time inside syscalls shows as the JS or native frame that made the call, and so does time ` +
        `spent descheduled inside one (V8 samples wall time): read system CPU from bench/syscalls.ts.`,
      "",
      "| self time | share | function |",
      "|---|---|---|",
      ...s.functions
        .slice(0, 25)
        .map(([name, us]) => `| ${(us / 1000).toFixed(0)} ms | ${pct(us / 1000)} | \`${name}\` |`),
      "",
      "| self time | share | file |",
      "|---|---|---|",
      ...s.files
        .slice(0, 15)
        .map(([name, us]) => `| ${(us / 1000).toFixed(0)} ms | ${pct(us / 1000)} | \`${name}\` |`),
      "",
    );
  }
  const text = lines.join("\n");
  console.log(text);
  await writeFile(join(REPO_ROOT, "bench", "results", "profile.md"), text);
}

/**
 * Which process a profile is of, by the files its samples ran in: workers run client sessions,
 * the busy proxy its own connections; the primary and tsx's loader threads (null) are left out.
 */
function roleOf(files: string[]): string | null {
  const ran = (module: string) =>
    files.some((file) => file.endsWith(`${module}.ts`) || file.endsWith(`${module}.js`));
  if (ran("proxy/client")) return "one proxy worker";
  if (ran("proxy/busy/connection")) return "the busy proxy";
  return null;
}

main().catch((err: Error) => {
  console.error(err.stack);
  process.exitCode = 1;
});
