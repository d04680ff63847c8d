/**
 * `pulumi up --skip-preview` (no preview, so no preview-time guard) of the staging stack, rendered
 * by the Kubernetes provider's `renderYamlToDirectory`: turning shardTls on for a running plain
 * cluster is refused by the ChangeGuard's beforeUpdate hook before the engine takes any step on a
 * shard, where it once reached the SlotMigration's guard only after rolling the shards (on a real
 * cluster: the first node replaced, TLS-only, never healthy). Then the same config without shardTls
 * deploys again with every shard untouched: the refusal recorded nothing. The shared resources
 * wait for the guard as the shards do: the refused run does not create the shard Certificate.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  createWorkspace,
  stepEvents,
  urnName,
  urnType,
  type PulumiResult,
  type StepEvent,
  type Workspace,
} from "./support/engine.ts";

const up = (ws: Workspace): PulumiResult =>
  ws.pulumi(["up", "--yes", "--skip-preview", "--json", "--stack", ws.stack]);
// The shards' resources.
const isShard = (e: StepEvent) => /^redis-shard-\d/.test(urnName(e.urn));
const isGuard = (e: StepEvent) =>
  urnType(e.urn) === "pulumi:index:Stash" && urnName(e.urn) === "redis-change-guard";

describe("shardTls turned on for a running plain cluster, with pulumi up --skip-preview", () => {
  let ws: Workspace;
  let first: StepEvent[];
  let refused: PulumiResult;
  let refusedEvents: StepEvent[];
  let again: StepEvent[];
  before(() => {
    ws = createWorkspace("staging");
    ws.setConfig({ "kubernetes:renderYamlToDirectory": join(ws.dir, "manifests") });
    const deployed = up(ws);
    assert.equal(deployed.status, 0, deployed.stdout.slice(-5000) + deployed.stderr.slice(-5000));
    first = stepEvents(deployed.stdout);
    ws.setConfig({ shardTlsIssuer: "internal-ca", shardTlsIssuerKind: "ClusterIssuer" });
    refused = up(ws);
    refusedEvents = stepEvents(refused.stdout);
    for (const key of ["shardTlsIssuer", "shardTlsIssuerKind"])
      ws.pulumiOk(["config", "rm", key, "--stack", ws.stack]);
    const redeployed = up(ws);
    assert.equal(redeployed.status, 0, redeployed.stdout.slice(-5000) + redeployed.stderr.slice(-5000));
    again = stepEvents(redeployed.stdout);
  });
  after(() => ws?.dispose());

  test("the first deployment creates the guard", () => {
    assert.ok(first.some((e) => isGuard(e) && e.phase === "outputs" && e.op === "create"));
  });

  test("the update is refused with the guard's reason", () => {
    assert.notEqual(refused.status, 0);
    assert.match(
      refused.stdout,
      /hook \\?"redis-change-guard-hook\\?" failed: shardTls cannot be turned on for a running cluster/,
    );
    assert.ok(
      refusedEvents.some((e) => isGuard(e) && e.phase === "failed"),
      "the guard's update failed",
    );
  });

  test("before the engine took any step on a shard: none was updated, replaced or even compared", () => {
    assert.deepEqual(
      refusedEvents.filter(isShard).map((e) => `${e.phase} ${e.op} ${urnName(e.urn)}`),
      [],
    );
  });

  test("nor on a shared resource: the shard-TLS Certificate is not created, the auth Secret not compared", () => {
    const shared = refusedEvents.filter((e) => /^redis-(shard-tls|auth)$/.test(urnName(e.urn)));
    assert.deepEqual(
      shared.map((e) => `${e.phase} ${e.op} ${urnName(e.urn)}`),
      [],
    );
  });

  test("without shardTls again, the next deployment goes through and leaves every shard as it is", () => {
    const shardOps = again.filter((e) => isShard(e) && e.phase === "pre").map((e) => e.op);
    assert.ok(shardOps.length > 0);
    assert.deepEqual([...new Set(shardOps)], ["same"]);
  });
});
