/**
 * Day-2 changes through `dredis cluster ...`, the commands the platforms run: live settings,
 * persistence and memory on every node (kept in each node's config file), a two-step password
 * rotation, and a roll whose restarts a shell command does. One 3 x 1 cluster serves the file,
 * each case leaving it healthy for the next.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import type { RedisServer } from "../../src/local/redis-server.ts";
import type { Topology } from "../../src/cluster/topology.ts";
import { RawClient } from "../support/raw-client.ts";
import { fileCleanup, serverBinary, tempDir, testEngine } from "../support/redis.ts";
import {
  clusterClient,
  runCli,
  startEmptyNodes,
  topologyOf,
  writeKeys,
  wrongKeys,
} from "./admin/cluster-fixture.ts";

const run = promisify(execFile);
const cleanup = fileCleanup();
let nodes: RedisServer[];
let topology: Topology;
let secrets: string;
/** The password the nodes accept now (the rotation case changes it). */
let password = "first-password";

before(async () => {
  nodes = await startEmptyNodes(cleanup, 6);
  for (const node of nodes) {
    const admin = new Redis({ host: node.host, port: node.port });
    await admin.config("SET", "masterauth", password);
    await admin.config("SET", "requirepass", password);
    admin.disconnect();
  }
  topology = topologyOf(nodes, 3, 1);
  secrets = await tempDir("dredis-secrets-");
  await writeFile(join(secrets, "first"), "first-password\n");
  await writeFile(join(secrets, "second"), "second-password\n");
  const created = await apply("--password-file", join(secrets, "first"));
  assert.equal(created.code, 0, created.stderr);
});

const apply = (...args: string[]) => runCli(["apply", "--topology", JSON.stringify(topology), ...args]);

async function onNode(node: RedisServer, ...command: string[]): Promise<unknown> {
  const client = new Redis({ host: node.host, port: node.port, password, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  try {
    return await client.call(command[0]!, ...command.slice(1));
  } finally {
    client.disconnect();
  }
}

const configOf = async (node: RedisServer, key: string) =>
  ((await onNode(node, "CONFIG", "GET", key)) as string[])[1];

async function authReply(node: RedisServer, pass: string): Promise<string> {
  const client = await RawClient.connect(node.port);
  try {
    return (await client.command("AUTH", pass)).toString().trim();
  } finally {
    client.close();
  }
}

async function redisCliCheck(node: RedisServer): Promise<void> {
  const { stdout } = await run("redis-cli", [
    "-a",
    password,
    "--no-auth-warning",
    "--cluster",
    "check",
    node.address,
  ]);
  assert.doesNotMatch(stdout, /\[ERR\]|\[WARNING\]/, stdout);
  assert.match(stdout, /\[OK\] All 16384 slots covered/);
}

test("apply switches persistence, memory and redis.conf settings live on every node and rewrites each node's config file; a setting that needs a restart is refused, naming the roll", async () => {
  const changed = await apply(
    "--password-file",
    join(secrets, "first"),
    "--persistence",
    "rdb",
    "--maxmemory",
    "64mb",
    "--config",
    "slowlog-log-slower-than=12345",
    "--config",
    "repl-diskless-sync-delay=0",
  );
  assert.equal(changed.code, 0, changed.stderr);
  for (const node of nodes) {
    assert.equal(await configOf(node, "appendonly"), "no");
    assert.equal(await configOf(node, "save"), "3600 1 300 100 60 10000");
    assert.equal(await configOf(node, "maxmemory"), String(64 * 1024 * 1024));
    assert.equal(await configOf(node, "slowlog-log-slower-than"), "12345");
    const file = await readFile(join(node.dir, "redis.conf"), "utf8");
    assert.match(file, /^appendonly no$/m);
    // Valkey writes the setting under its new name (slowlog-log-slower-than is its alias).
    const slowlogName =
      testEngine() === "valkey" ? "commandlog-execution-slower-than" : "slowlog-log-slower-than";
    assert.match(file, new RegExp(`^${slowlogName} 12345$`, "m"));
  }

  const back = await apply("--password-file", join(secrets, "first"), "--persistence", "aof");
  assert.equal(back.code, 0, back.stderr);
  for (const node of nodes) {
    assert.equal(await configOf(node, "appendonly"), "yes");
    assert.equal(await configOf(node, "save"), "");
  }

  const restartOnly = await apply("--password-file", join(secrets, "first"), "--config", "tcp-backlog=1024");
  assert.equal(restartOnly.code, 1);
  assert.match(
    restartOnly.stderr,
    /dredis: tcp-backlog cannot change while Redis runs; nothing was changed\. It needs every node restarted, one at a time: dredis cluster roll/,
  );
  const unknown = await apply("--password-file", join(secrets, "first"), "--config", "no-such-setting=1");
  assert.equal(unknown.code, 1);
  assert.match(
    unknown.stderr,
    /dredis: "no-such-setting" is not a redis.conf setting this Redis \(.*\) knows/,
  );
  const persistence = await apply("--password-file", join(secrets, "first"), "--persistence", "sometimes");
  assert.equal(persistence.code, 1);
  assert.match(persistence.stderr, /--persistence must be one of aof, rdb, none, got "sometimes"/);
  const asSetting = await apply("--password-file", join(secrets, "first"), "--config", "requirepass=oops");
  assert.equal(asSetting.code, 1);
  assert.match(
    asSetting.stderr,
    /requirepass is not changed as a setting .*rotate the password in two steps/,
  );
  for (const node of nodes) {
    assert.notEqual(await configOf(node, "tcp-backlog"), "1024");
    assert.equal(await authReply(node, "first-password"), "+OK");
  }
});

test("a password rotation through apply: both passwords accepted after step 1, only the new one after step 2; a client connected before keeps its data", async (t) => {
  const client = clusterClient(t, topology, "first-password");
  await writeKeys(client, 2_000);

  // Step 1 from the environment, as a workload that gets its secrets as variables runs it.
  Object.assign(process.env, {
    DREDIS_PASSWORD: "second-password",
    DREDIS_PREVIOUS_PASSWORD: "first-password",
  });
  const step1 = await apply().finally(() => {
    delete process.env.DREDIS_PASSWORD;
    delete process.env.DREDIS_PREVIOUS_PASSWORD;
  });
  assert.equal(step1.code, 0, step1.stderr);
  for (const node of nodes) {
    assert.equal(await authReply(node, "first-password"), "+OK");
    assert.equal(await authReply(node, "second-password"), "+OK");
    assert.equal(await configOf(node, "masterauth"), "second-password");
  }
  const both = await apply(
    "--password-file",
    join(secrets, "second"),
    "--previous-password-file",
    join(secrets, "first"),
    "--drop-previous-password",
  );
  assert.equal(both.code, 1);
  assert.match(
    both.stderr,
    /are two steps: run step 1, move every client \(the proxies\) to the new password, then run step 2 without the previous password/,
  );

  const step2 = await apply("--password-file", join(secrets, "second"), "--drop-previous-password");
  assert.equal(step2.code, 0, step2.stderr);
  password = "second-password";
  for (const node of nodes) {
    assert.match(await authReply(node, "first-password"), /^-WRONGPASS/);
    assert.equal(await authReply(node, "second-password"), "+OK");
    const replication = String(await onNode(node, "INFO", "replication"));
    if (replication.includes("role:slave")) assert.match(replication, /master_link_status:up/);
  }
  assert.deepEqual(await wrongKeys(client, 2_000), []);
  // Step 1 again after step 2 (the previous password left in a deployment's config): the nodes
  // already accept only the new one, so it connects with that and the old one stays dropped.
  const again = await apply(
    "--password-file",
    join(secrets, "second"),
    "--previous-password-file",
    join(secrets, "first"),
  );
  assert.equal(again.code, 0, again.stderr);
  for (const node of nodes) assert.match(await authReply(node, "first-password"), /^-WRONGPASS/);
  const steady = await apply("--password-file", join(secrets, "second"));
  assert.equal(steady.code, 0, steady.stderr);
  assert.match(steady.stdout, /the cluster already matches the topology/);
  await redisCliCheck(nodes[0]!);
});

test("cluster roll restarts every node with the given command, replicas first, each master after its handover; handover and wait-synced work on one node", async (t) => {
  const client = clusterClient(t, topology, password);
  await writeKeys(client, 2_000);
  const parent = dirname(nodes[0]!.dir);
  // The restarted servers are daemons this test owns: they go with the file's other servers.
  cleanup.after(async () => {
    for (const node of nodes) {
      const pid = Number(await readFile(join(node.dir, "restarted.pid"), "utf8").catch(() => "0"));
      if (pid > 0) process.kill(pid, "SIGKILL");
    }
  });
  const restart =
    `redis-cli -p {port} -a ${password} --no-auth-warning shutdown >/dev/null 2>&1; ` +
    `while redis-cli -p {port} ping >/dev/null 2>&1; do sleep 0.05; done; ` +
    `${serverBinary()} ${parent}/node-{port}/redis.conf --daemonize yes --pidfile ${parent}/node-{port}/restarted.pid`;
  const runIds = await Promise.all(
    nodes.map(async (n) => /run_id:(\w+)/.exec(String(await onNode(n, "INFO", "server")))![1]),
  );
  const roles = await Promise.all(
    nodes.map(async (n) => /role:(\w+)/.exec(String(await onNode(n, "INFO", "replication")))![1]),
  );

  process.env.DREDIS_PASSWORD = password;
  t.after(() => delete process.env.DREDIS_PASSWORD);
  const rolled = await runCli(["roll", "--topology", JSON.stringify(topology), "--restart", restart]);
  assert.equal(rolled.code, 0, rolled.stderr);
  const order = rolled.stderr
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { message: string }).message)
    .filter((m) => /^roll \[/.test(m));
  assert.deepEqual(
    order.map((m) => m.split(" ")[3]),
    ["replica", "replica", "replica", "master", "master", "master"],
  );
  for (const [i, node] of nodes.entries()) {
    assert.notEqual(
      /run_id:(\w+)/.exec(String(await onNode(node, "INFO", "server")))![1],
      runIds[i],
      `${node.address} restarted`,
    );
    const role = /role:(\w+)/.exec(String(await onNode(node, "INFO", "replication")))![1];
    assert.notEqual(role, roles[i], `${node.address} changed role through the handover`);
  }
  assert.deepEqual(await wrongKeys(client, 2_000), []);
  await redisCliCheck(nodes[0]!);

  // The steps alone, as a preStop hook and a readiness check would run them.
  const master = nodes.find((_, i) => roles[i] === "slave")!;
  const handedOver = await runCli(["handover", "--node", master.address]);
  assert.equal(handedOver.code, 0, handedOver.stderr);
  assert.match(handedOver.stdout, /^handed over to 127\.0\.0\.1:\d+\n$/);
  const again = await runCli(["handover", "--node", master.address]);
  assert.match(again.stdout, /is not a master owning slots; nothing to hand over/);
  const synced = await runCli(["wait-synced", "--node", master.address]);
  assert.equal(synced.code, 0, synced.stderr);
  assert.match(synced.stdout, new RegExp(`${master.address} is in sync \\(offset \\d+\\)`));
  assert.deepEqual(await wrongKeys(client, 2_000), []);
});
