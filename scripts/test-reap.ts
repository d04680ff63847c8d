/**
 * Finds and stops the processes a test run left behind, by the marker every one of them inherits.
 *
 *   node --import tsx scripts/test-reap.ts RUN_ID   # every process of the run: after a pass, on exit
 *
 * scripts/test.sh starts each suite with DREDIS_TEST_RUN=<run id>/<part> in its environment (the run
 * id is random per run; scripts/test-run.ts gives each file a part of its own), and every process a
 * test starts inherits it: redis-server, valkey-server, dredis hosts and workers, the local
 * platform's daemons (setsid or not), `ip netns exec` children. /proc/PID/environ keeps the
 * environment a process started with, so a process is the run's exactly when that entry is there:
 * nothing outside the run carries it, and a part still running is left alone by matching only the
 * parts that ended. What is found is named (command line and working folder: the file it came from
 * is in its marker, its argv or its folder), sent SIGTERM and, after REAP_GRACE_MS, SIGKILL.
 */
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

const REAP_GRACE_MS = 5_000;
const KEY = "DREDIS_TEST_RUN=";

export interface MarkedProcess {
  pid: number;
  marker: string;
  /** Command line and working folder, to name the leak. */
  what: string;
}

/** Processes whose environment holds DREDIS_TEST_RUN=<value> with match(value) true. */
export function markedProcesses(match: (marker: string) => boolean): MarkedProcess[] {
  const found: MarkedProcess[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const marker = readFileSync(`/proc/${pid}/environ`, "latin1")
        .split("\0")
        .find((v) => v.startsWith(KEY))
        ?.slice(KEY.length);
      if (marker === undefined || !match(marker)) continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
      let cwd = "?";
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // exited meanwhile
      }
      found.push({ pid, marker, what: `pid ${pid}: ${argv.slice(0, 200)} (in ${cwd})` });
    } catch {
      // exited while we looked, or not ours to read
    }
  }
  return found;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** SIGTERM every matched process, SIGKILL what is left after the grace period; returns what was found. */
export async function reap(match: (marker: string) => boolean): Promise<MarkedProcess[]> {
  const found = markedProcesses(match);
  if (found.length === 0) return [];
  for (const { pid } of found) signal(pid, "SIGTERM");
  const deadline = Date.now() + REAP_GRACE_MS;
  while (Date.now() < deadline && markedProcesses(match).length > 0) await sleep(200);
  for (const { pid } of markedProcesses(match)) signal(pid, "SIGKILL");
  return found;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A run id as scripts/test.sh makes them; anything shorter could match another run's. */
export function checkRunId(run: string): string {
  if (!/^[0-9a-f]{12,}$/.test(run)) throw new Error(`not a test run id (12+ hex digits): ${run}`);
  return run;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const run = checkRunId(process.argv[2] ?? "");
  const left = await reap((marker) => marker.startsWith(`${run}/`));
  for (const p of left) process.stdout.write(`# LEAK: ${p.marker} left ${p.what} (killed)\n`);
}
