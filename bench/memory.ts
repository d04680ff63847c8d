/**
 * Memory benchmark of the proxy host (RSS and PSS summed over its process tree: the primary, whose
 * threads include the busy proxy, and the workers; and per process): at idle (2 s after ready, and 30 s later once V8 has given back its
 * start-up garbage), with 10,000 idle clients (1,000 with --quick), and under one client that pipelines 1 GB of SETs and
 * never reads a reply. The proxy should stop reading that client once it has
 * `limits.maxPendingBytesPerClient` in flight, so RSS must stay bounded.
 *
 * Run alone: `node --import tsx bench/memory.ts [--quick] [--entry bundle/dist/cli/main.js]`, or
 * `npm run bench -- --memory`. --entry runs that script (an esbuild bundle, as the image runs)
 * instead of the tsc build in dist/.
 */
import { readFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { parseProxyConfig } from "../src/proxy/config.ts";
import { rssBytes } from "./lib/procs.ts";
import { Cleanups, benchDir, respPing, startBenchCluster, startProxyHost } from "./lib/targets.ts";

/** One process of the host: its role and its RSS split into private (anon) and file-backed pages. */
export interface ProcessMemory {
  pid: number;
  /** "busy" for a busy proxy process: builds before the busy proxy became a thread of the primary. */
  role: "primary" | "worker" | "busy";
  rssBytes: number;
  anonBytes: number;
  fileBytes: number;
  /** Proportional set size (/proc/PID/smaps_rollup): each shared page divided among the processes mapping it. */
  pssBytes: number;
}

export interface MemoryResult {
  workers: number;
  /** The script the host ran: dist/cli/main.js (tsc build) unless --entry. */
  entry: string;
  idleByProcess: ProcessMemory[];
  idleClientsByProcess: ProcessMemory[];
  maxPendingBytesPerClient: number;
  idleRssBytes: number;
  /** Idle again after SETTLE_MS: V8's memory reducer has given back the start-up garbage's pages. */
  settledByProcess: ProcessMemory[];
  settledRssBytes: number;
  idleClients: number;
  idleClientsRssBytes: number;
  perIdleClientBytes: number;
  pipeline: {
    targetBytes: number;
    timeBoundSeconds: number;
    valueBytes: number;
    bytesWritten: number;
    stalled: boolean;
    seconds: number;
    peakRssBytes: number;
    rssAfterCloseBytes: number;
    /** Another client's PING round trip while the flood was stalled (is the worker still serving?). */
    otherClientPingMs: number | undefined;
  };
  /** One client pipelining GETs of a 64 KB value (1 GB of replies) and never reading them. */
  unreadReplies: {
    replyBytesRequested: number;
    seconds: number;
    peakRssBytes: number;
    rssAfterCloseBytes: number;
    otherClientPingMs: number | undefined;
  };
}

const MB = 1024 * 1024;
/** How long the settled idle figure waits: V8's memory reducer runs some seconds into idleness. */
const SETTLE_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function processMemory(pids: readonly number[]): ProcessMemory[] {
  const out: ProcessMemory[] = [];
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "latin1");
      const kb = (field: string) =>
        Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
      const env = readFileSync(`/proc/${pid}/environ`, "latin1");
      const role = env.includes("DREDIS_ROLE=busy")
        ? "busy"
        : env.includes("DREDIS_WORKER_INDEX=")
          ? "worker"
          : "primary";
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "latin1");
      const pssBytes = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
      out.push({
        pid,
        role,
        rssBytes: kb("VmRSS"),
        anonBytes: kb("RssAnon"),
        fileBytes: kb("RssFile"),
        pssBytes,
      });
    } catch {
      // exited
    }
  }
  return out;
}

/** PSS summed: what the host's processes really hold, shared pages split among those mapping them. */
export function pssBytes(list: readonly ProcessMemory[]): number {
  return list.reduce((sum, p) => sum + p.pssBytes, 0);
}

/** Private pages of every process plus the file-backed ones once (they are node's binary and libraries, shared). */
export function chargedOnceBytes(list: readonly ProcessMemory[]): number {
  return list.reduce((sum, p) => sum + p.anonBytes, 0) + Math.max(0, ...list.map((p) => p.fileBytes));
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

/** Sends PING on every socket and waits for every +PONG. */
async function pingAll(sockets: Socket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no PONG within 10 s")), 10_000);
          s.once("data", () => {
            clearTimeout(timer);
            resolve();
          });
          s.write("*1\r\n$4\r\nPING\r\n");
        }),
    ),
  );
}

/** About 1 MB of pipelined SETs over 1,000 keys spread across slots. */
function floodChunk(valueBytes: number): Buffer {
  const value = "v".repeat(valueBytes);
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < MB; i++) {
    const key = `flood:${i % 1000}`;
    const cmd = `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${valueBytes}\r\n${value}\r\n`;
    parts.push(cmd);
    size += cmd.length;
  }
  return Buffer.from(parts.join(""), "latin1");
}

export async function runMemoryBench(
  cleanups: Cleanups,
  options: { quick?: boolean; workers?: number; entry?: string; log?: (msg: string) => void } = {},
): Promise<MemoryResult> {
  const log = options.log ?? ((m: string) => console.error(m));
  const workers = options.workers ?? 2;
  const dir = await benchDir(cleanups, "dredis-bench-mem-");
  const cluster = await startBenchCluster(cleanups);
  const host = await startProxyHost(cleanups, dir, cluster.seeds.slice(0, 1), workers, {
    entry: options.entry,
  });
  const bound = parseProxyConfig({ seeds: cluster.seeds }).limits.maxPendingBytesPerClient;
  const rss = () => rssBytes(host.pids());

  await sleep(2000);
  const idleRssBytes = rss();
  const idleByProcess = processMemory(host.pids());
  log(`idle RSS ${(idleRssBytes / MB).toFixed(1)} MB (${host.pids().length} processes)`);
  await sleep(SETTLE_MS);
  const settledRssBytes = rss();
  const settledByProcess = processMemory(host.pids());
  log(`idle RSS after ${SETTLE_MS / 1000} s more: ${(settledRssBytes / MB).toFixed(1)} MB`);

  const idleClients = options.quick ? 1000 : 10_000;
  const sockets: Socket[] = [];
  // 100 connects in flight at a time: one at a time takes minutes on a loaded machine.
  while (sockets.length < idleClients) {
    const batch = Math.min(100, idleClients - sockets.length);
    sockets.push(...(await Promise.all(Array.from({ length: batch }, () => connect(host.port)))));
  }
  for (let i = 0; i < sockets.length; i += 500) await pingAll(sockets.slice(i, i + 500));
  await sleep(2000);
  const idleClientsRssBytes = rss();
  const idleClientsByProcess = processMemory(host.pids());
  log(`with ${idleClients} idle clients: ${(idleClientsRssBytes / MB).toFixed(1)} MB`);
  for (const s of sockets) s.destroy();
  await sleep(1000);

  const targetBytes = 1024 * MB;
  const timeBoundSeconds = options.quick ? 10 : 25;
  const valueBytes = 1024;
  const chunk = floodChunk(valueBytes);
  const flood = await connect(host.port);
  flood.pause(); // never read a reply
  flood.on("error", () => {});
  let peakRssBytes = rss();
  const sampler = setInterval(() => (peakRssBytes = Math.max(peakRssBytes, rss())), 100);
  const started = Date.now();
  const deadline = started + timeBoundSeconds * 1000;
  let bytesWritten = 0;
  let stalled = false;
  let otherClientPingMs: number | undefined;
  while (bytesWritten < targetBytes && Date.now() < deadline) {
    if (flood.write(chunk)) {
      bytesWritten += chunk.length;
      continue;
    }
    bytesWritten += chunk.length;
    const drained = await Promise.race([
      new Promise<boolean>((r) => flood.once("drain", () => r(true))),
      sleep(Math.max(0, Math.min(3000, deadline - Date.now()))).then(() => false),
    ]);
    if (!drained) {
      stalled = true;
      break;
    }
  }
  const floodSeconds = (Date.now() - started) / 1000;
  if (stalled) {
    // The proxy stopped reading us; is it still serving others? Then hold the stall until the bound.
    const t0 = process.hrtime.bigint();
    if (await respPing(host.port)) otherClientPingMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await sleep(Math.max(0, deadline - Date.now()));
  }
  clearInterval(sampler);
  peakRssBytes = Math.max(peakRssBytes, rss());
  log(
    `flood: ${(bytesWritten / MB).toFixed(0)} MB written in ${floodSeconds.toFixed(1)} s, ` +
      `${stalled ? "writes blocked (proxy stopped reading)" : "not stalled"}; peak RSS ${(peakRssBytes / MB).toFixed(1)} MB`,
  );
  flood.destroy();
  await sleep(2000);
  const rssAfterCloseBytes = rss();

  // Replies the client never reads: the proxy must stop reading its requests, not buffer replies.
  const bigValue = 64 * 1024;
  const setter = await connect(host.port);
  await new Promise<void>((resolve) => {
    setter.once("data", () => resolve());
    setter.write(`*3\r\n$3\r\nSET\r\n$7\r\nfloodgb\r\n$${bigValue}\r\n${"g".repeat(bigValue)}\r\n`);
  });
  setter.destroy();
  const gets = targetBytes / bigValue;
  const reader = await connect(host.port);
  reader.pause();
  reader.on("error", () => {});
  let replyPeak = rss();
  const replySampler = setInterval(() => (replyPeak = Math.max(replyPeak, rss())), 100);
  const replyStarted = Date.now();
  reader.write(Buffer.from("*2\r\n$3\r\nGET\r\n$7\r\nfloodgb\r\n".repeat(gets), "latin1"));
  await sleep((timeBoundSeconds * 1000) / 2);
  const t1 = process.hrtime.bigint();
  const replyPing = (await respPing(host.port)) ? Number(process.hrtime.bigint() - t1) / 1e6 : undefined;
  await sleep((timeBoundSeconds * 1000) / 2);
  clearInterval(replySampler);
  replyPeak = Math.max(replyPeak, rss());
  reader.destroy();
  await sleep(2000);
  const replyAfter = rss();
  log(`unread GET replies (${gets} x 64 KB): peak RSS ${(replyPeak / MB).toFixed(1)} MB`);
  await host.stop();
  return {
    workers,
    entry: options.entry ?? "dist/cli/main.js",
    idleByProcess,
    idleClientsByProcess,
    maxPendingBytesPerClient: bound,
    idleRssBytes,
    settledByProcess,
    settledRssBytes,
    idleClients,
    idleClientsRssBytes,
    perIdleClientBytes: Math.round((idleClientsRssBytes - idleRssBytes) / idleClients),
    pipeline: {
      targetBytes,
      timeBoundSeconds,
      valueBytes,
      bytesWritten,
      stalled,
      seconds: floodSeconds,
      peakRssBytes,
      rssAfterCloseBytes,
      otherClientPingMs,
    },
    unreadReplies: {
      replyBytesRequested: targetBytes,
      seconds: (Date.now() - replyStarted) / 1000,
      peakRssBytes: replyPeak,
      rssAfterCloseBytes: replyAfter,
      otherClientPingMs: replyPing,
    },
  };
}

export function memoryMarkdown(m: MemoryResult): string {
  const mb = (b: number) => `${(b / MB).toFixed(1)} MB`;
  const p = m.pipeline;
  return [
    `### Memory of the proxy host (${m.workers} workers, ${m.entry}; RSS summed over the primary (the busy proxy is one of its threads) and the workers)`,
    "",
    "| state | RSS |",
    "|---|---|",
    `| idle | ${mb(m.idleRssBytes)} (${m.idleByProcess.map((p) => `${p.role} ${mb(p.rssBytes)}`).join(", ")}) |`,
    `| idle, file-backed pages (node's binary, shared) counted once | ${mb(chargedOnceBytes(m.idleByProcess))} |`,
    `| idle, PSS summed (shared pages split among the processes mapping them) | ${mb(pssBytes(m.idleByProcess))} |`,
    `| idle ${SETTLE_MS / 1000} s later (V8's memory reducer has run) | ${mb(m.settledRssBytes)} (${m.settledByProcess.map((p) => `${p.role} ${mb(p.rssBytes)}`).join(", ")}) |`,
    `| idle ${SETTLE_MS / 1000} s later, PSS summed | ${mb(pssBytes(m.settledByProcess))} |`,
    `| ${m.idleClients} idle clients | ${mb(m.idleClientsRssBytes)} (${(m.perIdleClientBytes / 1024).toFixed(1)} KB per client; ${m.idleClientsByProcess.map((p) => `${p.role} ${mb(p.rssBytes)}`).join(", ")}) |`,
    `| one client pipelining ${mb(p.targetBytes)} of SETs (${p.valueBytes} B values), never reading, ${p.timeBoundSeconds} s bound: peak | ${mb(p.peakRssBytes)} |`,
    `| after that client closed | ${mb(p.rssAfterCloseBytes)} |`,
    `| one client sending ${m.unreadReplies.replyBytesRequested / (64 * 1024)} GETs of a 64 KB value (${mb(m.unreadReplies.replyBytesRequested)} of replies), never reading, ${m.unreadReplies.seconds.toFixed(0)} s: peak | ${mb(m.unreadReplies.peakRssBytes)} |`,
    `| after that client closed | ${mb(m.unreadReplies.rssAfterCloseBytes)} |`,
    "",
    `Bound: limits.maxPendingBytesPerClient = ${mb(m.maxPendingBytesPerClient)} per client. ` +
      `The client got ${mb(p.bytesWritten)} into its socket in ${p.seconds.toFixed(1)} s; ` +
      (p.stalled
        ? `then its writes blocked: the proxy had stopped reading it. Peak growth over idle: ${mb(p.peakRssBytes - m.idleRssBytes)}.`
        : `its writes never blocked: the proxy kept forwarding at ${(p.bytesWritten / MB / p.seconds).toFixed(0)} MB/s with at most the bound in flight, and SET replies are too small to fill it.`) +
      (p.otherClientPingMs !== undefined
        ? ` Meanwhile another client's PING took ${p.otherClientPingMs.toFixed(2)} ms.`
        : "") +
      (m.unreadReplies.otherClientPingMs !== undefined
        ? ` During the unread-GET client, another client's PING took ${m.unreadReplies.otherClientPingMs.toFixed(2)} ms.`
        : ""),
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: { quick: { type: "boolean", default: false }, entry: { type: "string" } },
  });
  const cleanups = new Cleanups();
  process.on("SIGINT", () => void cleanups.run().then(() => process.exit(130)));
  const timer = setTimeout(() => void cleanups.run().then(() => process.exit(1)), 180_000);
  runMemoryBench(cleanups, { quick: values.quick!, entry: values.entry })
    .then((m) => console.log(memoryMarkdown(m)))
    .catch((err: Error) => {
      console.error(err.stack);
      process.exitCode = 1;
    })
    .finally(async () => {
      clearTimeout(timer);
      await cleanups.run();
    });
}
