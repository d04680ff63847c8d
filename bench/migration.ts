/**
 * Migration benchmark: 200,000 keys on 3 shards, then a 4th shard joins and gets its share of
 * the slots, each tool on fresh nodes with the same data and topology, one after the other.
 *
 * --engine redis (default): ours (`rebalanceCluster`: pipelined MIGRATE batches, several slot
 * batches at once) against `redis-cli --cluster rebalance --cluster-use-empty-masters` (10 keys per
 * MIGRATE, one slot at a time).
 *
 * --engine valkey: Valkey 9 nodes plus a few big keys (hashes of 50-100 MB, in slots that move), and
 * clients through a proxy during the migration: atomic (MIGRATESLOTS), our legacy path, and
 * redis-cli (Debian's 7.0 talks to Valkey; there is no valkey-cli), interleaved over `--rounds`.
 * Reports keys/s, the longest any client request through the proxy took while slots moved, client
 * errors, and the CPU time (user+sys) of the nodes and of this process.
 *
 *   node --import tsx bench/migration.ts [--engine valkey] [--keys 200000] [--value-bytes 64]
 *     [--big-mb 50,75,100] [--rounds 1] [--tools atomic,legacy,cli,idle] [--atomic-slots-per-batch n]
 *     [--atomic-jobs-per-node 4,1] [--idle-seconds 6]
 *
 * `idle` is an A/A baseline: everything as for the others (nodes, data, clients) but no migration,
 * for --idle-seconds. The proxy and the clients run in processes of their own
 * (bench/lib/migration-traffic.ts); after each run, the longest client requests are printed (stderr)
 * with whatever overlapped them: event-loop stalls and GC of the clients, the proxy and the driver,
 * the redirects the proxy followed and the maps it installed, the migration jobs' state changes,
 * and the nodes' LATENCY events (latency-monitor-threshold 10 ms), slowlog and last fork.
 *
 * Prints a Markdown table. Every key is counted after each run.
 */
import { execFile, fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import calculateSlot from "cluster-key-slot";
import { Redis } from "ioredis";
import { addShard, createCluster, planRebalance, rebalanceCluster } from "../src/cluster/admin/index.ts";
import type { Topology } from "../src/cluster/topology.ts";
import { findServer, type Engine } from "../src/local/engine.ts";
import { freePorts } from "../src/local/ports.ts";
import { RedisServer } from "../src/local/redis-server.ts";
import type { SelfTrace, Span } from "./lib/self-watch.ts";
import { watchRunQueue, watchSelf } from "./lib/self-watch.ts";

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "200000" },
    "value-bytes": { type: "string", default: "64" },
    engine: { type: "string", default: "redis" },
    "big-mb": { type: "string", default: "50,75,100" },
    rounds: { type: "string", default: "1" },
    tools: { type: "string", default: "atomic,legacy,cli" },
    "atomic-slots-per-batch": { type: "string" },
    "atomic-jobs-per-node": { type: "string" },
    "idle-seconds": { type: "string", default: "6" },
  },
});
const KEYS = Number(args.keys);
const VALUE = "v".repeat(Number(args["value-bytes"]));
const ENGINE = args.engine as Engine;
if (ENGINE !== "redis" && ENGINE !== "valkey")
  throw new Error(`--engine ${ENGINE}: expected redis or valkey`);
const VALKEY = ENGINE === "valkey";
/** Big keys (Valkey runs only): one hash per size, each in a slot that moves to the new shard. */
const BIG_MB = VALKEY ? args["big-mb"].split(",").filter(Boolean).map(Number) : [];
const BIG_FIELD_BYTES = 1024;
const ROUNDS = Number(args.rounds);
const CLIENTS = 4;
/** Clients run this long before the migration starts, to show the longest request without one. */
const BASELINE_MS = 3_000;
const run = promisify(execFile);
const TRAFFIC = fileURLToPath(new URL("./lib/migration-traffic.ts", import.meta.url));
/** The longest client requests of each run explained with what overlapped them. */
const TRACE_TOP = 3;
/** Atomic job state changes of the current run, to tell what the longest client request overlapped. */
const jobEvents: { at: number; text: string }[] = [];

interface Result {
  tool: string;
  keys: number;
  slots: number;
  seconds: number;
  /** Seconds of the migration proper (ours: from its migration-done event; the rest is gates, plan, agreement). */
  migrationSeconds?: number;
  /** Longest single request through the proxy in BASELINE_MS before the migration (the machine's own noise), ms. */
  baselineMs?: number;
  /** Longest single request through the proxy while the slots moved (Valkey runs), ms. */
  stallMs?: number;
  requests?: number;
  errors?: number;
  /** Big keys now on the new shard. */
  bigMoved?: number;
  /** CPU seconds (user+sys) of the four nodes, and of this process (ours, the proxy and its clients). */
  nodeCpu?: number;
  benchCpu?: number;
}

/** Four empty cluster-mode nodes; three form the cluster with KEYS keys (and the big keys), the fourth joins empty. */
async function prepare(
  dir: string,
  /** Where the big keys go: the first slot our plan moves from each source, or (redis-cli, which moves each source's lowest slots) the lowest. */
  bigKeysAt: "planned" | "lowest",
): Promise<{ nodes: RedisServer[]; four: Topology; bigKeys: string[] }> {
  const ports = await freePorts(8);
  const nodes: RedisServer[] = [];
  const binary = findServer(ENGINE);
  for (let i = 0; i < 4; i++)
    nodes.push(
      await RedisServer.start({
        port: ports[i]!,
        dir: join(dir, `node-${i}`),
        binary,
        config: {
          "cluster-enabled": true,
          "cluster-config-file": "nodes.conf",
          "cluster-port": ports[4 + i]!,
        },
      }),
    );
  const shard = (i: number) => ({ name: `shard-${i}`, master: nodes[i]!.address, replicas: [] });
  const three = { shards: [0, 1, 2].map(shard) };
  const four = { shards: [0, 1, 2, 3].map(shard) };
  const assignment = await createCluster(three);
  const clients = nodes.slice(0, 3).map((n) => new Redis({ host: n.host, port: n.port }));
  const ownerOf = (slot: number) => assignment.findIndex((a) => slot <= a.last);
  const pipelines = clients.map((c) => c.pipeline());
  for (let i = 0; i < KEYS; i++) {
    const key = `key:${i}`;
    const owner = ownerOf(calculateSlot(key));
    pipelines[owner]!.set(key, VALUE);
    if (pipelines[owner]!.length >= 10_000) {
      await pipelines[owner]!.exec();
      pipelines[owner] = clients[owner]!.pipeline();
    }
  }
  await Promise.all(pipelines.map((p) => p.exec()));
  await addShard(four, "shard-3");
  const bigKeys: string[] = [];
  if (BIG_MB.length > 0) {
    // The first slot each source gives away holds a big hash.
    const plan = await planRebalance(four);
    const firstPerSource =
      bigKeysAt === "planned"
        ? [...new Map(plan.moves.map((m) => [m.from, m.slot])).values()].reverse()
        : assignment.map((a) => a.first).reverse();
    const field = "f".repeat(BIG_FIELD_BYTES);
    for (let b = 0; b < BIG_MB.length; b++) {
      const slot = firstPerSource[b % firstPerSource.length]!;
      let tag = 0;
      while (calculateSlot(`t${tag}`) !== slot) tag++;
      const client = clients[ownerOf(slot)]!;
      const fields = Math.round((BIG_MB[b]! * 1024 * 1024) / BIG_FIELD_BYTES);
      for (let start = 0; start < fields; start += 5_000) {
        const args: string[] = [];
        for (let f = start; f < Math.min(fields, start + 5_000); f++) args.push(`${f}`, field);
        await client.hset(`{t${tag}}:big:${b}`, ...args);
      }
      bigKeys.push(`{t${tag}}:big:${b}`);
    }
  }
  await Promise.all(clients.map((c) => c.quit()));
  return { nodes, four, bigKeys };
}

async function countKeys(nodes: RedisServer[]): Promise<number[]> {
  return Promise.all(
    nodes.map(async (n) => {
      const client = new Redis({ host: n.host, port: n.port });
      const size = await client.dbsize();
      await client.quit();
      return size;
    }),
  );
}

async function ownedSlots(node: RedisServer): Promise<number> {
  const client = new Redis({ host: node.host, port: node.port });
  const myself = String(await client.call("CLUSTER", "NODES"))
    .split("\n")
    .find((line) => line.includes("myself"))!;
  await client.quit();
  return myself
    .split(" ")
    .slice(8)
    .reduce((n, range) => {
      const [a, b = a] = range.split("-").map(Number);
      return n + b! - a! + 1;
    }, 0);
}

/** user+sys CPU seconds of a process, from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A bench/lib/migration-traffic.ts process, with its replies. */
function traffic(
  args: string[],
): Promise<{ child: ChildProcess; port?: number; ask<T>(type: string): Promise<T> }> {
  const child = fork(TRAFFIC, args, {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiting: ((message: Record<string, unknown>) => void)[] = [];
  child.on("message", (message: Record<string, unknown>) => waiting.shift()?.(message));
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      waiting.push(resolve);
      child.once("exit", (code) =>
        reject(new Error(`${args[0]} process exited (${code}) before it answered`)),
      );
    });
  return next().then((ready) => ({
    child,
    port: ready.port as number | undefined,
    ask: <T>(type: string) => {
      const reply = next();
      child.send({ type });
      return reply as Promise<T>;
    },
  }));
}

/**
 * Clients through a proxy over the cluster (SET then GET of random keys, each request timed),
 * the proxy and the clients each in a process of their own (bench/lib/migration-traffic.ts).
 */
async function startClients(seed: string): Promise<{
  /** The longest request so far; the traces start over. */
  mark(): Promise<number>;
  stop(): Promise<{ proxy: SelfTrace; clients: SelfTrace }>;
  pids: { name: string; pid: number }[];
}> {
  const proxy = await traffic(["proxy", seed]);
  const clients = await traffic([
    "clients",
    String(proxy.port),
    String(KEYS),
    String(VALUE.length),
    String(CLIENTS),
  ]);
  let stopped: Promise<{ proxy: SelfTrace; clients: SelfTrace }> | undefined;
  return {
    pids: [
      { name: "proxy", pid: proxy.child.pid! },
      { name: "clients", pid: clients.child.pid! },
    ],
    async mark() {
      return (await clients.ask<{ longest: Span }>("mark")).longest.ms;
    },
    stop() {
      stopped ??= (async () => {
        const c = await clients.ask<{ trace: SelfTrace }>("stop");
        const p = await proxy.ask<{ trace: SelfTrace }>("stop");
        return { proxy: p.trace, clients: c.trace };
      })().finally(() => {
        // By PID: both exit by themselves after their trace; this is for a failed run.
        for (const { child } of [proxy, clients]) if (child.exitCode === null) child.kill();
      });
      return stopped;
    },
  };
}

/** Valkey's own view of the run: latency events, slow commands, the last fork, per node. */
async function nodeEvents(nodes: RedisServer[], since: number): Promise<Span[]> {
  const spans: Span[] = [];
  await Promise.all(
    nodes.map(async (n, i) => {
      const client = new Redis({ host: n.host, port: n.port });
      try {
        const latest = (await client.call("LATENCY", "LATEST")) as [string, number, number, number][];
        for (const [event] of latest) {
          const history = (await client.call("LATENCY", "HISTORY", event)) as [number, number][];
          for (const [at, ms] of history)
            if (at * 1000 >= since - 1000)
              spans.push({ at: at * 1000, ms, what: `node-${i} latency ${event} (second resolution)` });
        }
        const slow = (await client.call("SLOWLOG", "GET", "20")) as [number, number, number, string[]][];
        for (const [, at, micros, command] of slow)
          if (at * 1000 >= since - 1000)
            spans.push({
              at: at * 1000,
              ms: micros / 1000,
              what: `node-${i} slowlog ${command.slice(0, 4).join(" ").slice(0, 80)} (second resolution)`,
            });
        const info = String(await client.info("stats"));
        const fork = Number(/latest_fork_usec:(\d+)/.exec(info)?.[1] ?? 0);
        if (fork > 0) nodeForks.push(`node-${i} ${(fork / 1000).toFixed(1)} ms`);
      } finally {
        client.disconnect();
      }
    }),
  );
  return spans;
}
/**
 * The lines of the nodes' logs (ms timestamps) from `since` that tell of a write pause, a fork or
 * a slot migration step; a "Pausing writes" line becomes a span lasting until that node's next
 * line telling of an unpause or the job's end (the pause is server-wide: every write to the node
 * waits, not only the moving slots').
 */
async function nodeLogs(nodes: RedisServer[], since: number): Promise<Span[]> {
  const spans: Span[] = [];
  for (const [i, n] of nodes.entries()) {
    const text = await readFile(join(n.dir, "redis.log"), "utf8").catch(() => "");
    const lines = text
      .split("\n")
      .map((line) => {
        const m = /^\d+:\w (\d+ \w+ \d+ [\d:.]+) . (.*)$/.exec(line);
        return m ? { at: Date.parse(`${m[1]} UTC`), text: m[2]! } : undefined;
      })
      .filter((l): l is { at: number; text: string } => l !== undefined && l.at >= since - 1000);
    lines.forEach((line, j) => {
      if (!/paus|fork|migrat|snapshot|epoch|failover|import|export/i.test(line.text)) return;
      // "{name: <40 hex>, operation: export, target_node_id: ...}": the job's name is enough.
      const text = line.text.replace(/\{name: (\w{8})\w*[^}]*\}/g, "{$1}");
      // A pause lasts until its job's end ("... -> success"), or an unpause line.
      const job = /^Pausing writes.*\{(\w+)\}/.exec(text)?.[1];
      const end = job
        ? (lines
            .slice(j + 1)
            .find(
              (l) =>
                /unpaus/i.test(l.text) ||
                (l.text.includes(job) && /-> (success|failed|cancelled)/.test(l.text)),
            )?.at ?? line.at)
        : line.at;
      spans.push({ at: line.at, ms: end - line.at, what: `node-${i} log: ${text.slice(0, 160)}` });
    });
  }
  return spans;
}

/** The last fork of each node that forked in the current run (INFO latest_fork_usec). */
const nodeForks: string[] = [];

/** Turns on Valkey's latency monitor and clears its history and the slowlog. */
async function watchNodes(nodes: RedisServer[]): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      const client = new Redis({ host: n.host, port: n.port });
      await client.config("SET", "latency-monitor-threshold", "10");
      await client.call("LATENCY", "RESET");
      await client.call("SLOWLOG", "RESET");
      client.disconnect();
    }),
  );
}

/** Prints the longest client requests of a run with everything that overlapped them (± 100 ms). */
function explain(
  tool: string,
  traces: { proxy: SelfTrace; clients: SelfTrace },
  driver: SelfTrace,
  nodes: Span[],
): void {
  const { proxy, clients } = traces;
  const sources: [string, Span[]][] = [
    ["Valkey", nodes],
    ["clients' event loop", clients.stalls],
    ["clients' GC", clients.gcs],
    ["proxy's event loop", proxy.stalls],
    ["proxy's GC", proxy.gcs],
    ["proxy followed", proxy.redirects],
    ["proxy slot map", proxy.maps.map((at) => ({ at, ms: 0, what: "installed" }))],
    ["migration job", jobEvents.map((e) => ({ at: e.at, ms: 0, what: e.text }))],
    ["driver's event loop", driver.stalls],
  ];
  const longest = [...clients.requests].sort((a, b) => b.ms - a.ms).slice(0, TRACE_TOP);
  console.error(
    `${tool}: ${clients.requests.length} requests took >= 50 ms; event-loop delay max: clients ${clients.loopDelayMaxMs.toFixed(0)} ms, ` +
      `proxy ${proxy.loopDelayMaxMs.toFixed(0)} ms, driver ${driver.loopDelayMaxMs.toFixed(0)} ms; ` +
      `GC >= 10 ms: clients ${clients.gcs.length}, proxy ${proxy.gcs.length}; forks: ${nodeForks.join(", ") || "none"}`,
  );
  const pauses = nodes.filter((s) => s.what.includes("Pausing writes"));
  console.error(
    `  write pauses (server-wide, from its log line to the job's end): ${pauses.map((p) => `${p.what.slice(0, 6)} ${p.ms} ms`).join(", ") || "none"}`,
  );
  for (const r of longest) {
    const from = r.at - 100;
    const to = r.at + r.ms + 100;
    const overlaps = sources.flatMap(([name, spans]) =>
      spans
        .filter((s) =>
          s.what.includes("second resolution")
            ? s.at <= to && s.at + 1000 >= from
            : s.at <= to && s.at + s.ms >= from,
        )
        .map((s) => `${name}: ${s.what} ${s.ms ? `${s.ms.toFixed(0)} ms ` : ""}@${s.at - r.at} ms`),
    );
    console.error(`  ${r.ms.toFixed(0)} ms ${r.what} at ${new Date(r.at).toISOString().slice(11, 23)}`);
    for (const o of overlaps.slice(0, 60)) console.error(`    ${o}`);
  }
}

async function measure(
  tool: string,
  migrate: (nodes: RedisServer[], four: Topology, migrationSeconds: (s: number) => void) => Promise<number>,
  bigKeysAt: "planned" | "lowest" = "planned",
): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), "dredis-bench-"));
  let nodes: RedisServer[] = [];
  let clients: Awaited<ReturnType<typeof startClients>> | undefined;
  try {
    const prepared = await prepare(dir, bigKeysAt);
    nodes = prepared.nodes;
    if (VALKEY) await watchNodes(nodes);
    clients = VALKEY ? await startClients(nodes[0]!.address) : undefined;
    if (clients) await new Promise((r) => setTimeout(r, BASELINE_MS));
    const baselineMs = await clients?.mark();
    let migrationSeconds: number | undefined;
    const nodeCpu0 = nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0);
    const benchCpu0 = process.cpuUsage();
    const driver = watchSelf();
    const runQueue = watchRunQueue([
      ...nodes.map((n, i) => ({ name: `node-${i}`, pid: n.pid! })),
      ...(clients?.pids ?? []),
    ]);
    const startedAt = Date.now();
    const started = process.hrtime.bigint();
    const slots = await migrate(nodes, prepared.four, (s) => (migrationSeconds = s));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    driver.stop();
    runQueue.stop();
    const nodeCpu = nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0) - nodeCpu0;
    const benchUsage = process.cpuUsage(benchCpu0);
    const traces = await clients?.stop();
    clients = undefined;
    let traffic: Pick<Result, "stallMs" | "requests" | "errors"> | undefined;
    if (traces) {
      nodeForks.length = 0;
      explain(tool, traces, driver.trace, [
        ...(await nodeLogs(nodes, startedAt)),
        ...runQueue.spans,
        ...(await nodeEvents(nodes, startedAt)),
      ]);
      traffic = {
        stallMs: traces.clients.longest!.ms,
        requests: traces.clients.count,
        errors: traces.clients.errors,
      };
    }
    jobEvents.length = 0;
    const counts = await countKeys(nodes);
    const total = counts.reduce((a, b) => a + b, 0);
    if (total !== KEYS + prepared.bigKeys.length)
      throw new Error(
        `${tool}: ${total} keys after the migration, expected ${KEYS + prepared.bigKeys.length}`,
      );
    // The tool chooses which slots move: the big keys moved only if their slots did.
    const newShard = new Redis({ host: nodes[3]!.host, port: nodes[3]!.port });
    let bigMoved = 0;
    try {
      // Nothing moved (idle): the new shard would answer MOVED.
      if (slots > 0) for (const key of prepared.bigKeys) bigMoved += await newShard.exists(key);
    } finally {
      newShard.disconnect();
    }
    return {
      tool,
      keys: counts[3]!,
      slots,
      seconds,
      migrationSeconds,
      baselineMs,
      bigMoved,
      ...traffic,
      nodeCpu,
      benchCpu: (benchUsage.user + benchUsage.system) / 1e6,
    };
  } finally {
    await clients?.stop().catch(() => {});
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

const redisCliRebalance = async (nodes: RedisServer[]) => {
  await run("redis-cli", ["--cluster", "rebalance", nodes[0]!.address, "--cluster-use-empty-masters"], {
    maxBuffer: 64 * 1024 * 1024,
  });
  // Slots the new shard owns now: all of them arrived by this run.
  return ownedSlots(nodes[3]!);
};
const CLI = "redis-cli --cluster rebalance --cluster-use-empty-masters";

if (!VALKEY) {
  const ours = await measure("dredis cluster rebalance", async (_nodes, four) => {
    const { moved } = await rebalanceCluster(four);
    return moved.length;
  });
  const redisCli = await measure(CLI, redisCliRebalance, "lowest");
  const rows = [ours, redisCli].map(
    (r) =>
      `| ${r.tool} | ${r.keys} | ${r.slots} | ${r.seconds.toFixed(2)} | ${Math.round(r.keys / r.seconds)} |`,
  );
  console.log(`Migration of ${KEYS} keys (${VALUE.length}-byte values), 3 -> 4 shards, no replicas\n`);
  console.log("| tool | keys moved | slots moved | seconds | keys/s |");
  console.log("|---|---:|---:|---:|---:|");
  console.log(rows.join("\n"));
  console.log(
    `\nours / redis-cli: ${(ours.keys / ours.seconds / (redisCli.keys / redisCli.seconds)).toFixed(1)}x keys per second`,
  );
} else {
  const ours =
    (slotMigration: "atomic" | "legacy", atomicJobsPerNode?: number) =>
    async (_n: RedisServer[], four: Topology, migrationSeconds: (s: number) => void) =>
      (
        await rebalanceCluster(four, {
          slotMigration,
          atomicJobsPerNode,
          atomicSlotsPerBatch: args["atomic-slots-per-batch"]
            ? Number(args["atomic-slots-per-batch"])
            : undefined,
          onProgress: (e) => {
            if (e.type === "migration-done") migrationSeconds(e.seconds);
            if (e.type === "atomic-job")
              jobEvents.push({ at: Date.now(), text: `${e.from}>${e.to} ${e.slots} ${e.state}` });
          },
        })
      ).moved.length;
  // --atomic-jobs-per-node 4,1: one atomic run of each, interleaved (A/B of that setting).
  const perNode = args["atomic-jobs-per-node"]?.split(",").map(Number) ?? [undefined];
  const all: [string, string, Parameters<typeof measure>[1]][] = [
    ...perNode.map((n): [string, string, Parameters<typeof measure>[1]] => [
      "atomic",
      `dredis rebalance, atomic (MIGRATESLOTS${n === undefined ? "" : `, ${n} job${n === 1 ? "" : "s"} per node`})`,
      ours("atomic", n),
    ]),
    ["legacy", "dredis rebalance, legacy (MIGRATE)", ours("legacy")],
    ["cli", CLI, redisCliRebalance],
    // A/A: the same nodes, data and clients, and no migration: what the machine does by itself.
    [
      "idle",
      "idle (no migration)",
      async () => {
        await new Promise((r) => setTimeout(r, Number(args["idle-seconds"]) * 1000));
        return 0;
      },
    ],
  ];
  const chosen = args.tools.split(",");
  const tools = all.filter(([name]) => chosen.includes(name)).map(([, tool, fn]) => [tool, fn] as const);
  const results: Result[] = [];
  for (let round = 0; round < ROUNDS; round++)
    for (const [tool, migrate] of tools) {
      const result = await measure(tool, migrate, tool === CLI ? "lowest" : "planned").catch((err: Error) => {
        console.error(`${tool}: ${err.message}`);
        return undefined;
      });
      if (result) {
        results.push(result);
        console.error(JSON.stringify(result));
      }
    }
  console.log(
    `Migration of ${KEYS} keys (${VALUE.length}-byte values) and ${BIG_MB.length} hashes of ${BIG_MB.join("/")} MB, ` +
      `Valkey 9, 3 -> 4 shards, no replicas; ${CLIENTS} clients (SET+GET, one request at a time) through a proxy\n`,
  );
  console.log(
    "| tool | keys moved (big ones) | seconds (migration alone) | keys/s | longest request before / during (ms) | client errors | requests | node CPU s | bench CPU s |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results)
    console.log(
      `| ${r.tool} | ${r.keys} (${r.bigMoved}) | ${r.seconds.toFixed(2)}${r.migrationSeconds === undefined ? "" : ` (${r.migrationSeconds.toFixed(2)})`} | ` +
        `${Math.round(r.keys / r.seconds)} | ${r.baselineMs!.toFixed(0)} / ${r.stallMs!.toFixed(0)} | ${r.errors} | ${r.requests} | ` +
        `${r.nodeCpu!.toFixed(2)} | ${r.benchCpu!.toFixed(2)} |`,
    );
  const rate = (tool: string) => {
    const runs = results.filter((r) => r.tool === tool);
    return runs.reduce((s, r) => s + r.keys, 0) / runs.reduce((s, r) => s + r.seconds, 0);
  };
  const atomic = rate(all[0]![1]);
  console.log(
    `\natomic / redis-cli: ${(atomic / rate(CLI)).toFixed(1)}x keys per second; atomic / our legacy: ${(atomic / rate(all[1]![1])).toFixed(1)}x`,
  );
}
