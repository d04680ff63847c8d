import { test } from "node:test";
import assert from "node:assert/strict";
import {
  clusterClient,
  redisCliCheck,
  runCli,
  startEmptyNodes,
  topologyOf,
  writeKeys,
  wrongKeys,
} from "./cluster-fixture.ts";

test("bad input is refused with the exact problem: invalid topology, unknown shard, bad throttle", async () => {
  const invalid = await runCli(["check", "--topology", '{"shards":[{"name":"Shard 0","master":"nohost"}]}']);
  assert.equal(invalid.code, 1);
  assert.match(
    invalid.stderr,
    /dredis: invalid topology:\n {2}- shards\.0\.name: expected lower-case letters, digits and '-'/,
  );
  assert.match(invalid.stderr, /shards\.0\.master: expected "host:port"/);

  const topology = JSON.stringify({ shards: [{ name: "shard-0", master: "127.0.0.1:1" }] });
  const unknown = await runCli(["remove-shard", "--topology", topology, "--shard", "shard-9"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /shard "shard-9" is not in the topology \(it has: shard-0\)/);

  const throttle = await runCli(["rebalance", "--topology", topology, "--max-keys-per-second", "fast"]);
  assert.notEqual(throttle.code, 0);
  assert.match(throttle.stderr, /expected a positive integer, got "fast"/);
});

test("add-shard then rebalance, then remove-shard, through the CLI, keep every key", async (t) => {
  const nodes = await startEmptyNodes(t, 6);
  const two = topologyOf(nodes, 2);
  const three = JSON.stringify(topologyOf(nodes, 3));
  assert.equal((await runCli(["create", "--topology", JSON.stringify(two)])).code, 0);
  const client = clusterClient(t, two);
  await writeKeys(client, 5_000);

  const added = await runCli(["add-shard", "--topology", three, "--shard", "shard-2"]);
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, new RegExp(`joined: ${nodes[4]!.address}, ${nodes[5]!.address}`));
  const rebalanced = await runCli(["rebalance", "--topology", three]);
  assert.equal(rebalanced.code, 0, rebalanced.stderr);
  assert.match(rebalanced.stdout, /total: 5461 slots/);
  const checked = await runCli(["check", "--topology", three]);
  assert.equal(checked.code, 0, checked.stdout);
  assert.match(checked.stdout, /ok: all slots covered, all nodes agree/);

  const removed = await runCli(["remove-shard", "--topology", three, "--shard", "shard-0", "--json"]);
  assert.equal(removed.code, 0, removed.stderr);
  const { plan } = JSON.parse(removed.stdout) as { plan: { remove: string[] } };
  assert.deepEqual(plan.remove.sort(), [nodes[0]!.address, nodes[1]!.address].sort());
  await redisCliCheck(nodes[2]!.address);
  assert.deepEqual(await wrongKeys(client, 5_000), []);
  const again = await runCli([
    "apply",
    "--topology",
    JSON.stringify({ shards: topologyOf(nodes, 3).shards.slice(1) }),
  ]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /the cluster already matches the topology/);
});
