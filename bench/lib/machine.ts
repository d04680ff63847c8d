import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, release } from "node:os";

export interface Machine {
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  kernel: string;
  node: string;
  redis: string;
  nutcracker: string;
  loadAverageAtStart: string;
}

function version(cmd: string, args: string[]): string {
  // nutcracker prints its version on stderr
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n")[0] ?? "?";
}

export function machine(): Machine {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  return {
    nproc: availableParallelism(),
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "?",
    memTotalGiB: Math.round((Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024 / 1024) * 10) / 10,
    kernel: release(),
    node: process.version,
    redis: version("redis-server", ["--version"]),
    nutcracker: version("nutcracker", ["--version"]),
    loadAverageAtStart: readFileSync("/proc/loadavg", "utf8").trim(),
  };
}
