/**
 * `dredis local up --read-from replica-preferred` and `local set --read-from`: where the local
 * proxy's GETs ran is read from each node's own `INFO commandstats`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { down, readState, topologyOf } from "../../src/local/platform.ts";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import { tempDir, until } from "../support/redis.ts";
import { replicasCaughtUp } from "../support/replication.ts";
import { dredisLaunch } from "../support/proxy.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dredis = (...args: string[]) =>
  run(process.execPath, [...dredisLaunch.argv, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...dredisLaunch.env },
  });

test("local up --read-from replica-preferred: GETs run on the replicas; local set --read-from master moves them back", async (t) => {
  const dir = await tempDir("dredis-local-read-from-");
  const [port] = await freePorts(1);
  const basePort = (await freeNodePorts(1))[0]!; // the nodes take the ports from it, and their bus ports: below the ephemeral range
  t.after(() => down(dir));
  await dredis(
    "local",
    "up",
    "--dir",
    dir,
    "--replicas",
    "1",
    "--workers",
    "1",
    "--port",
    String(port),
    "--base-port",
    String(basePort),
    "--read-from",
    "replica-preferred",
    "--detach",
  );
  const state = (await readState(dir))!;
  assert.equal(state.proxy.readFrom, "replica-preferred");
  const connect = (address: string) => {
    const client = new Redis({ port: Number(address.split(":")[1]), maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    t.after(() => client.disconnect());
    return client;
  };
  const shards = topologyOf(state).shards;
  const masters = shards.map((s) => connect(s.master));
  const replicas = shards.flatMap((s) => s.replicas.map(connect));
  const gets = async (nodes: Redis[]) => {
    let total = 0;
    for (const node of nodes)
      total += Number(
        /^cmdstat_get:calls=(\d+)/m.exec(String(await node.call("INFO", "commandstats")))?.[1] ?? 0,
      );
    return total;
  };

  const proxy = connect(`127.0.0.1:${port}`);
  const keys = Array.from({ length: 100 }, (_, i) => `read-from:${i}`);
  for (const key of keys) await proxy.set(key, key);
  for (const master of masters) await replicasCaughtUp(master, { replicas: 1 });
  // A replica qualifies once its first sync is done and the proxy has read its state (at the next
  // slot-map refresh): until then its shard's reads go to the master, as they should (a clean-clone
  // run under load saw 71 of 100 GETs on the replicas). Then every GET runs on a replica.
  await until(
    async () => {
      const [onReplicas, onMasters] = [await gets(replicas), await gets(masters)];
      for (const key of keys) assert.equal(await proxy.get(key), key);
      return (await gets(replicas)) === onReplicas + keys.length && (await gets(masters)) === onMasters;
    },
    30_000,
    "every GET of a round on a replica, none on a master",
  );

  await dredis("local", "set", "--dir", dir, "--read-from", "master");
  assert.equal((await readState(dir))!.proxy.readFrom, "master");
  // The host reloads on SIGHUP: once it has, GETs run on the masters.
  await until(
    async () => {
      const before = await gets(masters);
      await proxy.get(keys[0]!);
      return (await gets(masters)) === before + 1;
    },
    30_000,
    "GETs on the masters after the reload",
  );
  const onReplicas = await gets(replicas);
  for (const key of keys) assert.equal(await proxy.get(key), key);
  assert.equal(await gets(replicas), onReplicas, "no GET reached a replica after the reload");
});

test("local up --read-from refuses an unknown mode, naming the choices", async () => {
  await assert.rejects(
    dredis("local", "up", "--dir", await tempDir("dredis-local-read-from-"), "--read-from", "nearest"),
    /argument 'nearest' is invalid\. Allowed choices are master, replica-preferred, replica/,
  );
});
