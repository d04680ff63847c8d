/**
 * Fixtures for the atomic slot migration tests: empty Valkey 9 cluster-mode nodes, a proxy (worker
 * and busy proxy) over them, and a pipelined writer/reader/scanner that counts every client-visible
 * error and remembers every acknowledged write.
 */
import calculateSlot from "cluster-key-slot";
import type { Cluster, Redis } from "ioredis";
import { planRebalance } from "../../../src/cluster/admin/rebalance.ts";
import { checkCluster } from "../../../src/cluster/admin/check.ts";
import type { Topology } from "../../../src/cluster/topology.ts";
import type { RedisServer } from "../../../src/local/redis-server.ts";
import type { Cleanup, TestCluster } from "../../support/redis.ts";
import { proxyClient, startTestProxy, type TestProxy } from "../../support/proxy.ts";
import { startEmptyNodes } from "./cluster-fixture.ts";

/** Starts `count` empty Valkey cluster-mode nodes (no slots, knowing only themselves). */
export function startEmptyValkeyNodes(t: Cleanup, count: number): Promise<RedisServer[]> {
  return startEmptyNodes(t, count, "valkey");
}

/** A proxy worker plus busy proxy (SCAN, cross-slot MSET/MGET) seeded with `seeds`. */
export async function startProxyOver(t: Cleanup, seeds: string[]): Promise<TestProxy> {
  return startTestProxy(t, { seeds } as unknown as TestCluster, { seeds }, { busyProxy: true });
}

export const baseKey = (i: number): string => `base:${i}`;
export const baseValue = (i: number): string => `b${i}-${"x".repeat(i % 40)}`;

/** Loads `count` base keys through the proxy (pipelined). */
export async function loadBase(client: Redis, count: number): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    const pipeline = client.pipeline();
    for (let i = start; i < Math.min(count, start + 1000); i++) pipeline.set(baseKey(i), baseValue(i));
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
  }
}

export interface Traffic {
  /** Stops the loops and resolves with what they saw. */
  stop(): Promise<TrafficResult>;
}

export interface TrafficResult {
  errors: string[];
  /** Last acknowledged value of every key the writer wrote. */
  acked: Map<string, string>;
  writes: number;
  reads: number;
  /** Full SCANs completed, and base keys any of them missed. */
  scans: number;
  scanMissed: string[];
}

const PIPELINE = 50;
/** Bound on the loops if a test never stops them. */
const MAX_TRAFFIC_MS = 300_000;

/**
 * Runs, until stopped, through the proxy: a writer (pipelines of SET and cross-slot MSET, each
 * value unique), a reader (pipelines of GET and cross-slot MGET of base keys, checked exactly),
 * and a scanner (full SCANs, each checked to return every base key).
 */
export function startTraffic(t: Cleanup, port: number, baseCount: number): Traffic {
  const errors: string[] = [];
  const acked = new Map<string, string>();
  let running = true;
  const deadline = Date.now() + MAX_TRAFFIC_MS;
  const live = () => running && Date.now() < deadline;
  let writes = 0;
  let reads = 0;
  let scans = 0;
  const scanMissed: string[] = [];
  const note = (what: string, err: unknown) => {
    if (errors.length < 50) errors.push(`${what}: ${(err as Error)?.message ?? String(err)}`);
    else errors.length++;
  };

  const writer = (async () => {
    const client = proxyClient(t, port);
    for (let round = 0; live(); round++) {
      const pipeline = client.pipeline();
      const sent: [string, string][] = [];
      for (let j = 0; j < PIPELINE; j++) {
        const key = `w:${(round * PIPELINE + j) % 5000}`;
        const value = `r${round}-${j}`;
        pipeline.set(key, value);
        sent.push([key, value]);
      }
      // A cross-slot MSET: the busy proxy splits it per slot.
      const mset: [string, string][] = Array.from({ length: 8 }, (_, k) => [
        `m:${(round * 8 + k) % 2000}`,
        `r${round}`,
      ]);
      pipeline.mset(...mset.flat());
      try {
        const results = (await pipeline.exec()) ?? [];
        results.forEach(([err], i) => {
          if (err) return note(`write ${i < sent.length ? sent[i]![0] : "MSET"}`, err);
          if (i < sent.length) acked.set(sent[i]![0], sent[i]![1]);
          else for (const [k, v] of mset) acked.set(k, v);
        });
        writes += results.length;
      } catch (err) {
        note("write pipeline", err);
      }
    }
  })();

  const reader = (async () => {
    const client = proxyClient(t, port);
    for (let round = 0; live(); round++) {
      const pipeline = client.pipeline();
      const keys = Array.from({ length: PIPELINE }, (_, j) => (round * 7919 + j * 104729) % baseCount);
      for (const i of keys) pipeline.get(baseKey(i));
      const multi = keys.slice(0, 10);
      pipeline.mget(...multi.map(baseKey));
      try {
        const results = (await pipeline.exec()) ?? [];
        results.forEach(([err, value], i) => {
          if (err) return note(`read ${i}`, err);
          if (i < keys.length) {
            if (value !== baseValue(keys[i]!)) note(`read ${baseKey(keys[i]!)}`, `got ${String(value)}`);
          } else {
            const got = value as (string | null)[];
            multi.forEach((k, n) => {
              if (got[n] !== baseValue(k)) note(`MGET ${baseKey(k)}`, `got ${String(got[n])}`);
            });
          }
        });
        reads += results.length;
      } catch (err) {
        note("read pipeline", err);
      }
    }
  })();

  const scanner = (async () => {
    const client = proxyClient(t, port);
    while (live()) {
      const seen = new Set<string>();
      let cursor = "0";
      try {
        do {
          const [next, keys] = await client.scan(cursor, "MATCH", "base:*", "COUNT", 2000);
          cursor = next;
          for (const k of keys) seen.add(k);
        } while (cursor !== "0" && live());
      } catch (err) {
        note("SCAN", err);
        continue;
      }
      if (cursor !== "0") break;
      scans++;
      for (let i = 0; i < baseCount; i++) if (!seen.has(baseKey(i))) scanMissed.push(baseKey(i));
    }
  })();

  return {
    async stop() {
      running = false;
      await Promise.all([writer, reader, scanner]);
      return { errors, acked, writes, reads, scans, scanMissed };
    },
  };
}

/** Every acknowledged write and base key read back through the proxy: the keys whose value differs. */
export async function lostWrites(
  client: Redis,
  acked: Map<string, string>,
  baseCount: number,
): Promise<string[]> {
  const expected: [string, string][] = [...acked];
  for (let i = 0; i < baseCount; i++) expected.push([baseKey(i), baseValue(i)]);
  const lost: string[] = [];
  for (let start = 0; start < expected.length; start += 1000) {
    const chunk = expected.slice(start, start + 1000);
    const pipeline = client.pipeline();
    for (const [key] of chunk) pipeline.get(key);
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([err, value], i) => {
      if (err || value !== chunk[i]![1]) lost.push(`${chunk[i]![0]}: ${err ? err.message : String(value)}`);
    });
  }
  return lost;
}

/** Sum of a field of `INFO errorstats` (e.g. "ASK") over nodes. */
export async function errorStat(clients: Redis[], name: string): Promise<number> {
  let sum = 0;
  for (const c of clients) {
    const match = new RegExp(`errorstat_${name}:count=(\\d+)`).exec(String(await c.info("errorstats")));
    sum += match ? Number(match[1]) : 0;
  }
  return sum;
}

/** Big values in the first slot each source gives away, so its job lasts long enough to be interrupted. */
const BIG_KEYS_PER_SOURCE = 8;
const BIG_BYTES = 3 * 1024 * 1024;

export function tagFor(slot: number): string {
  for (let i = 0; ; i++) if (calculateSlot(`t${i}`) === slot) return `t${i}`;
}

export const bigValue = (n: number): string => `${n}:`.padEnd(BIG_BYTES, String.fromCharCode(97 + (n % 26)));

/** Writes big keys into the first slot each source will give to the new shard; returns their names. */
export async function writeBigKeys(client: Cluster, four: Topology): Promise<string[]> {
  const plan = await planRebalance(four);
  const firstPerSource = new Map<string, number>();
  for (const move of plan.moves) if (!firstPerSource.has(move.from)) firstPerSource.set(move.from, move.slot);
  const names: string[] = [];
  for (const slot of firstPerSource.values()) {
    const tag = tagFor(slot);
    for (let i = 0; i < BIG_KEYS_PER_SOURCE; i++) {
      const name = `{${tag}}:big:${i}`;
      await client.set(name, bigValue(i));
      names.push(name);
    }
  }
  return names;
}

export async function bigKeysIntact(client: Cluster, names: string[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const name of names) {
    const i = Number(name.split(":").pop());
    if ((await client.get(name)) !== bigValue(i)) wrong.push(name);
  }
  return wrong;
}

/** Every one of the four shards holds 4096 slots. */
export const balanced = async (four: Topology): Promise<boolean> =>
  (await checkCluster(four)).shards.map((s) => s.slots).join(",") === "4096,4096,4096,4096";
