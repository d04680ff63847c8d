/**
 * A worker's tracking connections to the shards (one invalidation connection per master, and the
 * tracked data connections) close once its last tracking client left, and open again when one
 * comes: counted on the shards themselves (CLIENT LIST).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster, until } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";
import { TrackingClient } from "./tracking-support.ts";

test("tracking: the shard connections of a worker's tracking clients close after the last one left, and open again for the next", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster);
  const masters = cluster.masters.map((m) => cluster.connect(m));
  const writer = proxyClient(t, proxy.port);
  const keys = Array.from({ length: 30 }, (_, i) => `idle:${i}`);
  await writer.pipeline(keys.map((k) => ["set", k, "v0"])).exec();

  /**
   * Per master, the ids of the tracking connections: the tracked data connections (redirecting
   * their invalidations) and the invalidation connections they redirect to.
   */
  const trackingConnections = async () => {
    const lists = await Promise.all(masters.map((m) => m.client("LIST") as Promise<string>));
    return lists.map((list) => {
      const ids = new Set<string>();
      for (const line of list.split("\n")) {
        const redir = / redir=(\d+)/.exec(line);
        if (redir === null) continue;
        ids.add(/^id=(\d+)/.exec(line)![1]!);
        ids.add(redir[1]!);
      }
      return ids;
    });
  };
  assert.deepEqual(
    (await trackingConnections()).map((ids) => ids.size),
    [0, 0, 0],
  );

  const track = async () => {
    const client = await TrackingClient.connect(proxy.port);
    t.after(() => client.close());
    await client.command("HELLO", "3");
    assert.equal((await client.command("CLIENT", "TRACKING", "on")).toString(), "+OK\r\n");
    await client.read(keys);
    return client;
  };
  const first = await track();
  const open = await trackingConnections();
  assert.ok(
    open.every((ids) => ids.size >= 2),
    `an invalidation and a data connection on each master: ${open.map((ids) => [...ids])}`,
  );

  first.close();
  const stillOpen = async () => {
    const lists = await Promise.all(masters.map((m) => m.client("LIST") as Promise<string>));
    return lists.flatMap((list, i) =>
      list
        .split("\n")
        .map((line) => /^id=(\d+)/.exec(line)?.[1])
        .filter((id) => id !== undefined && open[i]!.has(id)),
    );
  };
  await until(
    async () => (await stillOpen()).length === 0,
    30_000,
    "the tracking connections to close once the last tracking client left",
  );

  // The next tracking client opens them again, and is told of a change.
  const second = await track();
  assert.ok((await trackingConnections()).every((ids) => ids.size >= 2));
  await writer.set(keys[7]!, "v1");
  await until(() => second.invalidated.has(keys[7]!), 30_000, "the invalidation of the key changed");
  assert.equal(second.flushes, 0);
});
