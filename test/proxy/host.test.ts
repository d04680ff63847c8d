import { test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { startCluster, startStandalone, until } from "../support/redis.ts";
import { proxyClient, startProxyHost } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

/** Which worker a client landed on: client ids are worker index * 1e9 + a counter. */
async function workerOf(client: Redis): Promise<number> {
  return Math.floor(Number(await client.call("CLIENT", "ID")) / 1e9);
}

test("connections from 50 clients land on every worker, and a killed worker is replaced while the other's clients see no error", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 1 });
  const host = await startProxyHost(t, cluster, { workers: 2 });
  const clients = Array.from({ length: 50 }, () => proxyClient(t, host.port, { retryStrategy: () => null }));
  const placement = await Promise.all(clients.map(workerOf));
  const status = await host.status();
  const counts = status.workers.map((w) => w!.clients);
  t.diagnostic(`clients per worker: ${counts.join(" / ")}`);
  assert.equal(counts.length, 2);
  assert.ok(
    counts.every((n) => n > 0),
    `every worker must get connections, got ${counts}`,
  );
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    50,
  );

  const metrics = await (await fetch(`http://127.0.0.1:${host.adminPort}/metrics`)).text();
  assert.match(metrics, /^dredis_clients_connected 50$/m, "summed over the workers");
  assert.match(metrics, /^dredis_commands_total (\d+)$/m);
  assert.ok(Number(/^dredis_commands_total (\d+)$/m.exec(metrics)![1]) >= 50);
  assert.match(metrics, /^dredis_slot_map_complete 1$/m, "every worker has a complete map");
  assert.match(metrics, /^dredis_slot_map_reads_older_total 0$/m, "no stale view on a quiet cluster");

  const victim = status.workers.find((w) => w!.index === 0)!;
  const survivors = clients.filter((_, i) => placement[i] === 1);
  const errors: string[] = [];
  let stop = false;
  const load = Promise.all(
    survivors.map(async (client, c) => {
      for (let i = 0; !stop && i < 100_000; i++) {
        try {
          await client.set(`survivor:${c}`, String(i));
          assert.equal(await client.get(`survivor:${c}`), String(i));
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 200));
  process.kill(victim.pid, "SIGKILL");
  await until(
    async () => {
      const now = await host.status();
      return (
        now.workers.length === 2 && now.workers.every((w) => w !== null && w.ready && w.pid !== victim.pid)
      );
    },
    20_000,
    "the killed worker to be replaced",
  );
  stop = true;
  await load;
  assert.deepEqual(errors, [], "clients of the surviving worker must see no error");
  const fresh = proxyClient(t, host.port);
  assert.equal(await fresh.ping(), "PONG");
});

test("SIGTERM drains the host: every answered write is in the cluster and no request is left hanging", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const host = await startProxyHost(t, cluster, { workers: 2 });
  const writers = await Promise.all(Array.from({ length: 10 }, () => RawClient.connect(host.port)));
  t.after(() => writers.forEach((w) => w.close()));
  const acknowledged: string[] = [];
  let unanswered = 0;
  const loops = writers.map(async (writer, w) => {
    for (let round = 0; round < 10_000; round++) {
      const keys = Array.from({ length: 20 }, (_, i) => `drain:${w}:${round}:${i}`);
      const replies = await Promise.race([
        writer.pipeline(keys.map((k) => ["SET", k, "1"])),
        writer.closed.then(() => null),
      ]);
      if (replies === null) {
        unanswered++;
        return;
      }
      replies.forEach((r, i) => r.toString() === "+OK\r\n" && acknowledged.push(keys[i]!));
    }
  });
  await new Promise((r) => setTimeout(r, 500));
  host.process.kill("SIGTERM");
  const settled = await Promise.race([
    Promise.all(loops).then(() => "settled"),
    new Promise((r) => setTimeout(() => r("hanging"), 20_000)),
  ]);
  assert.equal(settled, "settled", "every client must get its replies or a closed connection");
  assert.equal(await host.exited, 0);
  t.diagnostic(
    `${acknowledged.length} writes acknowledged before the drain; ${unanswered} pipelines cut by the close`,
  );
  assert.ok(acknowledged.length > 0);
  const direct = new Redis.Cluster([{ host: "127.0.0.1", port: cluster.masters[0]!.port }]);
  t.after(() => direct.disconnect());
  const missing: string[] = [];
  for (let i = 0; i < acknowledged.length; i += 500) {
    const batch = acknowledged.slice(i, i + 500);
    const values = await Promise.all(batch.map((k) => direct.get(k)));
    values.forEach((v, j) => v !== "1" && missing.push(batch[j]!));
  }
  assert.deepEqual(missing, [], "no acknowledged write may be lost");
});

test("through a real host, multi-key commands across shards match a standalone redis and keep pipeline order; a busy proxy stopped abruptly (SIGUSR2 to the primary terminates its thread) is replaced", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const host = await startProxyHost(t, cluster, { workers: 2 });
  const reference = await startStandalone(t);
  const viaProxy = await RawClient.connect(host.port);
  const direct = await RawClient.connect(reference.port);
  t.after(() => {
    viaProxy.close();
    direct.close();
  });
  const keys = Array.from({ length: 30 }, (_, i) => `multi:${i}`);
  const commands = [
    ["MSET", ...keys.flatMap((k, i) => [k, `v${i}`])],
    ["MGET", ...keys, "multi:missing"],
    ["EXISTS", ...keys.slice(0, 10), "multi:missing", keys[0]!],
    ["SET", "multi:single", "1"],
    ["DEL", ...keys.slice(0, 5), "multi:missing"],
    ["MGET", ...keys.slice(0, 7)],
    ["UNLINK", ...keys.slice(5, 10)],
    ["TOUCH", ...keys.slice(10, 20)],
    ["GET", "multi:single"],
  ];
  // One pipeline mixing routed and busy-proxy commands, several times over, replies compared in order.
  const pipeline = Array.from({ length: 20 }, () => commands).flat();
  const [expected, actual] = await Promise.all([direct.pipeline(pipeline), viaProxy.pipeline(pipeline)]);
  actual.forEach((reply, i) =>
    assert.equal(reply.toString(), expected[i]!.toString(), `#${i}: ${pipeline[i]!.join(" ").slice(0, 60)}`),
  );

  const before = (await host.status()).busyProxy;
  assert.equal(before.running, true);
  // Hold the shards so the MGETs are surely in flight inside the busy proxy when it dies.
  await Promise.all(cluster.masters.map((m) => cluster.connect(m).call("CLIENT", "PAUSE", 1500, "ALL")));
  const inflight = viaProxy.pipeline([
    ...Array.from({ length: 10 }, () => ["MSET", ...keys.flatMap((k) => [k, "x"])]),
    ["MGET", ...keys],
  ]);
  await new Promise((r) => setTimeout(r, 300));
  host.process.kill("SIGUSR2");
  const replies = (await inflight).map((r) => r.toString());
  t.diagnostic(`in-flight MSET when the busy proxy was killed: ${replies[0]!.trim()}`);
  // Writes in flight may or may not have run: a clear error says so. A read in flight is simply retried.
  for (const reply of replies.slice(0, 10))
    assert.match(
      reply,
      /^-ERR connection to the busy proxy was lost before it replied.*may or may not have run/,
    );
  assert.match(replies[10]!, /^\*30\r\n/);
  await until(
    async () => {
      const now = (await host.status()).busyProxy;
      return now.running && now.threadId !== before.threadId;
    },
    20_000,
    "the busy proxy to be restarted",
  );
  const after = await viaProxy.command("MGET", "multi:10", "multi:20");
  assert.equal(after.toString(), "*2\r\n$3\r\nv10\r\n$3\r\nv20\r\n");
});
