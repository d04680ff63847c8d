/**
 * Migration benchmark: 200,000 keys on 3 shards, then a 4th shard joins and gets its share of
 * the slots. Ours (`rebalanceCluster`: pipelined MIGRATE batches, several slot batches at once)
 * against `redis-cli --cluster rebalance --cluster-use-empty-masters` (10 keys per MIGRATE, one
 * slot at a time), on the same data and topology, one after the other.
 *
 *   node --import tsx bench/migration.ts [--keys 200000] [--value-bytes 64]
 *
 * Prints a Markdown table of keys per second. Every key is counted after each run.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import calculateSlot from "cluster-key-slot";
import { Redis } from "ioredis";
import { addShard, createCluster, rebalanceCluster } from "../src/cluster/admin/index.ts";
import type { Topology } from "../src/cluster/topology.ts";
import { freePorts } from "../src/local/ports.ts";
import { RedisServer } from "../src/local/redis-server.ts";

const { values: args } = parseArgs({
  options: { keys: { type: "string", default: "200000" }, "value-bytes": { type: "string", default: "64" } },
});
const KEYS = Number(args.keys);
const VALUE = "v".repeat(Number(args["value-bytes"]));
const run = promisify(execFile);

interface Result {
  tool: string;
  keys: number;
  slots: number;
  seconds: number;
}

/** Four empty cluster-mode nodes; three form the cluster with KEYS keys, the fourth joins empty. */
async function prepare(dir: string): Promise<{ nodes: RedisServer[]; three: Topology; four: Topology }> {
  const ports = await freePorts(8);
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 4; i++)
    nodes.push(
      await RedisServer.start({
        port: ports[i]!,
        dir: join(dir, `node-${i}`),
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
  const pipelines = clients.map((c) => c.pipeline());
  for (let i = 0; i < KEYS; i++) {
    const key = `key:${i}`;
    const owner = assignment.findIndex((a) => calculateSlot(key) <= a.last);
    pipelines[owner]!.set(key, VALUE);
    if (pipelines[owner]!.length >= 10_000) {
      await pipelines[owner]!.exec();
      pipelines[owner] = clients[owner]!.pipeline();
    }
  }
  await Promise.all(pipelines.map((p) => p.exec()));
  await Promise.all(clients.map((c) => c.quit()));
  await addShard(four, "shard-3");
  return { nodes, three, four };
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

async function measure(
  tool: string,
  migrate: (nodes: RedisServer[], four: Topology) => Promise<number>,
): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), "dredis-bench-"));
  let nodes: RedisServer[] = [];
  try {
    const prepared = await prepare(dir);
    nodes = prepared.nodes;
    const started = process.hrtime.bigint();
    const slots = await migrate(nodes, prepared.four);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const counts = await countKeys(nodes);
    const total = counts.reduce((a, b) => a + b, 0);
    if (total !== KEYS) throw new Error(`${tool}: ${total} keys after the migration, expected ${KEYS}`);
    return { tool, keys: counts[3]!, slots, seconds };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

const ours = await measure("dredis cluster rebalance", async (_nodes, four) => {
  const { moved } = await rebalanceCluster(four);
  return moved.length;
});
const redisCli = await measure("redis-cli --cluster rebalance --cluster-use-empty-masters", async (nodes) => {
  await run("redis-cli", ["--cluster", "rebalance", nodes[0]!.address, "--cluster-use-empty-masters"], {
    maxBuffer: 64 * 1024 * 1024,
  });
  // Slots the new shard owns now: all of them arrived by this run.
  return ownedSlots(nodes[3]!);
});

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
