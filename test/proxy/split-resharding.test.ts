import { test } from "node:test";
import assert from "node:assert/strict";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { startCluster, until } from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { SlotMover } from "../support/slot-mover.ts";
import { replicasCaughtUp } from "../support/replication.ts";

const KEYS = 300;
const CHUNK = 100;

test("split MSET, MGET and EXISTS stay exact while the slots of their keys migrate: refused parts go again alone", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, { retryBudgetMs: 20_000 }, { busyProxy: true });
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  const mover = await SlotMover.create(cluster);
  const keys = Array.from({ length: KEYS }, (_, i) => `k:${i}`);
  // Each command of CHUNK keys spans ~CHUNK slots, so every node gets one request carrying
  // dozens of parts; the moves below make some of those parts meet ASK, TRYAGAIN and MOVED.
  const slots = [...new Set(keys.map((k) => slotOf(k)))].sort((a, b) => a - b);
  assert.ok(slots.length > 250);

  let moving = true;
  let movedSlots = 0;
  const moves = (async () => {
    try {
      for (let g = 0; g < slots.length; g += 10) {
        const group = slots.slice(g, g + 10).map((slot) => {
          const from = SlotMover.initialOwner(slot);
          return { slot, from, to: (from + 1) % 3 };
        });
        for (const m of group) await mover.start(m.slot, m.from, m.to);
        await new Promise((resolve) => setTimeout(resolve, 20)); // traffic meets them half-moved
        for (const m of group) await mover.finish(m.slot, m.from, m.to);
        movedSlots += group.length;
      }
    } finally {
      moving = false;
    }
  })();

  let round = 0;
  let roundsWhileMoving = 0;
  try {
    const deadline = Date.now() + 120_000;
    while (moving && Date.now() < deadline) {
      round++;
      const value = `v${round}`;
      for (let c = 0; c < KEYS; c += CHUNK) {
        const chunk = keys.slice(c, c + CHUNK);
        const [set, get, exists] = await client.pipeline([
          ["MSET", ...chunk.flatMap((k) => [k, value])],
          ["MGET", ...chunk],
          ["EXISTS", ...chunk],
        ]);
        assert.equal(set!.toString(), "+OK\r\n", `round ${round}: MSET answered ${set!.toString()}`);
        const expected = `*${chunk.length}\r\n${chunk.map(() => `$${value.length}\r\n${value}\r\n`).join("")}`;
        assert.equal(get!.toString(), expected, `round ${round}: MGET did not read what MSET wrote`);
        assert.equal(exists!.toString(), `:${chunk.length}\r\n`, `round ${round}: EXISTS`);
      }
      if (moving) roundsWhileMoving++;
    }
  } finally {
    moving = false;
    await moves;
  }
  assert.equal(movedSlots, slots.length, "every slot of the keys moved");
  assert.ok(roundsWhileMoving >= 5, `only ${roundsWhileMoving} rounds ran while slots moved`);
});

test("split MGET stays exact across a master's failover (its parts go again); split MSET says OK or that its fate is unknown", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 1 });
  const proxy = await startTestProxy(t, cluster, { retryBudgetMs: 20_000 }, { busyProxy: true });
  const keys = Array.from({ length: KEYS }, (_, i) => `f:${i}`);
  const chunks = Array.from({ length: KEYS / CHUNK }, (_, c) => keys.slice(c * CHUNK, (c + 1) * CHUNK));
  const setup = await RawClient.connect(proxy.port);
  for (const chunk of chunks) await setup.command("MSET", ...chunk.flatMap((k) => [k, "v"]));
  setup.close();
  // The setup's keys reach the replica that takes over before its master dies: a key it never got
  // would read as missing after the failover, a loss of asynchronous replication, not the proxy's
  // (a clean-clone run under load killed the master while its replica was behind).
  await replicasCaughtUp(cluster.connect(cluster.masters[0]!), { replicas: 1 });

  let stop = false;
  const wrong: string[] = [];
  const msetOutcomes = new Map<string, number>();
  let reads = 0;
  const clients = await Promise.all(Array.from({ length: 4 }, () => RawClient.connect(proxy.port)));
  t.after(() => clients.forEach((c) => c.close()));
  const load = Promise.all(
    clients.map(async (client, c) => {
      for (let i = 0; !stop; i++) {
        const chunk = chunks[(c + i) % chunks.length]!;
        const [set, get] = await client.pipeline([
          ["MSET", ...chunk.flatMap((k) => [k, "v"])], // the same value: reads stay predictable
          ["MGET", ...chunk],
        ]);
        const outcome = set!.toString().replace(/\d+/g, "N").slice(0, 100);
        msetOutcomes.set(outcome, (msetOutcomes.get(outcome) ?? 0) + 1);
        const expected = `*${chunk.length}\r\n${"$1\r\nv\r\n".repeat(chunk.length)}`;
        if (get!.toString() !== expected) wrong.push(get!.toString().slice(0, 200));
        reads++;
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 300));
  await cluster.masters[0]!.kill();
  const heir = cluster.connect(cluster.replicas[0]!);
  await until(async () => ((await heir.call("ROLE")) as string[])[0] === "master", 30_000, "promotion", 20);
  const readsAtPromotion = reads;
  await until(() => reads > readsAtPromotion + 20, 20_000, "reads to go on after the promotion", 20);
  stop = true;
  await load;

  const report = [...msetOutcomes].map(([o, n]) => `${n} x ${o.trim()}`).join("; ");
  t.diagnostic(`MSET outcomes: ${report}`);
  assert.deepEqual(wrong, [], "every MGET read exactly what was written");
  for (const outcome of msetOutcomes.keys()) {
    assert.ok(
      outcome === "+OK\r\n" ||
        /^-ERR MSET failed on slot N \(parts on other slots may have been applied\): /.test(outcome),
      `unexpected MSET reply: ${outcome}`,
    );
  }
});
