import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { Redis } from "ioredis";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { startCluster, until } from "../support/redis.ts";
import { proxyClient, startProxyHost } from "../support/proxy.ts";

/** Whether a fresh client connection to the proxy authenticates with `password`. */
async function authenticates(port: number, password: string): Promise<boolean> {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

test("SIGHUP: a rotated backendAuth is used by new shard connections, a new clientPassword applies live, other changes are logged for a restart", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const nodes = cluster.masters.map((m) => cluster.connect(m));
  await Promise.all(nodes.map((n) => n.call("ACL", "SETUSER", "default", "on", "resetpass", ">old-secret")));
  const host = await startProxyHost(t, cluster, {
    backendAuth: { password: "old-secret" },
    clientPassword: "client-old",
  });
  const client = proxyClient(t, host.port, { password: "client-old" });
  // One key per shard, so every shard's connections are exercised.
  const keys = ["a", "b", "c", "d", "e", "f", "g", "h"].map((k) => `rot:${k}`);
  assert.equal(new Set(keys.map((k) => Math.floor((slotOf(k) * 3) / 16384))).size, 3);
  const writeAndRead = async (tag: string) => {
    await client.mset(Object.fromEntries(keys.map((k) => [k, `${tag}:${k}`])));
    for (const k of keys) assert.equal(await client.get(k), `${tag}:${k}`);
  };
  await writeAndRead("before");

  // Rotation, as an operator does it: the shards accept both passwords, the proxy takes the new one.
  await Promise.all(nodes.map((n) => n.call("ACL", "SETUSER", "default", ">new-secret")));
  const config = JSON.parse(await readFile(host.configFile, "utf8"));
  await writeFile(
    host.configFile,
    JSON.stringify({
      ...config,
      backendAuth: { password: "new-secret" },
      clientPassword: "client-new",
      refreshIntervalMs: 1000,
    }),
  );
  host.process.kill("SIGHUP");
  await until(() => /config reloaded/.test(host.output()), 10_000, "the host to log the reload");
  // Workers take the message in turn: every new client connection, whichever worker it lands on, uses the new password.
  await until(
    async () =>
      (await Promise.all(Array.from({ length: 6 }, () => authenticates(host.port, "client-new")))).every(
        Boolean,
      ),
    10_000,
    "new client connections to authenticate with the new clientPassword",
  );
  assert.equal(await authenticates(host.port, "client-old"), false, "the old client password is refused");
  assert.match(
    host.output(),
    /take effect only after a restart[^\n]*refreshIntervalMs|refreshIntervalMs[^\n]*take effect only after a restart/,
  );

  // The old backend password goes; open shard connections (and the client already in) keep working.
  await Promise.all(nodes.map((n) => n.call("ACL", "SETUSER", "default", "<old-secret")));
  await writeAndRead("between");

  // Every proxy connection to the shards is cut: the new ones must authenticate with the new password.
  await Promise.all(nodes.map((n) => n.call("ACL", "LOG", "RESET")));
  await Promise.all(nodes.map((n) => n.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")));
  // A write sent on a connection the proxy has not yet seen closed fails as "may or may not have
  // run", rightly; reads are retried. One cross-slot read (the busy proxy's connections) and one
  // read per key (the worker's) make the proxy meet the cut connections and open new ones first.
  assert.deepEqual(
    await client.mget(keys),
    keys.map((k) => `between:${k}`),
  );
  for (const k of keys) assert.equal(await client.get(k), `between:${k}`);
  await writeAndRead("after");
  const authFailures = await Promise.all(
    nodes.map(
      async (n) => ((await n.call("ACL", "LOG")) as unknown[][]).filter((e) => e.includes("auth")).length,
    ),
  );
  assert.deepEqual(authFailures, [0, 0, 0], "no connection tried the removed password");

  // /status counts the reloads done and names why the last one was refused (`dredis local set`
  // waits on it): an invalid file is refused, and the running config stays.
  assert.deepEqual((await host.status()).reloads, { done: 1 });
  await writeFile(host.configFile, JSON.stringify({ ...config, workers: -1 }));
  host.process.kill("SIGHUP");
  await until(
    async () => (await host.status()).reloads.done === 2,
    10_000,
    "the refused reload to be counted",
  );
  assert.match((await host.status()).reloads.error ?? "", /workers: Too small/);
  await writeAndRead("refused");
});
