import { test } from "node:test";
import assert from "node:assert/strict";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import type { ProgressEvent } from "../../../src/cluster/admin/options.ts";
import { clusterClient, redisCliCheck, topologyOf } from "./cluster-fixture.ts";
import { balanced, startEmptyValkeyNodes } from "./atomic-fixture.ts";

type JobEvent = Extract<ProgressEvent, { type: "atomic-job" }>;
const TERMINAL = new Set(["success", "failed", "cancelled"]);

/** Pairs of jobs (by name) that ran at the same time with a node in common, from the order of their state reports. */
function overlapping(events: JobEvent[]): string[] {
  const jobs = new Map<string, { from: string; to: string; first: number; last: number }>();
  events.forEach((e, i) => {
    const job = jobs.get(e.job) ?? { from: e.from, to: e.to, first: i, last: Infinity };
    if (TERMINAL.has(e.state)) job.last = i;
    jobs.set(e.job, job);
  });
  const list = [...jobs.entries()];
  const pairs: string[] = [];
  for (const [a, x] of list)
    for (const [b, y] of list)
      if (
        a < b &&
        x.first < y.last &&
        y.first < x.last &&
        [x.from, x.to].some((n) => n === y.from || n === y.to)
      )
        pairs.push(`${x.from}>${x.to} ${a.slice(0, 8)} / ${y.from}>${y.to} ${b.slice(0, 8)}`);
  return pairs;
}

test("atomic migration runs one MIGRATESLOTS job per node at a time (a source's write pause is server-wide; a busy target stretches it), and still moves every slot and key", async (t) => {
  const nodes = await startEmptyValkeyNodes(t, 4);
  const three = topologyOf(nodes, 3, 0);
  const four = topologyOf(nodes, 4, 0);
  await applyTopology(three);
  const client = clusterClient(t, three);
  for (let start = 0; start < 3000; start += 500)
    await Promise.all(Array.from({ length: 500 }, (_, i) => client.set(`k:${start + i}`, `v${start + i}`)));

  // A limit that would wait forever is refused before any job starts.
  await assert.rejects(applyTopology(four, { slotMigration: "atomic", atomicJobsPerNode: 0 }), {
    message:
      "atomicJobsPerNode is 0: it must be a whole number of 1 or more (how many MIGRATESLOTS jobs one node takes part in at once); nothing was moved",
  });
  const events: JobEvent[] = [];
  // Small jobs and the default 4 batches at once: three sources would each have one running
  // towards the one new shard, were it not for the per-node limit.
  const grown = await applyTopology(four, {
    slotMigration: "atomic",
    atomicSlotsPerBatch: 256,
    onProgress: (e) => void (e.type === "atomic-job" && events.push(e)),
  });
  assert.equal(grown.plan.rebalance.method, "atomic");
  assert.ok(new Set(events.map((e) => e.job)).size >= 16, `jobs: ${new Set(events.map((e) => e.job)).size}`);
  assert.deepEqual(overlapping(events).slice(0, 5), []);
  assert.ok(await balanced(four));
  await redisCliCheck(four.shards[0]!.master);
  const values = await Promise.all(Array.from({ length: 3000 }, (_, i) => client.get(`k:${i}`)));
  assert.deepEqual(values.flatMap((v, i) => (v === `v${i}` ? [] : [`k:${i}=${v}`])).slice(0, 5), []);
});
