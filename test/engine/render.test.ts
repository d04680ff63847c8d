/**
 * `pulumi up` of the staging and prod stacks with the Kubernetes provider's
 * `renderYamlToDirectory`: the engine runs every step (and the hooks) and the provider writes the
 * manifests it would apply, which must pass the official schema (kubernetes-models). Then staging
 * goes 3 -> 5 -> 3 shards and the engine's own event stream says what it did, in its order: in
 * render mode the Job is never awaited, so the shrink's deletes are refused (no proof of a drain).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import {
  createWorkspace,
  stepEvents,
  urnName,
  urnType,
  type PulumiResult,
  type StepEvent,
  type Workspace,
} from "./support/engine.ts";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}
type ModelClass = new (data: object) => { validate(): void };

/** Every object of every YAML file the provider rendered under `dir`. */
function readManifests(dir: string): Manifest[] {
  const objects: Manifest[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".yaml"))
        for (const doc of parseAllDocuments(readFileSync(path, "utf8")))
          if (doc.contents) objects.push(doc.toJS() as Manifest);
    }
  };
  walk(dir);
  return objects;
}

async function validate(manifest: Manifest): Promise<void> {
  const [group, version] = manifest.apiVersion.includes("/")
    ? manifest.apiVersion.split("/")
    : [undefined, manifest.apiVersion];
  const module = (await import(
    group
      ? `kubernetes-models/${group}/${version}/${manifest.kind}`
      : `kubernetes-models/${version}/${manifest.kind}`
  )) as Record<string, ModelClass>;
  try {
    new module[manifest.kind]!(manifest).validate();
  } catch (err) {
    throw new Error(`${manifest.kind} ${manifest.metadata.name}: ${(err as Error).message}`);
  }
}

function kinds(manifests: Manifest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of manifests) counts[m.kind] = (counts[m.kind] ?? 0) + 1;
  return counts;
}

function up(ws: Workspace): StepEvent[] {
  return stepEvents(ws.pulumiOk(["up", "--yes", "--skip-preview", "--json", "--stack", ws.stack]).stdout);
}

/** The ops the engine ran on each resource (by name), in order, skipping the stack and providers. */
function opsByName(events: StepEvent[]): Map<string, string[]> {
  const ops = new Map<string, string[]>();
  for (const e of events) {
    if (e.phase !== "pre") continue;
    const type = urnType(e.urn);
    if (type === "pulumi:pulumi:Stack" || type.startsWith("pulumi:providers:")) continue;
    const key = `${type} ${urnName(e.urn)}`;
    ops.set(key, [...(ops.get(key) ?? []), e.op]);
  }
  return ops;
}

describe("prod rendered by pulumi up", () => {
  let ws: Workspace;
  let manifests: Manifest[];
  before(() => {
    ws = createWorkspace("prod");
    const out = join(ws.dir, "manifests");
    ws.setConfig({ "kubernetes:renderYamlToDirectory": out });
    up(ws);
    manifests = readManifests(out);
  });
  after(() => ws?.dispose());

  test("writes one manifest per Kubernetes object, each valid against the official schema", async () => {
    assert.deepEqual(kinds(manifests), {
      Secret: 1 + 6 + 1,
      Service: 6 + 1,
      StatefulSet: 6,
      PodDisruptionBudget: 6 + 1,
      Job: 1,
      Deployment: 1,
    });
    for (const m of manifests) await validate(m);
    assert.ok(manifests.every((m) => m.metadata.namespace === "redis"));
  });
});

describe("staging rendered by pulumi up, then 3 -> 5 -> 3 shards", () => {
  let ws: Workspace;
  let out: string;
  let first: StepEvent[];
  let grow: StepEvent[];
  let shrink: PulumiResult;
  let shrinkEvents: StepEvent[];
  let manifestsAtThree: Manifest[];
  let manifestsAtFive: Manifest[];
  before(() => {
    ws = createWorkspace("staging");
    out = join(ws.dir, "manifests");
    ws.setConfig({ "kubernetes:renderYamlToDirectory": out });
    first = up(ws);
    manifestsAtThree = readManifests(out);
    ws.setConfig({ shards: 5 });
    grow = up(ws);
    manifestsAtFive = readManifests(out);
    ws.setConfig({ shards: 3 });
    shrink = ws.pulumi(["up", "--yes", "--skip-preview", "--json", "--stack", ws.stack]);
    shrinkEvents = stepEvents(shrink.stdout);
  });
  after(() => ws?.dispose());

  test("the first up creates every object and renders valid manifests", async () => {
    for (const [key, ops] of opsByName(first)) assert.deepEqual(ops, ["create"], key);
    assert.equal(manifestsAtThree.length, 1 + 3 * 4 + 5 + 3);
    for (const m of manifestsAtThree) await validate(m);
  });

  test("3 -> 5: shards 0-2 and the proxies stay as they are; shard-3 and shard-4 are created", () => {
    const ops = opsByName(grow);
    for (const [key, list] of ops) {
      const name = key.slice(key.indexOf(" ") + 1);
      if (/^redis-shard-[34]/.test(name)) assert.deepEqual(list, ["create"], key);
      else if (/^redis-(shard-[012]|proxy)/.test(name)) assert.deepEqual(list, ["same"], key);
    }
    const created = [...ops].filter(([, list]) => list.includes("create")).map(([key]) => key);
    assert.deepEqual(created.filter((k) => k.startsWith("distributed-redis:index:RedisShard")).sort(), [
      "distributed-redis:index:RedisShard redis-shard-3",
      "distributed-redis:index:RedisShard redis-shard-4",
    ]);
    assert.deepEqual(ops.get("kubernetes:apps/v1:StatefulSet redis-shard-0"), ["same"]);
    assert.deepEqual(ops.get("kubernetes:apps/v1:Deployment redis-proxy"), ["same"]);
    assert.equal(kinds(manifestsAtFive)["StatefulSet"], 5);
  });

  test("3 -> 5: the migration Job is replaced (so it runs again), nothing is deleted", () => {
    // Auto-named, so replaced create-before-delete: the new run exists before the old goes.
    assert.deepEqual(opsByName(grow).get("kubernetes:batch/v1:Job redis-migration-run"), [
      "create-replacement",
      "replace",
      "delete-replaced",
    ]);
    assert.deepEqual(
      grow.filter((e) => e.phase === "pre" && e.op === "delete").map((e) => e.urn),
      [],
    );
  });

  test("5 -> 3: the Job runs again first, and the shards' beforeDelete hooks refuse to delete shard-3 and shard-4, since a Job rendered and not awaited proves no drain", () => {
    const ops = opsByName(shrinkEvents);
    for (const [key, list] of ops) {
      const name = key.slice(key.indexOf(" ") + 1);
      if (/^redis-(shard-[012]|proxy)/.test(name)) assert.deepEqual(list, ["same"], key);
    }
    const isJob = (e: StepEvent) => urnName(e.urn) === "redis-migration-run";
    assert.ok(
      shrinkEvents.some(
        (e) => isJob(e) && e.phase === "outputs" && (e.op === "create-replacement" || e.op === "replace"),
      ),
      "the Job is re-created",
    );
    assert.notEqual(shrink.status, 0, "the deletes are refused, so the update fails");
    assert.match(
      shrink.stdout,
      /refusing to delete redis-shard-[34]\S*: shard-[34] is no longer in the topology and the slot migration Job was not awaited/,
    );
    assert.deepEqual(
      shrinkEvents
        .filter((e) => e.phase === "outputs" && e.op === "delete" && /^redis-shard-[34]/.test(urnName(e.urn)))
        .map((e) => e.urn),
      [],
      "no object of shard-3 or shard-4 was deleted",
    );
  });
});

describe("hooks under the real engine", () => {
  let ws: Workspace;
  let preview: string;
  let refused: PulumiResult;
  let refusedEvents: StepEvent[];
  before(() => {
    ws = createWorkspace("staging");
    ws.setConfig({ "kubernetes:renderYamlToDirectory": join(ws.dir, "manifests"), shards: 7 });
    preview = ws.pulumiOk(["preview", "--stack", "staging"]).stdout;
    up(ws);
    ws.setConfig({ shards: 3 });
    refused = ws.pulumi(["up", "--yes", "--skip-preview", "--json", "--stack", "staging"]);
    refusedEvents = stepEvents(refused.stdout);
  });
  after(() => ws?.dispose());

  test("the topology guard (beforeCreate, onDryRun) logs the planned step at preview", () => {
    assert.match(preview, /slot migration: create the cluster: 7 shards/);
  });

  test("an unsafe shrink (7 -> 3) is refused by the beforeUpdate hook with its message, before any delete", () => {
    assert.notEqual(refused.status, 0);
    assert.match(refused.stdout, /refusing to remove 4 of 7 shards at once/);
    assert.deepEqual(
      refusedEvents.filter((e) => e.op === "delete" || e.op.includes("replace")).map((e) => e.urn),
      [],
    );
  });
});
