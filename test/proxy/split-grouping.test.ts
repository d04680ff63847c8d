/**
 * Split commands of every size answer byte for byte as a standalone Redis does: few keys split in
 * the worker, more in the busy proxy (`workerSplitMaxKeys`), and SlotGrouper finds each key's part
 * by scanning the parts so far up to 32 keys, through its slot table beyond (src/proxy/busy/key-split.ts).
 * Keys repeat and share slots (hash tags), so parts hold several keys, in the caller's order.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { startCluster, startStandalone, fileCleanup, type TestCluster } from "../support/redis.ts";
import { startTestProxy, type TestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import type { RedisServer } from "../../src/local/redis-server.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: TestProxy;
let reference: RedisServer;
let masters: Redis[];

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 0 });
  proxy = await startTestProxy(hooks, cluster, {}, { busyProxy: true });
  reference = await startStandalone(hooks);
  masters = cluster.masters.map((m) => cluster.connect(m));
});

/** n keys: mostly distinct slots, every fifth in the slot of `{t}`, every seventh a repeat. */
function keysOf(n: number, prefix: string): string[] {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 7 === 6) keys.push(keys[i - 3]!);
    else if (i % 5 === 4) keys.push(`{t}${prefix}${i}`);
    else keys.push(`${prefix}${i}`);
  }
  return keys;
}

for (const n of [2, 12, 16, 17, 32, 33, 40, 100]) {
  test(`MSET, MGET, EXISTS, DEL and UNLINK of ${n} keys answer as on Redis`, async () => {
    await Promise.all(masters.map((m) => m.flushall()));
    const viaProxy = await RawClient.connect(proxy.port);
    const direct = await RawClient.connect(reference.port);
    try {
      await direct.command("FLUSHALL");
      const keys = keysOf(n, `g${n}:`);
      const pairs = keys.flatMap((k, i) => [k, `v${i}`]);
      const half = keys.slice(0, Math.ceil(n / 2));
      const reversed = [...keys].reverse();
      const commands = [
        ["MGET", ...keys],
        ["MSET", ...pairs],
        ["MGET", ...keys, "missing"],
        // The same slots in another order: a slot's part is this command's, never an earlier one's.
        ["MGET", ...reversed],
        ["EXISTS", "missing", ...reversed],
        ["EXISTS", ...keys],
        ["DEL", ...half],
        ["MGET", ...keys],
        ["UNLINK", ...keys],
        ["EXISTS", ...keys],
      ];
      const [got, want] = await Promise.all([viaProxy.pipeline(commands), direct.pipeline(commands)]);
      got.forEach((reply, i) =>
        assert.equal(reply.toString(), want[i]!.toString(), `${commands[i]![0]} of ${n} keys`),
      );
    } finally {
      viaProxy.close();
      direct.close();
    }
  });
}
