import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster } from "../support/redis.ts";
import { startProxyHost } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

/** A process and its descendants, from /proc. */
async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  for (const task of await readdir(`/proc/${pid}/task`)) {
    const children = (await readFile(`/proc/${pid}/task/${task}/children`, "utf8")).trim();
    for (const child of children ? children.split(" ") : []) out.push(...(await processTree(Number(child))));
  }
  return out;
}

// Every node process maps 38-42 MB of node's binary into its RSS: a host of 2 workers is 3
// processes (the busy proxy a thread of the primary), which keeps it under 200 MB at idle
// (bench/README.md, Memory).
test("a host of 2 workers is 3 processes: the busy proxy is a thread of the primary, serves split commands, and leaves no socket behind", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  // workerSplitMaxKeys 0: every multi-key command across slots goes to the busy proxy.
  const host = await startProxyHost(t, cluster, { workers: 2, workerSplitMaxKeys: 0 });
  const primary = host.process.pid!;
  const tree = await processTree(primary);
  assert.equal(tree.length, 3, `primary and 2 workers, no fourth process: ${tree.join(" ")}`);
  const status = await host.status();
  assert.equal(status.busyProxy.running, true);
  assert.equal(status.busyProxy.pid, primary);

  const client = await RawClient.connect(host.port);
  t.after(() => client.close());
  const keys = Array.from({ length: 20 }, (_, i) => `thread:${i}`);
  const replies = await client.pipeline([
    ["MSET", ...keys.flatMap((k, i) => [k, String(i)])],
    ["MGET", ...keys],
  ]);
  assert.equal(replies[0]!.toString(), "+OK\r\n");
  assert.equal(
    replies[1]!.toString(),
    `*20\r\n${keys.map((_, i) => `$${String(i).length}\r\n${i}\r\n`).join("")}`,
  );

  const socket = join(tmpdir(), `dredis-busy-${primary}.sock`);
  assert.ok(existsSync(socket), "the busy proxy listens on its socket");
  host.process.kill("SIGTERM");
  assert.equal(await host.exited, 0);
  assert.ok(!existsSync(socket), "the busy proxy closed (and removed) its socket when the host stopped");
});
