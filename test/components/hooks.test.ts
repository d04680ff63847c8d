/**
 * The resource hooks' logic, called as the engine calls them (mocks never run hooks). The inputs
 * are what SlotMigration registers and what the Docker container / Kubernetes Job report.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type * as pulumi from "@pulumi/pulumi";
import { assertMigrationSucceeded, guardTopologyChange } from "../../components/hooks.ts";
import { DredisError } from "../../src/errors.ts";
import { clusterSpecSchema } from "../../components/plan/spec.ts";
import { planCluster } from "../../components/plan/topology.ts";

const topologyJson = (shards: number) =>
  JSON.stringify(planCluster("redis", clusterSpecSchema.parse({ platform: "docker", shards })).topology);
const hookArgs = (extra: Partial<pulumi.ResourceHookArgs>): pulumi.ResourceHookArgs => ({
  urn: "urn:pulumi:test::distributed-redis::distributed-redis:index:SlotMigration::redis-migration",
  id: "",
  name: "redis-migration",
  type: "distributed-redis:index:SlotMigration",
  ...extra,
});

test("the guard lets a first deploy, a growth and a safe shrink through", () => {
  guardTopologyChange(hookArgs({ newInputs: { topology: topologyJson(3) } }));
  guardTopologyChange(
    hookArgs({ oldInputs: { topology: topologyJson(3) }, newInputs: { topology: topologyJson(5) } }),
  );
  guardTopologyChange(
    hookArgs({ oldInputs: { topology: topologyJson(6) }, newInputs: { topology: topologyJson(3) } }),
  );
});

test("the guard refuses removing more than half the shards, with the reason", () => {
  assert.throws(
    () =>
      guardTopologyChange(
        hookArgs({ oldInputs: { topology: topologyJson(7) }, newInputs: { topology: topologyJson(3) } }),
      ),
    /refusing to remove 4 of 7 shards at once/,
  );
});

test("the guard refuses a topology below 3 shards even if the program was bypassed", () => {
  const two = JSON.stringify({ shards: JSON.parse(topologyJson(3)).shards.slice(0, 2) });
  assert.throws(
    () =>
      guardTopologyChange(
        hookArgs({ oldInputs: { topology: topologyJson(3) }, newInputs: { topology: two } }),
      ),
    /refusing 2 shards/,
  );
});

test("a Docker run that exited non-zero fails the deployment with its logs", () => {
  assertMigrationSucceeded(hookArgs({ newOutputs: { exitCode: 0, containerLogs: "cluster ok" } }));
  assert.throws(
    () =>
      assertMigrationSucceeded(
        hookArgs({ newOutputs: { exitCode: 1, containerLogs: "slot 5461: MIGRATE timeout" } }),
      ),
    { message: "dredis cluster apply failed (exit 1):\nslot 5461: MIGRATE timeout" },
  );
});

test("a Kubernetes Job that did not succeed fails the deployment", () => {
  assertMigrationSucceeded(hookArgs({ newOutputs: { status: { succeeded: 1 } } }));
  assert.throws(
    () => assertMigrationSucceeded(hookArgs({ newOutputs: { status: { failed: 3 } } })),
    /failed pods: 3/,
  );
});

test("the guard refuses a new password without previousPassword, naming it, and lets the rotation through", () => {
  const topology = topologyJson(3);
  const old = { topology, passwordHash: "digest-of-old" };
  assert.throws(
    () =>
      guardTopologyChange(
        hookArgs({ oldInputs: old, newInputs: { topology, passwordHash: "digest-of-new" } }),
      ),
    (err: unknown) =>
      err instanceof DredisError &&
      err.code === "E_UNSAFE_CHANGE" &&
      err.message ===
        "the password changed without previousPassword: the nodes would keep the old one while the proxies " +
          "use the new. Set previousPassword to the password the cluster has now, keep the new password, and " +
          "run pulumi up (the nodes accept both until every proxy uses the new one, then the old one is " +
          "dropped); remove previousPassword in the next deployment",
  );
  assert.throws(
    () =>
      guardTopologyChange(
        hookArgs({
          oldInputs: old,
          newInputs: { topology, passwordHash: "digest-of-new", previousPasswordHash: "digest-of-other" },
        }),
      ),
    /previousPassword is not the password the cluster has now/,
  );
  // The rotation, the first deploy, and a deployment that keeps the password.
  guardTopologyChange(
    hookArgs({
      oldInputs: old,
      newInputs: { topology, passwordHash: "digest-of-new", previousPasswordHash: "digest-of-old" },
    }),
  );
  guardTopologyChange(hookArgs({ newInputs: { topology, passwordHash: "digest-of-new" } }));
  guardTopologyChange(hookArgs({ oldInputs: old, newInputs: old }));
});

test("the guard refuses turning shardTls on or off for a running cluster, saying why and what to do", () => {
  const topology = topologyJson(3);
  const plain = { topology, passwordHash: "digest", shardTls: false };
  const tls = { topology, passwordHash: "digest", shardTls: true };
  const refused = (oldInputs: Record<string, unknown>, newInputs: Record<string, unknown>) => {
    try {
      guardTopologyChange(hookArgs({ oldInputs, newInputs }));
    } catch (err) {
      assert.ok(err instanceof DredisError);
      assert.equal(err.code, "E_UNSAFE_CHANGE");
      return err.message;
    }
    return assert.fail("not refused");
  };
  assert.equal(
    refused(plain, tls),
    "shardTls cannot be turned on for a running cluster: its nodes serve plain connections, and a " +
      "node replaced to serve TLS only could not join them (there is no mixed mode), so the roll would " +
      "stop at its health check. Remove shardTls to keep this cluster as it is, or deploy a new cluster " +
      "(another stack or name) with shardTls and move the data to it",
  );
  assert.equal(
    refused(tls, plain),
    "shardTls cannot be removed from a running cluster: its nodes serve TLS only, and a node replaced " +
      "to serve plain connections could not join them (there is no mixed mode), so the roll would stop " +
      "at its health check. Set shardTls back to keep this cluster as it is, or deploy a new cluster " +
      "(another stack or name) without shardTls and move the data to it",
  );
  // Removing shardTls from the inputs altogether is removing it.
  const { shardTls: _, ...unset } = plain;
  assert.match(refused(tls, unset), /^shardTls cannot be removed from a running cluster/);
  // A first deploy either way, no change, and a cluster deployed before shardTls was registered.
  for (const inputs of [plain, tls]) {
    guardTopologyChange(hookArgs({ newInputs: inputs }));
    guardTopologyChange(hookArgs({ oldInputs: inputs, newInputs: inputs }));
    guardTopologyChange(hookArgs({ oldInputs: unset, newInputs: inputs }));
  }
});
