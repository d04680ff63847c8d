import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster } from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

test("a CLUSTERDOWN the busy proxy answers reaches the client once: the worker does not retry it for a second budget", async (t) => {
  const cluster = await startCluster(t, { masters: 1, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, { retryBudgetMs: 300 }, { busyProxy: true });
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  assert.equal((await client.command("DBSIZE")).toString(), ":0\r\n");

  await cluster.masters[0]!.kill();
  const redirectsBefore = proxy.context.stats.redirects;
  // DBSIZE runs in the busy proxy, which waits its budget for the dead master and answers CLUSTERDOWN.
  assert.match(
    (await client.command("DBSIZE")).toString(),
    /^-CLUSTERDOWN no reachable master serves slot \d+ \(\S* is not answering\); retried for 300 ms\r\n$/,
  );
  assert.equal(
    proxy.context.stats.redirects,
    redirectsBefore,
    "the worker took the busy proxy's CLUSTERDOWN as final (no retry, no redirect counted)",
  );
});
