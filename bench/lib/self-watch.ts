/**
 * A process watching itself, to tell a slow request caused by the process from one caused by
 * what it waits for: event-loop stalls (a 10 ms timer firing STALL_MS or more late: start and
 * length of each), monitorEventLoopDelay's maximum, and garbage collections of GC_MS or more.
 * Also, from outside, how long other processes waited for a CPU (watchRunQueue). Times are
 * wall-clock ms (Date.now()) so that several processes' traces line up.
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";

/** A tick of the 10 ms timer this late or later is an event-loop stall. */
const STALL_MS = 40;
const GC_MS = 10;
/** A watched process that waited this long for a CPU within one 50 ms interval is reported. */
const RUNQ_MS = 20;

export interface Span {
  at: number;
  ms: number;
  what: string;
}

export interface SelfTrace {
  /** Event-loop stalls (timer ticks late by STALL_MS or more). */
  stalls: Span[];
  gcs: Span[];
  /** monitorEventLoopDelay's maximum, ms. */
  loopDelayMaxMs: number;
  /** Proxy only: when the router followed redirects (count per 10 ms tick) and installed a map. */
  redirects: Span[];
  maps: number[];
  /** Clients only. */
  requests: Span[];
  longest?: Span;
  count?: number;
  errors?: number;
}

export function watchSelf(onTick?: (now: number) => void): { trace: SelfTrace; stop(): void } {
  const trace: SelfTrace = { stalls: [], gcs: [], loopDelayMaxMs: 0, redirects: [], maps: [], requests: [] };
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const late = now - last - 10;
    if (late >= STALL_MS) trace.stalls.push({ at: last + 10, ms: late, what: "event loop" });
    last = now;
    onTick?.(now);
  }, 10);
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      if (entry.duration >= GC_MS)
        trace.gcs.push({
          at: Math.round(performance.timeOrigin + entry.startTime),
          ms: entry.duration,
          what: `gc kind ${(entry as { detail?: { kind?: number } }).detail?.kind ?? "?"}`,
        });
  });
  gc.observe({ entryTypes: ["gc"] });
  return {
    trace,
    stop() {
      clearInterval(timer);
      gc.disconnect();
      histogram.disable();
      trace.loopDelayMaxMs = histogram.max / 1e6;
    },
  };
}

/** Nanoseconds a process's main thread has waited for a CPU (/proc/<pid>/schedstat, field 2). */
function runQueueNs(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "latin1").split(" ")[1]);
  } catch {
    return undefined;
  }
}

/**
 * Watches how long other processes' main threads wait for a CPU (runnable, not running: the
 * machine's load, as they feel it). Every 50 ms; an interval in which one waited RUNQ_MS or more
 * becomes a span.
 */
export function watchRunQueue(processes: { name: string; pid: number }[]): { spans: Span[]; stop(): void } {
  const spans: Span[] = [];
  const last = new Map(processes.map((p) => [p.pid, runQueueNs(p.pid) ?? 0]));
  let lastAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const { name, pid } of processes) {
      const ns = runQueueNs(pid);
      if (ns === undefined) continue;
      const waited = (ns - last.get(pid)!) / 1e6;
      last.set(pid, ns);
      if (waited >= RUNQ_MS)
        spans.push({
          at: lastAt,
          ms: now - lastAt,
          what: `${name} waited ${waited.toFixed(0)} ms for a CPU in`,
        });
    }
    lastAt = now;
  }, 50);
  return {
    spans,
    stop: () => clearInterval(timer),
  };
}
