/**
 * The shard entrypoint's handover as the platforms wire it: the password in a file
 * (`passwordFile`, rewritten by a rotation), no REDISCLI_AUTH in the environment. Found by
 * `pulumi up` of the dev stack under the real engine with a new redisImage: every master's
 * container took 45 s to stop (the whole handover timeout) and clients saw "connection to shard
 * ... was lost": the CLUSTER FAILOVER sent to the replica carried no password, since the script
 * read the file only in subshells. (../plan/shard-entrypoint.test.ts runs it with REDISCLI_AUTH set.)
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { Redis } from "ioredis";
import { freePorts } from "../../../src/local/ports.ts";
import { tempDir, until } from "../../support/redis.ts";
import { renderAuthConf, renderShardRedisConf } from "../../../components/plan/redis-conf.ts";
import { renderShardEntrypoint, shardEntrypointCommand } from "../../../components/plan/shard-entrypoint.ts";

const password = "handover-password-01";

interface Node {
  admin: Redis;
  exited: Promise<unknown>;
  stop(): void;
  log(): string;
}

async function startNode(t: TestContext, dir: string, port: number, busPort: number): Promise<Node> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "auth.conf"), renderAuthConf(password));
  await writeFile(join(dir, "password"), password);
  const conf = join(dir, "redis.conf");
  await writeFile(
    conf,
    renderShardRedisConf({
      persistence: "aof",
      maxmemoryMb: 64,
      dataDir: dir,
      authConfPath: join(dir, "auth.conf"),
    }),
  );
  const script = renderShardEntrypoint({
    configPath: conf,
    handoverTimeoutSeconds: 20,
    port,
    passwordFile: join(dir, "password"),
  });
  const [command, ...args] = shardEntrypointCommand(script, [
    ...["--port", String(port), "--bind", "127.0.0.1", "--cluster-port", String(busPort)],
    ...["--cluster-node-timeout", "2000", "--cluster-preferred-endpoint-type", "ip"],
    ...["--logfile", join(dir, "redis.log")],
  ]);
  const env = { ...process.env };
  delete env["REDISCLI_AUTH"];
  const child = spawn(command!, args, { env, stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit");
  t.after(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  });
  const admin = new Redis({
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
  });
  admin.on("error", () => {});
  t.after(() => admin.disconnect());
  await until(async () => (await admin.ping()) === "PONG", 10_000, `redis-server on ${port} to answer`);
  return { admin, exited, stop: () => child.kill("SIGTERM"), log: () => stderr };
}

const role = async (node: Node) =>
  /^role:(\w+)/m.exec(String(await node.admin.call("INFO", "replication")))?.[1] ?? "?";

test("SIGTERM on a master whose password is in a file: the replica takes over by CLUSTER FAILOVER", async (t) => {
  const dir = await tempDir("dredis-handover-file-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [masterPort, replicaPort, masterBus, replicaBus] = await freePorts(4);
  const master = await startNode(t, join(dir, "master"), masterPort!, masterBus!);
  const replica = await startNode(t, join(dir, "replica"), replicaPort!, replicaBus!);
  await master.admin.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
  await replica.admin.call("CLUSTER", "MEET", "127.0.0.1", String(masterPort), String(masterBus));
  const masterId = String(await master.admin.call("CLUSTER", "MYID"));
  await until(
    async () => (await replica.admin.call("CLUSTER", "REPLICATE", masterId)) === "OK",
    10_000,
    "the replica to know its master",
  );
  await until(
    async () => /^master_link_status:up\r?$/m.test(String(await replica.admin.call("INFO", "replication"))),
    20_000,
    "the replica to sync",
  );
  // The script hands over only to a replica its master lists as online, which the master does
  // once the replica's first REPLCONF ACK arrives (up to a second after the replica's link is up).
  await until(
    async () => /^slave\d+:.*state=online/m.test(String(await master.admin.call("INFO", "replication"))),
    20_000,
    "the master to list its replica as online",
  );

  master.stop();
  await master.exited;
  assert.match(master.log(), /handed over to 127\.0\.0\.1:\d+/, `the script said:\n${master.log()}`);
  assert.doesNotMatch(master.log(), /no replica took over/);
  assert.equal(await role(replica), "master");
});
