/**
 * Runs node:test files on a fixed number of lanes, slowest first, and reaps what they leave.
 *
 *   node --import tsx scripts/test-run.ts [--lanes N] [--timeout SECONDS] [--run ID] [--valkey FILE]... FILE...
 *
 * Why not one `node --test`: its runner sorts the files by path, so the slowest files start wherever
 * the alphabet puts them and the run ends on a tail of one long file. Here each file runs as its own
 * process (`node --import tsx --test-reporter=spec FILE`, what the runner's child runs, without the
 * runner's parent process: 0.3 CPU-seconds a file), files are taken longest first by the committed
 * table scripts/test-weights.json (seconds of wall time; unknown files count as DEFAULT_WEIGHT), and a
 * lane that ends a file takes the next one. Each `--valkey FILE` runs that file (again) with
 * DREDIS_TEST_ENGINE=valkey, in the same queue (no wait for the first engine's last file).
 *
 * Each file's output is kept and printed whole when the file ends (lanes never interleave lines),
 * then one summary line a file: seconds of wall time and, where /usr/bin/time exists, CPU-seconds of
 * the file's process and every process it waited for (daemons it started are not counted).
 *
 * Leaks: every process a file starts inherits DREDIS_TEST_RUN=<run id>/<file number> (the run id from
 * --run, random by default). When the file's process has exited (passed, failed, or killed at the
 * timeout), every process still holding that exact entry is the file's leak: named in its output,
 * then stopped (scripts/test-reap.ts). The files still running are never touched (their numbers
 * differ). On SIGINT/SIGTERM the files running are stopped and the whole run's processes reaped.
 *
 * Exit status: 1 when any file failed or timed out; a leak is named in the output and the summary.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkRunId, markedProcesses, reap, signal } from "./test-reap.ts";

/** Seconds assumed for a file the weight table does not list: early enough not to end the run. */
const DEFAULT_WEIGHT = 60;
const TIME = "/usr/bin/time";

interface Job {
  file: string;
  engine: "redis" | "valkey";
  weight: number;
  marker: string;
}

interface Result {
  job: Job;
  status: "ok" | "FAIL" | "TIMEOUT";
  wall: number;
  cpu: number | undefined;
  leaked: string[];
}

const { values, positionals } = parseArgs({
  options: {
    lanes: { type: "string", default: "2" },
    timeout: { type: "string", default: "300" },
    run: { type: "string", default: randomBytes(6).toString("hex") },
    valkey: { type: "string", multiple: true, default: [] },
  },
  allowPositionals: true,
});
const lanes = Number(values.lanes);
const timeoutMs = Number(values.timeout) * 1000;
if (!(lanes >= 1) || !(timeoutMs > 0))
  throw new Error(`bad --lanes ${values.lanes} or --timeout ${values.timeout}`);

const runId = checkRunId(values.run);
const weights = JSON.parse(readFileSync(new URL("test-weights.json", import.meta.url), "utf8")) as Record<
  string,
  number
>;
const jobs: Job[] = [
  ...positionals.map((file) => ({ file, engine: "redis" as const })),
  ...values.valkey.map((file) => ({ file, engine: "valkey" as const })),
]
  .map((job, i) => ({
    ...job,
    weight: weights[weightKey(job.file, job.engine)] ?? DEFAULT_WEIGHT,
    marker: `${runId}/${i}`,
  }))
  .sort((a, b) => b.weight - a.weight);

function weightKey(file: string, engine: Job["engine"]): string {
  return engine === "valkey" ? `valkey:${file}` : file;
}

const running = new Set<ChildProcess>();
const work = await mkdtemp(join(tmpdir(), "dredis-test-run-"));

async function runJob(job: Job): Promise<Result> {
  const timesFile = join(work, `${job.marker.replace("/", "-")}.time`);
  const node = [process.execPath, "--import", "tsx", "--test-reporter=spec", job.file];
  const argv = existsSync(TIME) ? [TIME, "-q", "-o", timesFile, "-f", "%U %S", ...node] : node;
  const env: NodeJS.ProcessEnv = { ...process.env, DREDIS_TEST_RUN: job.marker };
  if (job.engine === "valkey") env.DREDIS_TEST_ENGINE = "valkey";
  const started = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  const output: Buffer[] = [];
  child.stdout!.on("data", (d: Buffer) => output.push(d));
  child.stderr!.on("data", (d: Buffer) => output.push(d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // /usr/bin/time passes no signal on: the file's own process is the marked child of it.
    for (const { pid } of markedProcesses((v) => v === job.marker)) signal(pid, "SIGTERM");
    child.kill("SIGTERM");
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
  clearTimeout(timer);
  running.delete(child);
  const wall = (performance.now() - started) / 1000;
  const leaked = (await reap((v) => v === job.marker)).map((p) => p.what);
  let cpu: number | undefined;
  try {
    const [user, system] = (await readFile(timesFile, "utf8")).trim().split(/\s+/).slice(-2).map(Number);
    if (Number.isFinite(user) && Number.isFinite(system)) cpu = user! + system!;
  } catch {
    // no /usr/bin/time, or it was killed
  }
  const status = timedOut ? "TIMEOUT" : code === 0 ? "ok" : "FAIL";
  const label = `${job.engine === "valkey" ? "[valkey] " : ""}${job.file}`;
  const lines = [`# ---- ${label}`, Buffer.concat(output).toString().trimEnd()];
  if (timedOut) lines.push(`# TIMEOUT: ${label} was stopped after ${timeoutMs / 1000} s`);
  if (leaked.length > 0) lines.push(`# LEAK: ${label} left ${leaked.length} processes (killed):`, ...leaked);
  lines.push(
    `# ${status} ${label} in ${wall.toFixed(1)} s${cpu === undefined ? "" : `, ${cpu.toFixed(1)} CPU-s`}`,
  );
  process.stdout.write(lines.join("\n") + "\n");
  return { job, status, wall, cpu, leaked };
}

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`# ${sig}: stopping ${running.size} running files and reaping run ${runId}\n`);
    for (const child of running) child.kill("SIGTERM");
    void reap((v) => v.startsWith(`${runId}/`)).then(async (left) => {
      for (const p of left) process.stdout.write(`# stopped (run interrupted): ${p.marker} left ${p.what}\n`);
      await rm(work, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

const started = performance.now();
const queue = [...jobs];
const results: Result[] = [];
process.stdout.write(`# ${jobs.length} files on ${lanes} lanes, slowest first (run ${runId})\n`);
await Promise.all(
  Array.from({ length: lanes }, async () => {
    for (let job = queue.shift(); job !== undefined && !stopping; job = queue.shift()) {
      results.push(await runJob(job));
    }
  }),
);
await rm(work, { recursive: true, force: true });
if (stopping) await new Promise(() => {});

const wall = (performance.now() - started) / 1000;
const cpu = results.reduce((sum, r) => sum + (r.cpu ?? 0), 0);
process.stdout.write(
  `# ==== per file: wall seconds, CPU-seconds, status (the weights in scripts/test-weights.json)\n`,
);
for (const r of [...results].sort((a, b) => b.wall - a.wall)) {
  const cpuText = r.cpu === undefined ? "-" : r.cpu.toFixed(1);
  process.stdout.write(
    `# ${r.wall.toFixed(1).padStart(6)} ${cpuText.padStart(6)} ${r.status.padEnd(7)} ${weightKey(r.job.file, r.job.engine)}\n`,
  );
}
const failed = results.filter((r) => r.status !== "ok");
const leaky = results.filter((r) => r.leaked.length > 0);
process.stdout.write(
  `# ${results.length} files in ${wall.toFixed(0)} s on ${lanes} lanes, ${cpu.toFixed(0)} CPU-s; ` +
    `${failed.length} failed, ${leaky.length} leaked processes\n`,
);
for (const r of failed) process.stdout.write(`# ${r.status}: ${weightKey(r.job.file, r.job.engine)}\n`);
for (const r of leaky)
  process.stdout.write(`# LEAKED: ${weightKey(r.job.file, r.job.engine)} (${r.leaked.length})\n`);
process.exit(failed.length > 0 ? 1 : 0);
