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
 *     [--big-mb 50,75,100] [--rounds 1] [--tools atomic,legacy,cli] [--atomic-slots-per-batch n]
 *
 * Prints a Markdown table. Every key is counted after each run.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import calculateSlot from "cluster-key-slot";
import { Redis } from "ioredis";
import { pino } from "pino";
import { addShard, createCluster, planRebalance, rebalanceCluster } from "../src/cluster/admin/index.ts";
import type { Topology } from "../src/cluster/topology.ts";
import { findServer, type Engine } from "../src/local/engine.ts";
import { freePorts } from "../src/local/ports.ts";
import { RedisServer } from "../src/local/redis-server.ts";
import { parseProxyConfig } from "../src/proxy/config.ts";
import { startWorker } from "../src/proxy/worker.ts";

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "200000" },
    "value-bytes": { type: "string", default: "64" },
    engine: { type: "string", default: "redis" },
    "big-mb": { type: "string", default: "50,75,100" },
    rounds: { type: "string", default: "1" },
    tools: { type: "string", default: "atomic,legacy,cli" },
    "atomic-slots-per-batch": { type: "string" },
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

/** Clients through a proxy over the cluster: SET then GET of random keys, each request timed. */
async function startClients(seed: string): Promise<{
  /** The longest request so far, and starts over. */
  mark(): number;
  stop(): Promise<{ stallMs: number; stallAt: number; requests: number; errors: number }>;
}> {
  const config = parseProxyConfig({
    listen: { host: "127.0.0.1", port: 0 },
    seeds: [seed],
    logLevel: "silent",
  });
  const worker = await startWorker(config, { log: pino({ level: "silent" }) });
  let running = true;
  let stallMs = 0;
  let stallAt = 0;
  let requests = 0;
  let errors = 0;
  const deadline = Date.now() + 30 * 60_000;
  const loops = Array.from({ length: CLIENTS }, async (_, c) => {
    const client = new Redis({ host: "127.0.0.1", port: worker.port, maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    for (let i = c; running && Date.now() < deadline; i += 7919) {
      const key = `key:${i % KEYS}`;
      for (const request of [() => client.set(key, VALUE), () => client.get(key)]) {
        const started = process.hrtime.bigint();
        try {
          await request();
        } catch {
          errors++;
        }
        const took = Number(process.hrtime.bigint() - started) / 1e6;
        if (took > stallMs) {
          stallMs = took;
          stallAt = Date.now() - took;
        }
        requests++;
      }
    }
    client.disconnect();
  });
  return {
    mark() {
      const longest = stallMs;
      stallMs = 0;
      return longest;
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      await worker.close();
      return { stallMs, stallAt, requests, errors };
    },
  };
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
    clients = VALKEY ? await startClients(nodes[0]!.address) : undefined;
    if (clients) await new Promise((r) => setTimeout(r, BASELINE_MS));
    const baselineMs = clients?.mark();
    let migrationSeconds: number | undefined;
    const nodeCpu0 = nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0);
    const benchCpu0 = process.cpuUsage();
    const started = process.hrtime.bigint();
    const slots = await migrate(nodes, prepared.four, (s) => (migrationSeconds = s));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const nodeCpu = nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0) - nodeCpu0;
    const benchUsage = process.cpuUsage(benchCpu0);
    const traffic = await clients?.stop();
    clients = undefined;
    if (traffic && jobEvents.length > 0) {
      const { stallAt, stallMs } = traffic;
      const during = jobEvents.filter((e) => e.at >= stallAt - 200 && e.at <= stallAt + stallMs + 200);
      console.error(
        `${tool}: longest request ${stallMs.toFixed(0)} ms; job states around it: ` +
          (during.map((e) => `${e.text} @${e.at - stallAt} ms`).join("; ") || "none"),
      );
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
    for (const key of prepared.bigKeys) bigMoved += await newShard.exists(key);
    await newShard.quit();
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
    await clients?.stop();
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
    (slotMigration: "atomic" | "legacy") =>
    async (_n: RedisServer[], four: Topology, migrationSeconds: (s: number) => void) =>
      (
        await rebalanceCluster(four, {
          slotMigration,
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
  const all: [string, string, Parameters<typeof measure>[1]][] = [
    ["atomic", "dredis rebalance, atomic (MIGRATESLOTS)", ours("atomic")],
    ["legacy", "dredis rebalance, legacy (MIGRATE)", ours("legacy")],
    ["cli", CLI, redisCliRebalance],
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
