/**
 * The shard entrypoint, after handing mastership over on SIGTERM, stays up while clients are
 * still being redirected (its MOVED count grows) and stops once they have left. Found on Docker:
 * the script shut the node down as soon as it was a replica, so each roll reset the connection of
 * a client whose write was still on its way to the former master (one ECONNRESET per roll).
 *
 * The client here is one that has not learned the new master: every write it sends after the
 * handover is answered MOVED. Without the wait, the node is gone within a poll of the handover
 * and the writes below meet a closed connection.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { Redis } from "ioredis";
import { freePorts } from "../../../src/local/ports.ts";
import { RawClient } from "../../support/raw-client.ts";
import { tempDir, until } from "../../support/redis.ts";
import { renderAuthConf, renderShardRedisConf } from "../../../components/plan/redis-conf.ts";
import { renderShardEntrypoint, shardEntrypointCommand } from "../../../components/plan/shard-entrypoint.ts";

const password = "handover-clients-password";
/** Writes the stale client sends after the handover, back to back. */
const WRITES_AFTER_HANDOVER = 300;

interface Node {
  admin: Redis;
  pid: number;
  exited: Promise<unknown>;
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
    // Far above what the writes below take even on a loaded machine: the wait must end because
    // the client stopped, not because of the bound.
    clientsLeaveTimeoutSeconds: 120,
    port,
    passwordFile: join(dir, "password"),
  });
  const [command, ...args] = shardEntrypointCommand(script, [
    ...["--port", String(port), "--bind", "127.0.0.1", "--cluster-port", String(busPort)],
    ...["--cluster-node-timeout", "2000", "--cluster-preferred-endpoint-type", "ip"],
    ...["--logfile", join(dir, "redis.log")],
  ]);
  const child = spawn(command!, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
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
  return { admin, pid: child.pid!, exited, log: () => stderr };
}

test("after the handover the former master stays up while clients are redirected, then stops", async (t) => {
  const dir = await tempDir("dredis-handover-clients-");
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

  const client = await RawClient.connect(masterPort!);
  t.after(() => client.close());
  assert.equal(String(await client.command("AUTH", password)), "+OK\r\n");
  assert.equal(String(await client.command("SET", "k", "before")), "+OK\r\n");
  const closed = client.closed.then(() => {
    throw new Error("the former master closed the client's connection while it was still being redirected");
  });
  closed.catch(() => {});

  process.kill(master.pid, "SIGTERM");
  await until(
    async () => /^role:slave\r?$/m.test(String(await master.admin.call("INFO", "replication"))),
    30_000,
    "the master to hand over",
  );
  const replies = new Map<string, number>();
  for (let i = 0; i < WRITES_AFTER_HANDOVER; i++) {
    const reply = String(await Promise.race([client.command("SET", "k", `after-${i}`), closed]));
    const kind = reply.startsWith("-MOVED") ? "MOVED" : reply.trim();
    replies.set(kind, (replies.get(kind) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(replies), { MOVED: WRITES_AFTER_HANDOVER }, "every write redirected");

  // The client stops: the node stops too, having seen at least those redirects.
  await master.exited;
  const sent = /no client redirected for 0\.5 s \(MOVED sent: (\d+)\)/.exec(master.log())?.[1];
  assert.ok(sent !== undefined, `the script said:\n${master.log()}`);
  assert.ok(Number(sent) >= WRITES_AFTER_HANDOVER, `MOVED sent: ${sent}`);
  assert.equal(await replica.admin.get("k"), "before");
});
