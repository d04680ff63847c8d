/**
 * Day-2 changes on a running 3 x 1 local platform under continuous load through the proxy: a roll
 * with a setting that needs a restart (and a live one it must keep), then a live password rotation.
 * One platform serves the file's cases (each leaves it healthy for the next).
 *
 * The rotation needs the proxy host to re-read its config on SIGHUP (new backend connections use
 * the new password); a host without that reload dies of the signal, and the case fails.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { parse as parseYaml } from "yaml";
import { down, proxyConfigPath, readState, status, up, type LocalState } from "../../src/local/platform.ts";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import { handover } from "../../src/cluster/admin/index.ts";
import { withPool } from "../../src/cluster/admin/node-pool.ts";
import { RawClient } from "../support/raw-client.ts";
import { tempDir, testEngine } from "../support/redis.ts";
import { dredisLaunch } from "../support/proxy.ts";
import { startLoad, type LoadReport } from "./proxy-load.ts";

const run = promisify(execFile);
let dir: string;
let port: number;

before(async () => {
  dir = await tempDir("dredis-roll-");
  [port] = (await freePorts(1)) as [number];
  const basePort = (await freeNodePorts(1))[0]!; // the nodes take the ports from it, and their bus ports: below the ephemeral range
  await up({
    dir,
    shards: 3,
    replicas: 1,
    workers: 1,
    port,
    basePort,
    password: "first-password",
    engine: testEngine(),
  });
});
after(() => down(dir));

const local = (...args: string[]) =>
  run(process.execPath, [...dredisLaunch.argv, "local", ...args, "--dir", dir], {
    env: { ...process.env, ...dredisLaunch.env },
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

const addresses = (state: LocalState) => state.nodes.map((n) => `127.0.0.1:${n.port}`);

/** The reply of one command on a fresh connection that authenticates with `password`. */
async function onNode(address: string, password: string, ...command: string[]): Promise<unknown> {
  const [host, p] = address.split(":");
  const client = new Redis({ host, port: Number(p), password, lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  try {
    await client.connect();
    return await client.call(command[0]!, ...command.slice(1));
  } finally {
    client.disconnect();
  }
}

/** A node's answer to AUTH with `password` on a new connection: "+OK" or the error line. */
async function authReply(address: string, password: string): Promise<string> {
  const client = await RawClient.connect(Number(address.split(":")[1]));
  try {
    return (await client.command("AUTH", password)).toString().trim();
  } finally {
    client.close();
  }
}

async function redisCliCheck(address: string, password: string): Promise<string> {
  const { stdout } = await run("redis-cli", [
    "-a",
    password,
    "--no-auth-warning",
    "--cluster",
    "check",
    address,
  ]);
  assert.doesNotMatch(stdout, /\[ERR\]|\[WARNING\]/, stdout);
  assert.match(stdout, /\[OK\] All 16384 slots covered/);
  return stdout;
}

function assertClean(report: LoadReport): void {
  assert.ok(report.rounds > 0, "the load ran");
  assert.deepEqual(report.errors, [], "clients of the proxy see no error");
  assert.deepEqual(report.wrong, [], "every value read is the last acknowledged write");
  assert.deepEqual(report.lost, [], "no acknowledged write is lost");
}

test("`local roll --set` restarts every node one at a time, each master after a handover, under load: no client error, no lost write, the setting and a live one kept", async (t) => {
  const state = (await readState(dir))!;
  const password = state.password!;

  const refused = await local("set", "--config", "tcp-backlog=1024");
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    "dredis: tcp-backlog cannot change while Redis runs; nothing was changed. It needs every node restarted, " +
      `one at a time: dredis local roll --dir ${dir} --set tcp-backlog=1024\n`,
  );
  // A live setting, which a restart must keep.
  const live = await local("set", "--config", "repl-diskless-sync-delay=0");
  assert.equal(live.code, 0, live.stderr);
  for (const address of addresses(state))
    assert.deepEqual(await onNode(address, password, "CONFIG", "GET", "repl-diskless-sync-delay"), [
      "repl-diskless-sync-delay",
      "0",
    ]);

  const rolesBefore = new Map((await status(dir)).nodes.map((n) => [n.address, n.role]));
  const load = await startLoad(port, "roll");
  t.after(() => load.stop());
  const rolled = await local("roll", "--set", "tcp-backlog=1024");
  const report = await load.stop();
  assert.equal(rolled.code, 0, rolled.stderr);
  assertClean(report);

  // The order: three replicas, then three masters, each handed over before its restart.
  const steps = rolled.stderr
    .trim()
    .split("\n")
    .map((line) => (JSON.parse(line) as { message: string }).message);
  const restarts = steps.filter((m) => /^roll \[\d\/6\]/.test(m));
  assert.equal(restarts.length, 6);
  assert.ok(
    restarts.slice(0, 3).every((m) => / replica /.test(m)),
    restarts.join("\n"),
  );
  assert.ok(
    restarts.slice(3).every((m) => / master /.test(m)),
    restarts.join("\n"),
  );
  for (const step of restarts.slice(3)) {
    const master = step.split(" ").pop()!;
    const next = steps[steps.indexOf(step) + 1]!;
    assert.match(next, new RegExp(`^ {2}handing ${master} over to its replica`));
  }

  const after = (await readState(dir))!;
  after.nodes.forEach((node, i) =>
    assert.notEqual(node.pid, state.nodes[i]!.pid, `node ${node.port} restarted`),
  );
  for (const node of (await status(dir)).nodes) {
    assert.notEqual(
      node.role,
      rolesBefore.get(node.address),
      `${node.address} changed role through its handover`,
    );
    assert.deepEqual(await onNode(node.address, password, "CONFIG", "GET", "tcp-backlog"), [
      "tcp-backlog",
      "1024",
    ]);
    assert.deepEqual(await onNode(node.address, password, "CONFIG", "GET", "repl-diskless-sync-delay"), [
      "repl-diskless-sync-delay",
      "0",
    ]);
  }
  await redisCliCheck(addresses(after)[0]!, password);
});

test("a live password rotation: both passwords work during it, only the new one after; proxy clients see no error and lose no write, also across new backend connections", async (t) => {
  const state = (await readState(dir))!;
  const load = await startLoad(port, "rotate");
  t.after(() => load.stop());
  const file = join(dir, "new-password");
  await writeFile(file, "second-password\n");

  const added = await local("set", "--password-file", file);
  assert.equal(added.code, 0, added.stderr);
  assert.match(
    added.stderr,
    /dredis: both passwords are accepted; once every client uses the new one, run: dredis local set --dir .* --drop-previous-password/,
  );
  for (const address of addresses(state)) {
    assert.equal(
      await onNode(address, "first-password", "PING"),
      "PONG",
      `${address} still accepts the old one`,
    );
    assert.equal(await onNode(address, "second-password", "PING"), "PONG", `${address} accepts the new one`);
    assert.deepEqual(await onNode(address, "second-password", "CONFIG", "GET", "masterauth"), [
      "masterauth",
      "second-password",
    ]);
  }
  const proxyConfig = parseYaml(await readFile(proxyConfigPath(dir), "utf8")) as {
    backendAuth: { password: string };
  };
  assert.equal(
    proxyConfig.backendAuth.password,
    "second-password",
    "the proxy host's config names the new one",
  );

  const dropped = await local("set", "--drop-previous-password");
  assert.equal(dropped.code, 0, dropped.stderr);
  for (const address of addresses(state)) {
    assert.match(await authReply(address, "first-password"), /^-WRONGPASS/, `${address} refuses the old one`);
    assert.equal(await authReply(address, "second-password"), "+OK");
    const replication = String(await onNode(address, "second-password", "INFO", "replication"));
    if (replication.includes("role:slave")) assert.match(replication, /master_link_status:up/);
  }
  // Every master hands over to its replica, where the proxy has no connection yet: the proxy must
  // open new backend connections, which only the new password opens now.
  const masters = (await status(dir)).nodes.filter((n) => n.role === "master").map((n) => n.address);
  await withPool({ password: "second-password" }, async (pool) => {
    for (const master of masters) assert.ok(await handover(pool, master), `${master} handed over`);
  });
  assertClean(await load.stop());
  assert.equal((await readState(dir))!.password, "second-password");
  await redisCliCheck(addresses(state)[0]!, "second-password");
});
