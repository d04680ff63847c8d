import { test } from "node:test";
import assert from "node:assert/strict";
import calculateSlot from "cluster-key-slot";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import { addShard } from "../../../src/cluster/admin/shards.ts";
import { checkCluster } from "../../../src/cluster/admin/check.ts";
import { planRebalance, rebalanceCluster } from "../../../src/cluster/admin/rebalance.ts";
import type { RebalancePlan } from "../../../src/cluster/admin/rebalance.ts";
import {
  clusterClient,
  redisCliCheck,
  runCli,
  startEmptyNodes,
  topologyOf,
  writeKeys,
  wrongKeys,
} from "./cluster-fixture.ts";

const KEYS = 5_000;
const HOT_KEYS = 1_500;

/** A hash tag whose keys all land in `slot` (tags without braces inside hash as cluster-key-slot says). */
function tagFor(slot: number): string {
  for (let i = 0; ; i++) if (calculateSlot(`t${i}`) === slot) return `t${i}`;
}

test("rebalance killed with SIGKILL in the middle of a slot finishes on a re-run with no key lost", async (t) => {
  const nodes = await startEmptyNodes(t, 4);
  const three = topologyOf(nodes, 3, 0);
  const four = topologyOf(nodes, 4, 0);
  await applyTopology(three);
  await addShard(four, "shard-3");
  const client = clusterClient(t, four);
  await writeKeys(client, KEYS);

  // Fill the first slot to move with many keys, so the throttled run is inside it for seconds.
  const plan = await planRebalance(four);
  const hotSlot = plan.moves[0]!.slot;
  const tag = tagFor(hotSlot);
  for (let i = 0; i < HOT_KEYS; i += 500)
    await Promise.all(Array.from({ length: 500 }, (_, j) => client.set(`{${tag}}:${i + j}`, `hot-${i + j}`)));

  const killed = await runCli(
    ["rebalance", "--topology", JSON.stringify(four), "--max-keys-per-second", "400"],
    (line, child) => {
      const event = JSON.parse(line) as { type: string; slot?: number };
      if (event.type === "keys-moved" && event.slot === hotSlot) child.kill("SIGKILL");
    },
  );
  assert.equal(killed.signal, "SIGKILL", `the run ended by itself:\n${killed.stderr}`);

  const during = await checkCluster(four);
  const open = during.problems.filter((p) => p.kind === "open-slot");
  assert.ok(
    open.some((p) => p.message.startsWith(`slot ${hotSlot} is open`) && p.resumable),
    `slot ${hotSlot} should be left open mid-migration: ${JSON.stringify(during.problems)}`,
  );

  const rerun = await runCli(["rebalance", "--topology", JSON.stringify(four), "--json"]);
  assert.equal(rerun.code, 0, rerun.stderr);
  const result = JSON.parse(rerun.stdout) as { plan: RebalancePlan };
  assert.ok(
    result.plan.resume.some((m) => m.slot === hotSlot),
    "the re-run finishes the open slot first",
  );

  const after = await checkCluster(four);
  assert.deepEqual(after.problems, []);
  assert.deepEqual(
    after.shards.map((s) => s.slots),
    [4096, 4096, 4096, 4096],
  );
  await redisCliCheck(four.shards[0]!.master);
  assert.deepEqual(await wrongKeys(client, KEYS), []);
  const hot = await Promise.all(Array.from({ length: HOT_KEYS }, (_, i) => client.get(`{${tag}}:${i}`)));
  assert.deepEqual(
    hot.flatMap((v, i) => (v === `hot-${i}` ? [] : [i])),
    [],
  );
});

test("the dry-run plan is exactly what the run then moves", async (t) => {
  const nodes = await startEmptyNodes(t, 4);
  const three = topologyOf(nodes, 3, 0);
  const four = topologyOf(nodes, 4, 0);
  await applyTopology(three);
  await writeKeys(clusterClient(t, three), 3_000);
  await addShard(four, "shard-3");

  const dry = await runCli(["rebalance", "--topology", JSON.stringify(four), "--dry-run", "--json"]);
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as RebalancePlan;
  assert.equal(plan.moves.length, 4096);
  assert.equal(
    plan.totals.keys,
    plan.moves.reduce((n, m) => n + m.keys, 0),
  );
  assert.ok(plan.totals.keys > 500 && plan.totals.bytes > plan.totals.keys * 10, JSON.stringify(plan.totals));

  const human = await runCli(["rebalance", "--topology", JSON.stringify(four), "--dry-run"]);
  assert.match(human.stdout, /^slots\s+count\s+from\s+to\s+keys\s+bytes$/m);
  assert.match(human.stdout, /shard-0\s+shard-3/);
  assert.match(human.stdout, /total: 4096 slots/);

  const { moved } = await rebalanceCluster(four);
  const key = (m: { slot: number; from: string; to: string }) => `${m.slot}:${m.from}>${m.to}`;
  assert.deepEqual(moved.map(key).sort(), plan.moves.map(key).sort());
});
