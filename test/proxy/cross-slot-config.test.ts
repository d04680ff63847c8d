import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  fieldsNeedingRestart,
  liveFields,
  loadProxyConfig,
  parseProxyConfig,
} from "../../src/proxy/config.ts";
import { down, proxyConfigPath, up, writeProxyConfig, type LocalState } from "../../src/local/platform.ts";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import { startCluster, tempDir, testEngine, until } from "../support/redis.ts";
import { startProxyHost } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

const SEEDS = ["127.0.0.1:7001"];

test("crossSlot defaults to refuse, takes emulate, and names what it expects otherwise", () => {
  assert.equal(parseProxyConfig({ seeds: SEEDS }).crossSlot, "refuse");
  assert.equal(parseProxyConfig({ seeds: SEEDS, crossSlot: "emulate" }).crossSlot, "emulate");
  assert.throws(
    () => parseProxyConfig({ seeds: SEEDS, crossSlot: "copy" }),
    (err: Error) =>
      err.message ===
      'invalid proxy config:\n  - crossSlot: Invalid option: expected one of "refuse"|"emulate"',
  );
});

test("crossSlot is a live field: changing it needs no restart, and a reload carries it", () => {
  const running = parseProxyConfig({ seeds: SEEDS });
  const next = parseProxyConfig({ seeds: SEEDS, crossSlot: "emulate" });
  assert.deepEqual(fieldsNeedingRestart(running, next), []);
  assert.equal(liveFields(next).crossSlot, "emulate");
});

const state = (crossSlot?: "refuse" | "emulate"): LocalState => ({
  version: 1,
  host: "127.0.0.1",
  proxy: { port: 6380, adminPort: 9000, pid: 0, workers: 2, ...(crossSlot ? { crossSlot } : {}) },
  replicas: 1,
  nodes: [{ shard: "s0", port: 7001, dir: "/nonexistent", pid: 0 }],
});

test("dredis local writes the proxy's crossSlot when it was given, and leaves the default otherwise", async () => {
  const dir = await mkdtemp(join(tmpdir(), "dredis-cross-slot-"));
  try {
    await writeProxyConfig(dir, state("emulate"));
    assert.equal((await loadProxyConfig(proxyConfigPath(dir))).crossSlot, "emulate");
    await writeProxyConfig(dir, state());
    assert.equal((await loadProxyConfig(proxyConfigPath(dir))).crossSlot, "refuse");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("dredis local up --cross-slot refuses a bad mode before starting anything", async () => {
  const dir = join(await mkdtemp(join(tmpdir(), "dredis-cross-slot-")), "platform");
  const bin = new URL("../../bin/dredis.js", import.meta.url).pathname;
  try {
    const failed = await promisify(execFile)(process.execPath, [
      bin,
      "local",
      "up",
      "--cross-slot",
      "copy",
      "--dir",
      dir,
    ]).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    assert.ok(failed !== null, "the command should fail");
    assert.equal(failed.code, 1);
    assert.match(
      failed.stderr,
      /^error: option '--cross-slot <mode>' argument 'copy' is invalid\. expected "refuse" or "emulate", got "copy"/,
    );
    await assert.rejects(stat(dir), { code: "ENOENT" });
  } finally {
    await rm(join(dir, ".."), { recursive: true, force: true });
  }
});

/** LCS of two keys on different shards, on a fresh connection (so on whichever worker it lands). */
async function lcs(port: number): Promise<string> {
  const client = await RawClient.connect(port);
  try {
    return String(await client.command("LCS", "a", "b"));
  } finally {
    client.close();
  }
}

test("SIGHUP: a proxy host takes crossSlot: emulate live, on every worker, with no restart asked", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const host = await startProxyHost(t, cluster);
  const setup = await RawClient.connect(host.port);
  await setup.pipeline([
    ["SET", "a", "ohmytext"],
    ["SET", "b", "mynewtext"],
  ]);
  setup.close();
  assert.equal(await lcs(host.port), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");

  const config = JSON.parse(await readFile(host.configFile, "utf8"));
  await writeFile(host.configFile, JSON.stringify({ ...config, crossSlot: "emulate" }));
  host.process.kill("SIGHUP");
  await until(() => /config reloaded/.test(host.output()), 10_000, "the host to log the reload");
  // Workers take the message in turn: then every new connection, whichever worker, runs it.
  await until(
    async () =>
      (await Promise.all(Array.from({ length: 6 }, () => lcs(host.port)))).every(
        (r) => r === "$6\r\nmytext\r\n",
      ),
    10_000,
    "new connections to get LCS computed across slots",
  );
  assert.doesNotMatch(host.output(), /take effect only after a restart/);
});

test("dredis local up with crossSlot: emulate starts a proxy that runs LCS across slots", async (t) => {
  const dir = await tempDir("dredis-local-cross-slot-");
  const [port] = await freePorts(1);
  const basePort = (await freeNodePorts(1))[0]!; // the nodes take the ports from it, and their bus ports: below the ephemeral range
  t.after(() => down(dir));
  const state = await up({
    dir,
    shards: 3,
    replicas: 0,
    workers: 1,
    port: port!,
    basePort,
    crossSlot: "emulate",
    engine: testEngine(),
  });
  assert.equal(state.proxy.crossSlot, "emulate");
  const client = await RawClient.connect(port!);
  try {
    await client.pipeline([
      ["SET", "a", "ohmytext"],
      ["SET", "b", "mynewtext"],
    ]);
    assert.equal(String(await client.command("LCS", "a", "b")), "$6\r\nmytext\r\n");
  } finally {
    client.close();
  }
});
