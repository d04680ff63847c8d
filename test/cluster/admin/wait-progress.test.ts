/**
 * Waiting for the cluster to converge is bounded by progress, not by the whole wait: on a loaded
 * machine gossip is slow but steady, and a wait that stops at a fixed bound fails a change that
 * was about to complete.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import { withPool } from "../../../src/cluster/admin/node-pool.ts";
import type { ProgressEvent } from "../../../src/cluster/admin/options.ts";
import { waitForAgreement } from "../../../src/cluster/admin/wait.ts";
import { startEmptyNodes, topologyOf } from "./cluster-fixture.ts";
import { proxyClient } from "../../support/proxy.ts";

const BOUND_MS = 6_000;
const STEP_MS = 3_000;

test("waiting for agreement goes on while nodes keep joining, past the bound on a wait without progress, and reports it", async (t) => {
  const nodes = await startEmptyNodes(t, 7);
  await applyTopology(topologyOf(nodes.slice(0, 3), 3, 0));
  const seven = topologyOf(nodes, 7, 0);
  const anchor = proxyClient(t, nodes[0]!.port, { maxRetriesPerRequest: 1 });
  // One node meets the cluster every STEP_MS: 4 x STEP_MS in all, longer than BOUND_MS.
  const joining = (async () => {
    for (const node of nodes.slice(3)) {
      const [, busPort] = (await proxyClient(t, node.port).config("GET", "cluster-port")) as [string, string];
      await anchor.call("CLUSTER", "MEET", "127.0.0.1", node.port, busPort);
      await new Promise((r) => setTimeout(r, STEP_MS));
    }
  })();
  const events: ProgressEvent[] = [];
  const started = Date.now();
  const state = await withPool({}, (pool) =>
    waitForAgreement(pool, seven, {
      timeoutMs: BOUND_MS,
      awaited: ["not-joined"],
      onProgress: (e) => events.push(e),
    }),
  ).catch((err: Error) => err);
  // The meetings end before the nodes are stopped, whatever the wait did.
  await joining;
  if (state instanceof Error) throw state;
  assert.ok(Date.now() - started > BOUND_MS, "the wait lasted longer than the bound");
  assert.equal(state.nodes.filter((n) => n.reachable).length, 7);
  assert.ok(
    events.some(
      (e) =>
        e.type === "step" && /waiting for the cluster to converge \(\d+ s\): \d+ problem/.test(e.message),
    ),
    JSON.stringify(events),
  );
});
