import { test } from "node:test";
import { Redis } from "ioredis";
import assert from "node:assert/strict";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import { checkCluster } from "../../../src/cluster/admin/check.ts";
import { clusterClient, startEmptyNodes, topologyOf, writeKeys, wrongKeys } from "./cluster-fixture.ts";

test("with a password every node and every MIGRATE authenticates; without it the gate says NOAUTH", async (t) => {
  const password = "s3cret";
  const nodes = await startEmptyNodes(t, 3);
  // Set after start: RedisServer's readiness probe speaks PING without AUTH.
  for (const node of nodes) {
    const admin = new Redis({ host: node.host, port: node.port });
    await admin.config("SET", "masterauth", password);
    await admin.config("SET", "requirepass", password);
    admin.disconnect();
  }
  const two = topologyOf(nodes, 2, 0);
  const three = topologyOf(nodes, 3, 0);
  await applyTopology(two, { password });
  const client = clusterClient(t, two, password);
  await writeKeys(client, 2_000);

  const refused = await applyTopology(three).then(
    () => assert.fail("apply without the password should be refused"),
    (err: Error) => err,
  );
  assert.match(refused.message, new RegExp(`node ${nodes[0]!.address} \\(shard-0\\) cannot be read: NOAUTH`));

  assert.match(refused.message, /fix: set DREDIS_PASSWORD \(and DREDIS_USERNAME for an ACL user\)/);

  const { moved } = await applyTopology(three, { password });
  assert.ok(moved.length >= 5461);
  assert.deepEqual((await checkCluster(three, { password })).problems, []);
  assert.deepEqual(await wrongKeys(client, 2_000), []);
});
