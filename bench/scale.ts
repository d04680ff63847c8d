/**
 * Scale benchmark: what the number of shards costs a proxy host, at 3 and at 30 masters (or
 * --shards a,b,...), each a real Redis Cluster on this machine:
 *
 * - slot-map refresh: bytes of one CLUSTER SHARDS and one CLUSTER SLOTS reply, the proxy's CPU
 *   per refresh (the reader every worker and busy proxy runs each refreshIntervalMs: CLUSTER
 *   SHARDS + CONFIG GET over its control connection, parsed into a slot map), and the answering
 *   node's CPU per refresh (from /proc);
 * - memory per shard connection: a 1-worker host's worker RSS once it has a connection to every
 *   master (one GET per shard), and the memory Redis reports for each proxy connection (CLIENT
 *   LIST tot-mem).
 *
 * Run: `node --import tsx bench/scale.ts [--shards 3,30] [--refreshes 200]`. CPU figures are only
 * as good as the machine is quiet; the load average is printed with them.
 */
import { createConnection } from "node:net";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { slotOf } from "../src/cluster/key-slot.ts";
import { clusterMapReader } from "../src/proxy/upstream/slot-map-source.ts";
import { SLOTS, startCluster, type TestCluster } from "../test/support/redis.ts";
import { cpuSeconds } from "./lib/procs.ts";
import { Cleanups, benchDir, startProxyHost } from "./lib/targets.ts";

export interface ShardScaleResult {
  shards: number;
  clusterShardsBytes: number;
  clusterSlotsBytes: number;
  refreshes: number;
  /** Proxy-side CPU per refresh (this process: ioredis, parse, slot map), microseconds. */
  proxyCpuUsPerRefresh: number;
  /** The answering master's CPU per refresh, microseconds (/proc ticks: 10 ms resolution). */
  serverCpuUsPerRefresh: number;
  /** A 1-worker host's worker RSS with one connection to every master. */
  workerRssBytes: number;
  /** Redis's own figure for one proxy connection (CLIENT LIST tot-mem), bytes. */
  redisBytesPerConnection: number;
  loadAverage: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bytes of the reply to one command, sent raw (a PING after it marks the end). */
function replyBytes(port: number, command: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const encode = (args: string[]) =>
      `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`;
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      if (all.subarray(-7).toString() === "+PONG\r\n") {
        socket.destroy();
        resolve(all.length - 7);
      }
    });
    socket.write(encode(command) + encode(["PING"]));
  });
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  return Number(m?.[1] ?? 0) * 1024;
}

/** One key per master, by slot range (startCluster spreads slots evenly in master order). */
function keyPerShard(shards: number): string[] {
  const keys = new Map<number, string>();
  for (let i = 0; keys.size < shards; i++) {
    const slot = slotOf(`s:${i}`);
    const owner = Math.min(shards - 1, Math.floor((slot * shards) / SLOTS));
    if (Math.floor(((owner + 1) * SLOTS) / shards) - 1 < slot) continue; // boundary slot: skip
    if (!keys.has(owner)) keys.set(owner, `s:${i}`);
  }
  return [...keys.values()];
}

export async function measureShards(
  shards: number,
  refreshes: number,
  /** Also stopped by these (a caller's Ctrl-C or time bound) should it end first. */
  parent?: Cleanups,
): Promise<ShardScaleResult> {
  // Each cluster is stopped before the next starts: 30 masters and a host are enough on 2 cores.
  const local = new Cleanups();
  parent?.after(() => local.run());
  try {
    const cluster: TestCluster = await startCluster(local, { masters: shards, replicas: 0 });
    const first = cluster.masters[0]!;
    const clusterShardsBytes = await replyBytes(first.port, ["CLUSTER", "SHARDS"]);
    const clusterSlotsBytes = await replyBytes(first.port, ["CLUSTER", "SLOTS"]);

    const reader = clusterMapReader(() => undefined);
    await reader.read(first.address, true); // connect, warm up the JIT
    for (let i = 0; i < 20; i++) await reader.read(first.address, false);
    const server0 = cpuSeconds([first.pid!]);
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < refreshes; i++) {
      const read = await reader.read(first.address, false);
      if (!read.map.complete) throw new Error(`incomplete slot map from ${first.address}`);
    }
    const cpu = process.cpuUsage(cpu0);
    const serverCpu = cpuSeconds([first.pid!]) - server0;
    reader.close();

    const dir = await benchDir(local, "dredis-bench-scale-");
    const host = await startProxyHost(local, dir, cluster.seeds.slice(0, 1), 1);
    const keys = keyPerShard(shards);
    await new Promise<void>((resolve, reject) => {
      const socket = createConnection({ host: "127.0.0.1", port: host.port }, () => {
        socket.write(keys.map((k) => `*2\r\n$3\r\nGET\r\n$${k.length}\r\n${k}\r\n`).join(""));
      });
      let replies = 0;
      socket.on("data", (c: Buffer) => {
        replies += c.toString("latin1").split("$-1\r\n").length - 1;
        if (replies >= keys.length) {
          socket.destroy();
          resolve();
        }
      });
      socket.on("error", reject);
    });
    await sleep(2000);
    const worker = host
      .pids()
      .find((pid) => readFileSync(`/proc/${pid}/environ`, "latin1").includes("DREDIS_WORKER_INDEX="));
    const workerRssBytes = worker === undefined ? 0 : rssOf(worker);
    // Redis's view of the proxy's connections to one master (every client but our admin one).
    const list = String(await cluster.connect(cluster.masters[shards - 1]!).call("CLIENT", "LIST"));
    const mems = list
      .trim()
      .split("\n")
      .filter((line) => !/ cmd=client\|list /.test(line))
      .map((line) => Number(/ tot-mem=(\d+)/.exec(line)?.[1] ?? NaN))
      .filter(Number.isFinite);
    await host.stop();
    return {
      shards,
      clusterShardsBytes,
      clusterSlotsBytes,
      refreshes,
      proxyCpuUsPerRefresh: (cpu.user + cpu.system) / refreshes,
      serverCpuUsPerRefresh: (serverCpu * 1e6) / refreshes,
      workerRssBytes,
      redisBytesPerConnection: mems.length ? Math.round(mems.reduce((a, b) => a + b, 0) / mems.length) : 0,
      loadAverage: loadavg()[0]!,
    };
  } finally {
    await local.run();
  }
}

export function scaleMarkdown(results: ShardScaleResult[]): string {
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
  const rows = results.map(
    (r) =>
      `| ${r.shards} | ${kb(r.clusterShardsBytes)} | ${kb(r.clusterSlotsBytes)} | ${r.proxyCpuUsPerRefresh.toFixed(0)} us | ${r.serverCpuUsPerRefresh.toFixed(0)} us | ${(r.workerRssBytes / 1048576).toFixed(1)} MB | ${kb(r.redisBytesPerConnection)} | ${r.loadAverage.toFixed(1)} |`,
  );
  const [a, b] = [results[0], results[results.length - 1]];
  const perShard =
    a && b && b.shards > a.shards ? (b.workerRssBytes - a.workerRssBytes) / (b.shards - a.shards) : undefined;
  return [
    "| masters | CLUSTER SHARDS reply | CLUSTER SLOTS reply | proxy CPU per refresh | node CPU per refresh | worker RSS (1 conn per master) | Redis memory per proxy connection | load average |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    perShard === undefined
      ? ""
      : `Worker RSS per additional master (its pool connection and its share of the slot map): ${kb(perShard)}.`,
  ].join("\n");
}

/** The README's model (bench/README.md, "Capacity model"): its per-master constants. */
export const MODEL = {
  /** Fitted from the 1 Dec 2026 run: proxy CPU per refresh grows by this per master. */
  proxyCpuUsPerMaster: 11.5,
  /** Fitted from the same run: a worker's RSS grows by this per master (pool connection, map share). */
  workerRssBytesPerMaster: 80 * 1024,
  fleet: { shards: 100, hosts: 20, workers: 8, connectionsPerShard: 1, refreshIntervalMs: 5000 },
};

/**
 * The capacity model beside the measurement: what the model predicts at the largest shard count
 * from the smallest (linear reply size, constant Redis memory per connection, the README's fitted
 * per-master CPU and RSS), what was measured there, and the 100-shard fleet recomputed from this
 * run's figures. `processRssBytes` (an idle proxy process, from the memory benchmark) defaults to
 * the 1-worker host's worker RSS at the smallest shard count.
 */
export function capacityMarkdown(results: ShardScaleResult[], processRssBytes?: number): string {
  const a = results[0];
  const b = results[results.length - 1];
  if (!a || !b || b.shards <= a.shards)
    return "(the capacity check needs two shard counts, e.g. --shards 3,30)";
  const kb = (x: number) => `${(x / 1024).toFixed(1)} KB`;
  const mb = (x: number) => `${(x / 1048576).toFixed(1)} MB`;
  const dm = b.shards - a.shards;
  const off = (pred: number, meas: number) => `${(((meas - pred) / pred) * 100).toFixed(0)}%`;
  const rows: [string, string, string, string][] = [
    [
      "CLUSTER SHARDS reply (linear in masters)",
      `${Math.round((a.clusterShardsBytes / a.shards) * b.shards)} B`,
      `${b.clusterShardsBytes} B`,
      off((a.clusterShardsBytes / a.shards) * b.shards, b.clusterShardsBytes),
    ],
    [
      "Redis memory per proxy connection (independent of masters)",
      kb(a.redisBytesPerConnection),
      kb(b.redisBytesPerConnection),
      off(a.redisBytesPerConnection, b.redisBytesPerConnection),
    ],
    [
      `proxy CPU per refresh (+${MODEL.proxyCpuUsPerMaster} us per master)`,
      `${(a.proxyCpuUsPerRefresh + dm * MODEL.proxyCpuUsPerMaster).toFixed(0)} us`,
      `${b.proxyCpuUsPerRefresh.toFixed(0)} us`,
      off(a.proxyCpuUsPerRefresh + dm * MODEL.proxyCpuUsPerMaster, b.proxyCpuUsPerRefresh),
    ],
    [
      `worker RSS, 1 connection per master (+${MODEL.workerRssBytesPerMaster / 1024} KB per master)`,
      mb(a.workerRssBytes + dm * MODEL.workerRssBytesPerMaster),
      mb(b.workerRssBytes),
      off(a.workerRssBytes + dm * MODEL.workerRssBytesPerMaster, b.workerRssBytes),
    ],
  ];
  const f = MODEL.fleet;
  const procs = f.workers + 1;
  const conns = f.hosts * procs * f.connectionsPerShard;
  const refreshesPerSecond = (f.hosts * procs) / (f.refreshIntervalMs / 1000);
  const bytesPerMaster = b.clusterShardsBytes / b.shards;
  const cpuPerMaster = (b.proxyCpuUsPerRefresh - a.proxyCpuUsPerRefresh) / dm;
  const rssPerMaster = Math.max(0, (b.workerRssBytes - a.workerRssBytes) / dm);
  const processRss = processRssBytes ?? a.workerRssBytes;
  // Processes: the workers and the primary, whose thread the busy proxy is (9 of them talk to the
  // shards: `procs`); processRss is the memory benchmark's average over such a host's processes.
  const hostRss = (f.workers + 1) * processRss + procs * (f.shards - a.shards) * rssPerMaster;
  const fleet: [string, string][] = [
    ["data connections per master", `${f.hosts} x ${procs} x ${f.connectionsPerShard} = ${conns}`],
    ["Redis memory for them, per master", mb(conns * b.redisBytesPerConnection)],
    ["refreshes per second, fleet", `${refreshesPerSecond}`],
    ["bytes per refresh", `${f.shards} x ${bytesPerMaster.toFixed(0)} B = ${kb(f.shards * bytesPerMaster)}`],
    ["refresh traffic", `${((refreshesPerSecond * f.shards * bytesPerMaster) / 1e6).toFixed(2)} MB/s`],
    [
      "proxy CPU per refresh",
      `${(b.proxyCpuUsPerRefresh + (f.shards - b.shards) * cpuPerMaster).toFixed(0)} us (${cpuPerMaster.toFixed(1)} us per master measured)`,
    ],
    [
      "memory per proxy host (RSS sum)",
      `${procs + 1} x ${mb(processRss)} + ${procs} x ${f.shards - a.shards} x ${kb(rssPerMaster)} = ${mb(hostRss)}`,
    ],
  ];
  return [
    `Model vs measurement: predicted at ${b.shards} masters from the ${a.shards}-master run, and measured.`,
    "",
    "| quantity | model predicts | measured | off by |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
    `The fleet of the model (${f.shards} shards x ${f.hosts} proxy hosts x ${f.workers} workers, connectionsPerShard ${f.connectionsPerShard}, refreshIntervalMs ${f.refreshIntervalMs}) from this run's figures (migration time: bench/README-migration.md; formulas: bench/README.md):`,
    "",
    "| quantity | from this run |",
    "|---|---|",
    ...fleet.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: { shards: { type: "string", default: "3,30" }, refreshes: { type: "string", default: "200" } },
  });
  const counts = values.shards!.split(",").map(Number);
  const refreshes = Number(values.refreshes);
  if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 100) || !(refreshes > 0))
    throw new Error("--shards expects whole numbers from 1 to 100 (e.g. 3,30); --refreshes a positive count");
  const cleanups = new Cleanups();
  process.on("SIGINT", () => void cleanups.run().then(() => process.exit(130)));
  const timer = setTimeout(() => void cleanups.run().then(() => process.exit(1)), 600_000);
  const results: ShardScaleResult[] = [];
  (async () => {
    for (const n of counts) {
      results.push(await measureShards(n, refreshes));
      console.error(JSON.stringify(results[results.length - 1]));
    }
    console.log(scaleMarkdown(results));
    console.log("");
    console.log(capacityMarkdown(results));
  })()
    .catch((err: Error) => {
      console.error(err.stack);
      process.exitCode = 1;
    })
    .finally(async () => {
      clearTimeout(timer);
      await cleanups.run();
    });
}
