import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { Redis } from "ioredis";
import { findRedisServer } from "../../../src/local/redis-server.ts";
import { freeNodePorts } from "../../../src/local/ports.ts";
import { tempDir, until } from "../../support/redis.ts";
import {
  renderAuthConf,
  renderMemoryConf,
  renderShardRedisConf,
  type ShardRedisConfOptions,
} from "../../../components/plan/redis-conf.ts";

const password = 'p@ss "quoted" word';

/**
 * Boots redis-server on the rendered redis.conf and auth.conf files, as a container does; only
 * the container paths (data dir, include) point into a temp dir and the port is a free one.
 */
async function bootRendered(
  t: TestContext,
  options: Omit<ShardRedisConfOptions, "dataDir" | "authConfPath">,
) {
  const dir = await tempDir("dredis-conf-");
  const [port] = await freeNodePorts(1);
  await writeFile(join(dir, "auth.conf"), renderAuthConf(password));
  await writeFile(
    join(dir, "redis.conf"),
    renderShardRedisConf({ ...options, dataDir: dir, authConfPath: join(dir, "auth.conf") }),
  );
  const child = spawn(findRedisServer(), [join(dir, "redis.conf"), "--port", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const client = new Redis({ port: port!, password, lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  t.after(async () => {
    client.disconnect();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
    await rm(dir, { recursive: true, force: true });
  });
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited:\n${output}`);
      if (client.status !== "ready") await client.connect();
      return (await client.ping()) === "PONG";
    },
    10_000,
    "redis-server to boot on the generated config",
  );
  return { client, port: port! };
}

test("the generated redis.conf boots redis-server in cluster mode with its password and limits", async (t) => {
  const { client, port } = await bootRendered(t, {
    persistence: "aof",
    maxmemoryMb: 64,
    announceHostname: "redis-shard-0-0",
  });
  assert.match(await client.info("cluster"), /cluster_enabled:1/);
  assert.match(String(await client.call("CLUSTER", "INFO")), /cluster_known_nodes:1/);
  const get = async (key: string) => ((await client.call("CONFIG", "GET", key)) as string[])[1];
  assert.equal(await get("cluster-announce-hostname"), "redis-shard-0-0");
  assert.equal(await get("cluster-preferred-endpoint-type"), "hostname");
  assert.equal(await get("maxmemory"), String(64 * 1024 * 1024));
  assert.equal(await get("maxmemory-policy"), "noeviction");
  assert.equal(await get("appendonly"), "yes");
  assert.equal(await get("masterauth"), password);

  const anonymous = createConnection({ port });
  t.after(() => anonymous.destroy());
  anonymous.write("GET k\r\n");
  const [reply] = (await once(anonymous, "data")) as [Buffer];
  assert.equal(reply.toString(), "-NOAUTH Authentication required.\r\n");
});

for (const persistence of ["rdb", "none"] as const) {
  test(`the ${persistence} persistence mode renders directives redis-server accepts`, async (t) => {
    const { client } = await bootRendered(t, { persistence, maxmemoryMb: 32 });
    const save = ((await client.call("CONFIG", "GET", "save")) as string[])[1];
    assert.equal(save, persistence === "rdb" ? "3600 1 300 100 60 10000" : "");
    assert.equal(((await client.call("CONFIG", "GET", "appendonly")) as string[])[1], "no");
  });
}

test("the rendered file names the data dir and the auth include for the container", () => {
  const text = renderShardRedisConf({
    persistence: "aof",
    maxmemoryMb: 256,
    announceHostname: "redis-shard-2-1",
  });
  assert.match(text, /^dir \/data$/m);
  assert.match(text, /^cluster-announce-hostname redis-shard-2-1$/m);
  assert.match(text, /^maxmemory 256mb$/m);
  assert.match(text, /^include \/etc\/redis\/auth.conf$/m);
  assert.doesNotMatch(text, /requirepass/);
});

test("docker's memory.conf: a size set live and saved by CONFIG REWRITE outlasts a restart", async (t) => {
  const dir = await tempDir("dredis-conf-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [port] = await freeNodePorts(1);
  await writeFile(join(dir, "auth.conf"), renderAuthConf(password));
  await writeFile(join(dir, "memory.conf"), renderMemoryConf(64));
  const conf = join(dir, "redis.conf");
  await writeFile(
    conf,
    renderShardRedisConf({
      persistence: "aof",
      maxmemoryMb: 64,
      dataDir: dir,
      authConfPath: join(dir, "auth.conf"),
      memoryConfPath: join(dir, "memory.conf"),
    }).replace(/^port \d+$/m, `port ${port}`),
  );
  assert.doesNotMatch(await readFile(conf, "utf8"), /^maxmemory /m);
  const maxmemory = async () => {
    const child = spawn(findRedisServer(), [conf], { stdio: "ignore" });
    const client = new Redis({ port: port!, password, lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    try {
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error("redis-server exited");
          if (client.status !== "ready") await client.connect();
          return (await client.ping()) === "PONG";
        },
        10_000,
        "redis-server to boot",
      );
      const value = ((await client.call("CONFIG", "GET", "maxmemory")) as string[])[1];
      return { client, child, value: Number(value) / 1024 / 1024 };
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
  };
  const stop = async (run: { client: Redis; child: ReturnType<typeof spawn> }) => {
    run.client.disconnect();
    run.child.kill("SIGKILL");
    if (run.child.exitCode === null && run.child.signalCode === null) await once(run.child, "exit");
  };

  const first = await maxmemory();
  assert.equal(first.value, 64);
  // What `dredis cluster apply` does with DREDIS_MAXMEMORY (src/cluster/admin/memory.ts).
  await first.client.call("CONFIG", "SET", "maxmemory", String(96 * 1024 * 1024));
  await first.client.call("CONFIG", "REWRITE");
  await stop(first);
  const second = await maxmemory();
  t.after(() => stop(second));
  assert.equal(second.value, 96, "the rewritten size, not memory.conf's first one");
});
