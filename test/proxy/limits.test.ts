import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster } from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

test("clients past maxClients get redis's error and are closed; the others keep working", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, { limits: { maxClients: 3 } });
  const admitted = await Promise.all(Array.from({ length: 3 }, () => RawClient.connect(proxy.port)));
  t.after(() => admitted.forEach((c) => c.close()));
  for (const c of admitted) assert.equal((await c.command("PING")).toString(), "+PONG\r\n");
  const refused = await RawClient.connect(proxy.port);
  assert.equal((await refused.allUntilClose()).toString(), "-ERR max number of clients reached\r\n");
  assert.equal((await admitted[0]!.command("SET", "k", "v")).toString(), "+OK\r\n");
});

test("an idle client is closed after idleTimeoutSeconds; a busy one is not", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, { limits: { idleTimeoutSeconds: 1 } });
  const idle = await RawClient.connect(proxy.port);
  const busy = await RawClient.connect(proxy.port);
  t.after(() => busy.close());
  const started = Date.now();
  let busyErrors = 0;
  while (Date.now() - started < 2500) {
    if ((await busy.command("PING")).toString() !== "+PONG\r\n") busyErrors++;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal((await idle.allUntilClose(3000)).length, 0, "the idle client is closed without a reply");
  assert.equal(busyErrors, 0);
});

test("requests for an unreachable cluster wait for the retry budget, then fail with a clear error", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, { retryBudgetMs: 500 });
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  await Promise.all(cluster.masters.map((m) => m.kill()));
  const reply = (await client.command("GET", "anything")).toString();
  assert.match(
    reply,
    /^-(CLUSTERDOWN no reachable master serves slot \d+ .*retried for 500 ms|ERR connection to shard .* was lost)/,
  );
});

test("a shard that restarts meets no reconnect storm: attempts back off and are rate-limited, then its slots are served again", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, { retryBudgetMs: 10_000 });
  const client = await RawClient.connect(proxy.port);
  t.after(() => client.close());
  const victim = cluster.masters[0]!;
  // Slot 0 is the victim's (the harness gives master 0 the first range); "{06S}" hashes to slot 0.
  assert.equal((await client.command("SET", "{06S}k", "before")).toString(), "+OK\r\n");
  const before = proxy.context.stats.reconnects;
  await victim.kill();
  // Requests keep arriving while it is down (they wait within the retry budget).
  const pending = Array.from({ length: 50 }, () => client.command("GET", "{06S}k"));
  await new Promise((r) => setTimeout(r, 3000));
  await victim.restart();
  const replies = await Promise.all(pending);
  const attempts = proxy.context.stats.reconnects - before;
  t.diagnostic(`${attempts} reconnect attempts during 3 s of downtime`);
  assert.ok(attempts >= 1, "it reconnects");
  assert.ok(attempts <= 3 * 20, `at most the rate limit (20/s), got ${attempts}`);
  // The node restarted without persistence (test config): it serves its slots again, empty.
  for (const reply of replies) assert.equal(reply.toString(), "$-1\r\n");
});
