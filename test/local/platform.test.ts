import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { Redis, Cluster } from "ioredis";
import { alive, down, readState, scale, up } from "../../src/local/platform.ts";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import { tempDir } from "../support/redis.ts";
import { dredisLaunch } from "../support/proxy.ts";

const run = promisify(execFile);

async function clusterCheck(port: number): Promise<string> {
  const { stdout } = await run("redis-cli", ["--cluster", "check", `127.0.0.1:${port}`]);
  return stdout;
}

test("the local platform scales 3 -> 5 -> 3 shards under load with no client error and no lost or wrong value", async (t) => {
  const dir = await tempDir("dredis-local-");
  const [port] = await freePorts(1);
  const basePort = (await freeNodePorts(1))[0]!; // the nodes take the ports from it, and their bus ports: below the ephemeral range
  t.after(() => down(dir));
  const state = await up({ dir, shards: 3, replicas: 1, workers: 1, port: port!, basePort });
  assert.equal(state.nodes.length, 6);

  const writer = new Redis({ port: port!, maxRetriesPerRequest: 0 });
  const reader = new Redis({ port: port!, maxRetriesPerRequest: 0 });
  t.after(() => {
    writer.disconnect();
    reader.disconnect();
  });
  const keys = 20_000;
  const expected = new Map<number, string>();
  for (let i = 0; i < keys; i += 1000) {
    const pipeline = writer.pipeline();
    for (let k = i; k < i + 1000; k++) {
      pipeline.set(`local:${k}`, `v0-${k}`);
      expected.set(k, `v0-${k}`);
    }
    await pipeline.exec();
  }

  const errors: string[] = [];
  let wrong = 0;
  let stop = false;
  const load = (async () => {
    for (let round = 1; !stop && round < 10_000; round++) {
      const pipeline = writer.pipeline();
      const batch: number[] = [];
      for (let j = 0; j < 200; j++) batch.push((round * 200 + j) % keys);
      for (const k of batch) pipeline.set(`local:${k}`, `v${round}-${k}`);
      const written = (await pipeline.exec())!;
      written.forEach(([err], j) =>
        err ? errors.push(err.message) : expected.set(batch[j]!, `v${round}-${batch[j]}`),
      );
      const values = await reader.mget(...batch.map((k) => `local:${k}`)).catch((err: Error) => {
        errors.push(err.message);
        return [];
      });
      values.forEach((v, j) => v !== expected.get(batch[j]!) && wrong++);
    }
  })();

  const grown = await scale(dir, 5);
  assert.equal(grown.nodes.length, 10);
  assert.match(await clusterCheck(state.nodes[0]!.port), /\[OK\] All 16384 slots covered/);
  const shrunk = await scale(dir, 3);
  assert.equal(shrunk.nodes.length, 6);
  assert.match(await clusterCheck(state.nodes[0]!.port), /\[OK\] All 16384 slots covered/);
  stop = true;
  await load;
  assert.deepEqual(errors, [], "clients of the proxy must see no error");
  assert.equal(wrong, 0, "no wrong value read");

  const final = await reader.mget(...Array.from({ length: keys }, (_, k) => `local:${k}`));
  final.forEach((v, k) => assert.equal(v, expected.get(k), `local:${k}`));
  const removed = grown.nodes.filter((n) => !shrunk.nodes.some((m) => m.port === n.port));
  assert.ok(
    removed.every((n) => !alive(n.pid)),
    "drained shards' processes are stopped",
  );
});

test("a cluster client given the addresses from `dredis local status --json` shares its data with proxy clients; down leaves nothing", async (t) => {
  const dir = await tempDir("dredis-local-");
  const [port] = await freePorts(1);
  const basePort = 30_000 + Math.floor(Math.random() * 10_000);
  t.after(() => down(dir));
  await up({ dir, shards: 3, replicas: 0, workers: 1, port: port!, basePort });

  const cli = (...args: string[]) =>
    run(process.execPath, [...dredisLaunch.argv, "local", ...args, "--dir", dir], {
      env: { ...process.env, ...dredisLaunch.env },
    });
  const report = JSON.parse((await cli("status", "--json")).stdout) as {
    endpoint: string;
    proxyReady: boolean;
    nodes: { address: string; role: string; slots: number }[];
  };
  assert.equal(report.endpoint, `127.0.0.1:${port}`);
  assert.equal(report.proxyReady, true);
  assert.equal(
    report.nodes.reduce((sum, n) => sum + n.slots, 0),
    16384,
  );

  const viaProxy = new Redis({ port: port!, maxRetriesPerRequest: 0 });
  const clusterClient = new Cluster(
    report.nodes.map((n) => ({ host: n.address.split(":")[0], port: Number(n.address.split(":")[1]) })),
  );
  t.after(() => {
    viaProxy.disconnect();
    clusterClient.disconnect();
  });
  for (let i = 0; i < 100; i++) await viaProxy.set(`shared:${i}`, `proxy-${i}`);
  for (let i = 0; i < 100; i++) assert.equal(await clusterClient.get(`shared:${i}`), `proxy-${i}`);
  for (let i = 0; i < 100; i++) await clusterClient.set(`shared:${i}`, `cluster-${i}`);
  for (let i = 0; i < 100; i++) assert.equal(await viaProxy.get(`shared:${i}`), `cluster-${i}`);

  const again = await cli("up", "--detach", "--port", String(port)).catch(
    (e: { stderr: string; code: number }) => e,
  );
  assert.equal((again as { code: number }).code, 1);
  assert.match(
    (again as { stderr: string }).stderr,
    /a local platform is already running in .*; see it with: dredis local status/,
  );

  const state = (await readState(dir))!;
  await cli("down");
  assert.ok(
    [state.proxy.pid, ...state.nodes.map((n) => n.pid)].every((pid) => !alive(pid)),
    "down stops every process",
  );
  const none = await cli("status").catch((e: { stderr: string }) => e);
  assert.match(
    (none as { stderr: string }).stderr,
    /no local platform is running in .*; start one with: dredis local up/,
  );
});

test("`dredis local up` stays in the foreground until Ctrl-C, then stops every process it started", async (t) => {
  const dir = await tempDir("dredis-local-");
  const [port] = await freePorts(1);
  const basePort = 40_000 + Math.floor(Math.random() * 5_000);
  t.after(() => down(dir));
  const child = spawn(
    process.execPath,
    [
      ...dredisLaunch.argv,
      "local",
      "up",
      "--dir",
      dir,
      "--port",
      String(port),
      "--base-port",
      String(basePort),
      "--replicas",
      "0",
      "--workers",
      "1",
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...dredisLaunch.env } },
  );
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!output.includes("Press Ctrl-C") && Date.now() < deadline && child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(output, /A distributed Redis is running\.[\s\S]*redis-cli -p \d+/);
  const state = (await readState(dir))!;
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(child.exitCode, null, "it must stay in the foreground");
  const client = new Redis({ port: port!, maxRetriesPerRequest: 0 });
  assert.equal(await client.set("fg", "1"), "OK");
  client.disconnect();
  child.kill("SIGINT");
  assert.equal(await exited, 0);
  assert.ok(
    [state.proxy.pid, ...state.nodes.map((n) => n.pid)].every((pid) => !alive(pid)),
    "no process is left behind",
  );
});
