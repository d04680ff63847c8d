/**
 * Turns raw runs into medians with min and max, per-round ratios to direct cluster access and to
 * twemproxy, the tracker's goals, a Markdown table and an SVG bar chart.
 */
import type { RunResult, Workload } from "./workloads.ts";

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** One round's figure with what it was measured over (lib/counters.ts). */
export interface RoundFigure {
  round: number;
  rps: number;
  /** The harness's timing window, seconds: the figure's effective duration. */
  windowSeconds: number;
  /** Worst-case relative error of rps from the samples' timing. */
  errorBound: number;
  /** The whole redis-benchmark run, seconds (process start to exit). */
  wallSeconds: number;
  /** redis-benchmark's own figure for the same run. */
  toolRps: number;
  /** Servers on the busiest proxy process's CPU, averaged over the run (proxy targets only). */
  serversOnProxyCpu?: number;
}

export interface Cell {
  workload: string;
  target: string;
  error?: string;
  /** Harness-timed rps over rounds. */
  rps?: Spread;
  /** Every round's figure, in round order. */
  rounds?: RoundFigure[];
  /** redis-benchmark's own rps over rounds (coarse for --cluster targets). */
  toolRps?: Spread;
  p50Ms?: Spread;
  p99Ms?: Spread;
  proxyCpuPer100k?: Spread;
  serverCpuPer100k?: Spread;
  /** Ratio of rps to direct cluster access in the same round. */
  vsCluster?: Spread;
  /** Ratio of rps to twemproxy in the same round. */
  vsTwemproxy?: Spread;
  /** p50 minus direct cluster's p50 in the same round, in microseconds. */
  addedP50Us?: Spread;
}

export function summarise(runs: RunResult[], workloads: Workload[], targets: string[]): Cell[] {
  const cells: Cell[] = [];
  const find = (w: string, t: string, round: number) =>
    runs.find((r) => r.workload === w && r.target === t && r.round === round && r.ok);
  for (const w of workloads) {
    for (const t of targets) {
      const mine = runs.filter((r) => r.workload === w.id && r.target === t);
      const ok = mine.filter((r) => r.ok);
      const cell: Cell = { workload: w.id, target: t };
      if (!ok.length) {
        cell.error = mine[0]?.error ?? "not run";
        cells.push(cell);
        continue;
      }
      if (ok.length < mine.length)
        cell.error = `${mine.length - ok.length} run(s) failed: ${mine.find((r) => !r.ok)!.error}`;
      const ratio = (other: string) =>
        spread(
          ok.map((r) => {
            const o = find(w.id, other, r.round);
            return o ? r.rps / o.rps : NaN;
          }),
        );
      cell.rps = spread(ok.map((r) => r.rps));
      cell.toolRps = spread(ok.map((r) => r.toolRps));
      cell.rounds = ok.map((r) => ({
        round: r.round,
        rps: r.rps,
        windowSeconds: r.timing?.windowSeconds ?? 0,
        errorBound: r.timing?.errorBound ?? 0,
        wallSeconds: r.wallSeconds,
        toolRps: r.toolRps,
        serversOnProxyCpu: r.serversOnProxyCpu,
      }));
      cell.p50Ms = spread(ok.map((r) => r.p50Ms));
      cell.p99Ms = spread(ok.map((r) => r.p99Ms));
      cell.proxyCpuPer100k = spread(ok.map((r) => (r.proxyCpuSeconds / r.requests) * 1e5));
      cell.serverCpuPer100k = spread(ok.map((r) => (r.serverCpuSeconds / r.requests) * 1e5));
      cell.vsCluster = ratio("cluster");
      cell.vsTwemproxy = ratio("twemproxy");
      cell.addedP50Us = spread(
        ok.map((r) => {
          const o = find(w.id, "cluster", r.round);
          return o ? (r.p50Ms - o.p50Ms) * 1000 : NaN;
        }),
      );
      cells.push(cell);
    }
  }
  return cells;
}

export interface Goal {
  what: string;
  target: string;
  observed: string;
  met: boolean | undefined;
}

/**
 * The goals of issue 15, for one worker against twemproxy in the same round. `pass` names the
 * pass the cells come from (", pinned"), appended to each goal's workload.
 */
export function goals(cells: Cell[], pass = ""): Goal[] {
  const cell = (w: string, t: string) => cells.find((c) => c.workload === w && c.target === t);
  const out: Goal[] = [];
  const vsTwem = (w: string, min: number, what: string) => {
    const c = cell(w, "proxy1");
    const r = c?.vsTwemproxy;
    out.push({
      what: `${what} (dredis 1w, ${w}${pass})`,
      target: `>= ${min.toFixed(2)}x twemproxy`,
      observed: r
        ? `${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)})`
        : `not measurable: ${c?.error ?? "not run"}`,
      met: r ? r.median >= min : undefined,
    });
  };
  vsTwem("get-p1", 1, "GET, pipeline 1");
  vsTwem("set-p1", 1, "SET, pipeline 1");
  vsTwem("get-p16", 1.5, "GET, pipeline 16");
  vsTwem("set-p16", 1.5, "SET, pipeline 16");
  vsTwem("mset-p1", 1, "MSET 10 keys across shards, pipeline 1");
  vsTwem("mset-p16", 1, "MSET 10 keys across shards, pipeline 16");
  const notAbove = (
    w: string,
    pick: (c: Cell) => Spread | undefined,
    what: string,
    unit: string,
    digits: number,
  ) => {
    const ours = cell(w, "proxy1");
    const theirs = cell(w, "twemproxy");
    const a = ours && pick(ours);
    const b = theirs && pick(theirs);
    out.push({
      what: `${what} (dredis 1w, ${w}${pass})`,
      target: b ? `<= twemproxy's ${b.median.toFixed(digits)} ${unit}` : "<= twemproxy's",
      observed: a
        ? `${a.median.toFixed(digits)} ${unit} (${a.min.toFixed(digits)}-${a.max.toFixed(digits)})`
        : "not measured",
      met: a && b ? a.median <= b.median : undefined,
    });
  };
  notAbove("get-p1", (c) => c.proxyCpuPer100k, "proxy CPU per 100k requests, pipeline 1", "s", 2);
  notAbove("set-p1", (c) => c.proxyCpuPer100k, "proxy CPU per 100k requests, pipeline 1", "s", 2);
  notAbove("get-p1", (c) => c.p99Ms, "p99, pipeline 1", "ms", 3);
  notAbove("set-p1", (c) => c.p99Ms, "p99, pipeline 1", "ms", 3);
  for (const t of ["proxy1", "proxy2"]) {
    const a = cell("one-client", t)?.addedP50Us;
    out.push({
      what: `one client, pipeline 1, added p50 (${t})`,
      target: "<= 40 us",
      observed: a
        ? `+${a.median.toFixed(0)} us (${a.min.toFixed(0)} to ${a.max.toFixed(0)})`
        : "not measured",
      met: a ? a.median <= 40 : undefined,
    });
  }
  return out;
}

/** Per round, dredis 2w over dredis 1w: the worker-scaling figure (headline from the pinned pass). */
export function workerScaling(
  runs: RunResult[],
  workloads: Workload[],
): { workload: string; ratio?: Spread }[] {
  return workloads.map((w) => {
    const one = runs.filter((r) => r.ok && r.workload === w.id && r.target === "proxy1");
    const ratios = one.map((r) => {
      const two = runs.find(
        (o) => o.ok && o.workload === w.id && o.target === "proxy2" && o.round === r.round,
      );
      return two ? two.rps / r.rps : NaN;
    });
    return { workload: w.id, ratio: spread(ratios) };
  });
}

export function scalingMarkdown(rows: { workload: string; ratio?: Spread }[]): string {
  const lines = ["| workload | dredis 2w / dredis 1w, median (min-max) over rounds |", "|---|---|"];
  for (const r of rows) lines.push(`| ${r.workload} | ${r.ratio ? fmtRatio(r.ratio) : "not measured"} |`);
  return lines.join("\n");
}

const fmtRps = (s?: Spread) => (s ? `${kfmt(s.median)} (${kfmt(s.min)}-${kfmt(s.max)})` : "");
const kfmt = (x: number) =>
  x >= 10_000 ? `${(x / 1000).toFixed(0)}k` : x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0);
const fmtRounds = (rounds?: RoundFigure[]) =>
  (rounds ?? [])
    .map(
      (r) =>
        `${(r.rps / 1000).toFixed(1)}k (${r.windowSeconds.toFixed(2)} s, ±${(r.errorBound * 100).toFixed(1)}%` +
        (r.serversOnProxyCpu === undefined ? ")" : `; ${r.serversOnProxyCpu.toFixed(1)})`),
    )
    .join("; ");
const fmtMs = (s?: Spread) => (s ? `${s.median.toFixed(3)}` : "");
const fmtCpu = (s?: Spread) => (s ? `${s.median.toFixed(2)}` : "");
const fmtRatio = (s?: Spread) =>
  s ? `${s.median.toFixed(2)} (${s.min.toFixed(2)}-${s.max.toFixed(2)})` : "";

export function markdown(cells: Cell[], workloads: Workload[], labels: Record<string, string>): string {
  const lines: string[] = [];
  for (const w of workloads) {
    lines.push(`#### ${w.label}`, "");
    lines.push(
      "| target | rps median (min-max) | each round: rps (window s, ±timing bound; servers on the proxy's CPU) | redis-benchmark's own rps | p50 ms | p99 ms | proxy CPU s/100k | redis CPU s/100k | x cluster direct | x twemproxy |",
      "|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const c of cells.filter((c) => c.workload === w.id)) {
      const name = labels[c.target] ?? c.target;
      if (!c.rps) {
        lines.push(`| ${name} | not measurable: ${c.error} | | | | | | | | |`);
        continue;
      }
      const proxyCpu = c.target === "single" || c.target === "cluster" ? "-" : fmtCpu(c.proxyCpuPer100k);
      const vsCluster = c.target === "cluster" ? "1" : fmtRatio(c.vsCluster);
      const vsTwem = c.target === "twemproxy" ? "1" : fmtRatio(c.vsTwemproxy);
      const p50 =
        w.id === "one-client" && c.target !== "cluster" && c.addedP50Us
          ? `${fmtMs(c.p50Ms)} (${c.addedP50Us.median >= 0 ? "+" : ""}${c.addedP50Us.median.toFixed(0)} us)`
          : fmtMs(c.p50Ms);
      lines.push(
        `| ${name} | ${fmtRps(c.rps)} | ${fmtRounds(c.rounds)} | ${fmtRps(c.toolRps)} | ${p50} | ${fmtMs(c.p99Ms)} | ${proxyCpu} | ${fmtCpu(c.serverCpuPer100k)} | ${vsCluster} | ${vsTwem} |${c.error ? ` (${c.error})` : ""}`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}

export function goalsMarkdown(list: Goal[]): string {
  const lines = ["| goal | target | observed (median, min-max) | met |", "|---|---|---|---|"];
  for (const g of list)
    lines.push(
      `| ${g.what} | ${g.target} | ${g.observed} | ${g.met === undefined ? "n/a" : g.met ? "yes" : "**no**"} |`,
    );
  return lines.join("\n");
}

const COLORS = ["#7f7f7f", "#1f77b4", "#2ca02c", "#17becf", "#ff7f0e"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Small multiples: one panel per workload (own y scale), one bar per target, min-max whiskers. */
export function svgChart(
  cells: Cell[],
  workloads: Workload[],
  targets: string[],
  labels: Record<string, string>,
  title: string,
): string {
  const cols = 4;
  const pw = 300;
  const ph = 230;
  const top = 60;
  const rows = Math.ceil(workloads.length / cols);
  const width = cols * pw + 20;
  const height = top + rows * ph + 20;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  targets.forEach((t, i) => {
    const x = 10 + i * 150;
    out.push(`<rect x="${x}" y="32" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${x + 16}" y="42">${esc(labels[t] ?? t)}</text>`);
  });
  workloads.forEach((w, wi) => {
    const ox = 10 + (wi % cols) * pw;
    const oy = top + Math.floor(wi / cols) * ph;
    const mine = targets.map((t) => cells.find((c) => c.workload === w.id && c.target === t));
    const maxV = Math.max(1, ...mine.map((c) => c?.rps?.max ?? 0));
    const chartH = ph - 70;
    const baseY = oy + 30 + chartH;
    out.push(`<text x="${ox}" y="${oy + 14}" font-weight="bold">${esc(w.id)}</text>`);
    out.push(`<text x="${ox}" y="${oy + 26}" fill="#555">rps, max ${kfmt(maxV)}</text>`);
    out.push(`<line x1="${ox}" y1="${baseY}" x2="${ox + pw - 30}" y2="${baseY}" stroke="#333"/>`);
    const bw = (pw - 40) / targets.length;
    mine.forEach((c, i) => {
      const x = ox + 5 + i * bw;
      const color = COLORS[i % COLORS.length];
      if (!c?.rps) {
        out.push(`<text x="${x + 2}" y="${baseY - 4}" fill="#b00" font-size="9">n/a</text>`);
        return;
      }
      const h = (c.rps.median / maxV) * chartH;
      out.push(`<rect x="${x}" y="${baseY - h}" width="${bw - 6}" height="${h}" fill="${color}"/>`);
      const cx = x + (bw - 6) / 2;
      const y1 = baseY - (c.rps.min / maxV) * chartH;
      const y2 = baseY - (c.rps.max / maxV) * chartH;
      out.push(`<line x1="${cx}" y1="${y1}" x2="${cx}" y2="${y2}" stroke="black"/>`);
      out.push(
        `<text x="${cx}" y="${baseY + 12}" text-anchor="middle" font-size="9">${kfmt(c.rps.median)}</text>`,
      );
      if (c.vsCluster && c.target !== "cluster")
        out.push(
          `<text x="${cx}" y="${baseY + 23}" text-anchor="middle" font-size="9" fill="#555">${c.vsCluster.median.toFixed(2)}x</text>`,
        );
    });
  });
  out.push(
    `<text x="10" y="${height - 6}" fill="#555">Bars: median rps; whiskers: min-max over rounds; second label: ratio to direct cluster in the same round.</text>`,
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}
