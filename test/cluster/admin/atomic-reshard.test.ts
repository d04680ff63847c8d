import { test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import type { ProgressEvent } from "../../../src/cluster/admin/options.ts";
import { redisCliCheck, topologyOf } from "./cluster-fixture.ts";
import { proxyClient } from "../../support/proxy.ts";
import {
  errorStat,
  loadBase,
  lostWrites,
  startEmptyValkeyNodes,
  startProxyOver,
  startTraffic,
} from "./atomic-fixture.ts";

const BASE = 20_000;

test("3 -> 5 -> 3 Valkey shards with atomic slot migration under a pipelined writer, reader and scanner through the proxy: no client error, no lost write, redis-cli check passes", async (t) => {
  const nodes = await startEmptyValkeyNodes(t, 5);
  const three = topologyOf(nodes, 3, 0);
  const five = topologyOf(nodes, 5, 0);
  await applyTopology(three);
  const proxy = await startProxyOver(t, [three.shards[0]!.master]);
  const client = proxyClient(t, proxy.port);
  await loadBase(client, BASE);
  const admin = nodes.map((n) => {
    const c = new Redis({ host: n.host, port: n.port, lazyConnect: false });
    t.after(() => void c.disconnect());
    return c;
  });

  const traffic = startTraffic(t, proxy.port, BASE);
  const events: ProgressEvent[] = [];
  const onProgress = (e: ProgressEvent) => void events.push(e);

  // Small jobs: many handoffs (write pauses, MOVED bursts) while the clients run.
  const grown = await applyTopology(five, { onProgress, slotMigration: "atomic", atomicSlotsPerBatch: 128 });
  assert.equal(grown.plan.rebalance.method, "atomic");
  // The two new shards get about 2/5 of the slots.
  assert.ok(grown.moved.length >= 6550 && grown.moved.length <= 6556, `moved ${grown.moved.length}`);
  await redisCliCheck(five.shards[0]!.master);

  const shrunk = await applyTopology(three, {
    onProgress,
    slotMigration: "atomic",
    atomicSlotsPerBatch: 128,
  });
  assert.equal(shrunk.plan.rebalance.method, "atomic");
  await redisCliCheck(three.shards[0]!.master);
  const result = await traffic.stop();

  assert.deepEqual(result.errors, [], `client-visible errors (${result.errors.length})`);
  assert.ok(result.writes > 500 && result.reads > 500, `writes ${result.writes}, reads ${result.reads}`);
  assert.ok(result.scans >= 1, "no full SCAN completed during the migrations");
  assert.deepEqual(result.scanMissed.slice(0, 10), [], "a full SCAN missed base keys");
  assert.deepEqual((await lostWrites(client, result.acked, BASE)).slice(0, 10), []);
  // Atomic migration hands slots over without ASK; the legacy path would have sent some.
  assert.equal(await errorStat(admin, "ASK"), 0);
  const states = new Set(events.flatMap((e) => (e.type === "atomic-job" ? [e.state] : [])));
  assert.ok(states.has("success"), `job states seen: ${[...states].join(", ")}`);
  assert.ok(
    events.some((e) => e.type === "bytes-moved" && e.bytesSent > 0),
    "no byte progress reported",
  );
  // Draining moves exactly the slots the two shards held.
  assert.equal(shrunk.moved.length, grown.moved.length);
});
