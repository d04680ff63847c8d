import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { parseMemorySize } from "../../../src/cluster/admin/memory.ts";
import { clusterClient, runCli, startEmptyNodes, topologyOf, writeKeys } from "./cluster-fixture.ts";

test("memory sizes parse as redis.conf reads them, and nonsense is named", () => {
  assert.equal(parseMemorySize("268435456"), 268435456);
  assert.equal(parseMemorySize("256mb"), 256 * 1024 * 1024);
  assert.equal(parseMemorySize("1GB"), 1024 ** 3);
  assert.equal(parseMemorySize("512k"), 512 * 1024);
  assert.throws(
    () => parseMemorySize("lots"),
    /expected a memory size like "256mb", "1gb" or a number of bytes, got "lots"/,
  );
});

test("apply --maxmemory resizes every node in place and rewrites its config, but never below what a node holds", async (t) => {
  const nodes = await startEmptyNodes(t, 6);
  const topology = JSON.stringify(topologyOf(nodes, 3, 1));
  assert.equal((await runCli(["apply", "--topology", topology])).code, 0);
  const client = clusterClient(t, JSON.parse(topology));
  await writeKeys(client, 3000);

  const refused = await runCli(["apply", "--topology", topology, "--maxmemory", "1mb"]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(
    refused.stderr,
    /refusing to resize memory: it would be below what shards already hold:\n {2}- 127\.0\.0\.1:\d+ uses [\d.]+ MB, more than the new maxmemory 1\.0 MB/,
  );

  const bad = await runCli(["apply", "--topology", topology, "--maxmemory", "plenty"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /expected a memory size like "256mb"/);

  const resized = await runCli(["apply", "--topology", topology, "--maxmemory", "256mb"]);
  assert.equal(resized.code, 0, resized.stderr);
  for (const node of nodes) {
    const direct = new Redis({ host: node.host, port: node.port });
    t.after(() => direct.disconnect());
    assert.deepEqual(await direct.call("CONFIG", "GET", "maxmemory"), [
      "maxmemory",
      String(256 * 1024 * 1024),
    ]);
    assert.match(
      await readFile(join(node.dir, "redis.conf"), "utf8"),
      /^maxmemory 256mb$/m,
      "CONFIG REWRITE kept it",
    );
  }
});
