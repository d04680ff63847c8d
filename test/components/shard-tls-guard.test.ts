/**
 * The shardTls guard on a cluster deployed before SlotMigration registered `shardTls`: turning it
 * on cannot be told from keeping it, so the guard warns at the preview instead of letting it
 * through silently (or refusing a cluster that already runs TLS).
 */
import assert from "node:assert/strict";
import { mock, test } from "node:test";
import type * as pulumi from "@pulumi/pulumi";
import { guardTopologyChange, shardTlsUnknownWarning } from "../../components/hooks.ts";
import { clusterSpecSchema } from "../../components/plan/spec.ts";
import { planCluster } from "../../components/plan/topology.ts";

const topology = JSON.stringify(
  planCluster("redis", clusterSpecSchema.parse({ platform: "docker", shards: 3 })).topology,
);
const hookArgs = (extra: Partial<pulumi.ResourceHookArgs>): pulumi.ResourceHookArgs => ({
  urn: "urn:pulumi:test::distributed-redis::distributed-redis:index:SlotMigration::redis-migration",
  id: "",
  name: "redis-migration",
  type: "distributed-redis:index:SlotMigration",
  ...extra,
});

/** What the guard logs as warnings (pulumi.log.warn writes to console.warn outside the engine). */
function warnings(args: pulumi.ResourceHookArgs): string[] {
  const warn = mock.method(console, "warn", () => {});
  try {
    guardTopologyChange(args);
    return warn.mock.calls.map((c) => String(c.arguments[0]));
  } finally {
    warn.mock.restore();
  }
}

const registeredBefore = { topology, passwordHash: "digest" };
const plain = { ...registeredBefore, shardTls: false };
const tls = { ...registeredBefore, shardTls: true };

test("shardTls set on a cluster deployed before shardTls was registered: not refused, but warned at the preview with what to do", () => {
  const said = warnings(hookArgs({ oldInputs: registeredBefore, newInputs: tls }));
  assert.equal(said.length, 1, said.join("\n"));
  assert.match(
    said[0]!,
    /shardTls is set, and this cluster's last deployment was made before dredis recorded/,
  );
  assert.match(said[0]!, /If the running nodes serve plain connections, do not go on/);
  assert.match(said[0]!, /If the cluster already runs with shardTls, go on/);
});

test("no such warning for a first deploy, a registered value, or no shardTls", () => {
  assert.deepEqual(warnings(hookArgs({ newInputs: tls })), []);
  assert.deepEqual(warnings(hookArgs({ oldInputs: tls, newInputs: tls })), []);
  assert.deepEqual(warnings(hookArgs({ oldInputs: plain, newInputs: plain })), []);
  assert.deepEqual(warnings(hookArgs({ oldInputs: registeredBefore, newInputs: plain })), []);
  assert.equal(shardTlsUnknownWarning(undefined, tls), undefined);
  assert.equal(shardTlsUnknownWarning(tls, tls), undefined);
});
