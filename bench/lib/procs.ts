/**
 * Process accounting from /proc: CPU seconds (utime + stime) and RSS of a process and its
 * descendants, and a registry of every child the bench starts so that errors and Ctrl-C
 * still stop them (by PID, never by name).
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Clock ticks per second for /proc/<pid>/stat times (getconf CLK_TCK; 100 on Linux/x86). */
export const CLK_TCK = 100;

interface Stat {
  ppid: number;
  ticks: number;
  /** The CPU it last ran on. */
  cpu: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Field 2 (comm) may contain spaces and parentheses: split after its closing paren.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, processor 39.
    return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]), cpu: Number(rest[36]) };
  } catch {
    return undefined;
  }
}

/** The PID and all its live descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(pid);
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU seconds used so far by the given processes (user + system). */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

/**
 * Where the kernel ran a proxy's processes against the servers behind it, sampled while a load
 * runs: unpinned, a run's rps depends on it (bench/README.md, "Where the kernel puts the
 * processes"). The harness's own reads of /proc are a few hundred a second.
 */
export class PlacementSampler {
  private readonly cpus = new Map<number, number[]>();
  private readonly ticksBefore = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;
  /** What `stop()` returned (null before it was called). */
  result: number | null = null;

  constructor(
    private readonly proxies: readonly number[],
    private readonly servers: readonly number[],
    intervalMs = 20,
  ) {
    for (const pid of [...proxies, ...servers]) this.cpus.set(pid, []);
    for (const pid of proxies) this.ticksBefore.set(pid, readStat(pid)?.ticks ?? 0);
    this.timer = setInterval(() => this.sample(), intervalMs).unref();
  }

  private sample(): void {
    for (const [pid, list] of this.cpus) list.push(readStat(pid)?.cpu ?? -1);
  }

  /**
   * Stops sampling. Returns how many servers shared the CPU of the proxy process that used the
   * most CPU during the run (a worker, or nutcracker), averaged over the samples; null without a
   * proxy or a sample.
   */
  stop(): number | null {
    clearInterval(this.timer);
    this.result = this.compute();
    return this.result;
  }

  private compute(): number | null {
    let busiest: number | undefined;
    let most = -1;
    for (const pid of this.proxies) {
      const used = (readStat(pid)?.ticks ?? 0) - this.ticksBefore.get(pid)!;
      if (used > most) [busiest, most] = [pid, used];
    }
    if (busiest === undefined) return null;
    const mine = this.cpus.get(busiest)!;
    let shared = 0;
    let samples = 0;
    mine.forEach((cpu, i) => {
      if (cpu < 0) return;
      samples++;
      for (const server of this.servers) if (this.cpus.get(server)![i] === cpu) shared++;
    });
    return samples === 0 ? null : shared / samples;
  }
}

/** Resident set size in bytes summed over the given processes. */
export function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
      kb += m ? Number(m[1]) : 0;
    } catch {
      // exited
    }
  }
  return kb * 1024;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Spawns a child that is SIGKILLed (with its process group) if this process exits first. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const child of live) killGroup(child, "SIGKILL");
    });
  }
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** Signals a child's process group when it leads one (spawned detached), else the child alone. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Resolves when the child has exited; SIGKILLs it (and its group) after `graceMs`. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals,
  graceMs: number,
  options: { detached?: boolean } = {},
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  // Workers forked by a host that was SIGKILLed would be orphans: clear its group too (a child
  // spawned detached leads a group with its own PID; otherwise there is no such group).
  if (child.pid !== undefined && options.detached) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // the group is already empty
    }
  }
}

const benchmarks = new Set<ChildProcess>();

/** SIGKILLs the short-lived commands started by runBounded (redis-benchmark) that still run. */
export function killBounded(): void {
  for (const child of benchmarks) child.kill("SIGKILL");
}

/** Runs a command to completion with a time bound; returns stdout, stderr and the exit code. */
export function runBounded(
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; code: number | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawnTracked(command, args);
    benchmarks.add(child);
    child.once("exit", () => benchmarks.delete(child));
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code, timedOut });
    });
  });
}
