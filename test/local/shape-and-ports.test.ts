import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { alive, down, readState, statePath } from "../../src/local/platform.ts";
import { createServer } from "node:net";
import { tempDir } from "../support/redis.ts";
import { freeNodePorts } from "../../src/local/ports.ts";
import { dredisLaunch } from "../support/proxy.ts";

const run = promisify(execFile);

const cli = (dir: string, ...args: string[]) =>
  run(process.execPath, [...dredisLaunch.argv, "local", ...args, "--dir", dir], {
    env: { ...process.env, ...dredisLaunch.env },
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** 60000 itself when free (the issue's example), else the next free port above it. */
async function highPort(): Promise<number> {
  for (let port = 60_000; port < 65_535; port++) if (await portFree(port)) return port;
  throw new Error("no free port above 60000");
}

/** Every file under dir with its size and modification time, to show that nothing changed. */
async function snapshot(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  const rows = await Promise.all(
    entries.map(async (e) => {
      const s = await stat(join(dir, e));
      return `${e} ${s.isDirectory() ? "dir" : `${s.size} ${s.mtimeMs}`}`;
    }),
  );
  return rows.sort();
}

test("`local up --port 60000` works; over a directory of another shape `up` refuses, names scale and a fresh start, and changes nothing; the same shape restarts with its data", async (t) => {
  const dir = await tempDir("dredis-shape-");
  const port = await highPort();
  const basePort = (await freeNodePorts(1))[0]!; // the nodes take the ports from it, and their bus ports: below the ephemeral range
  t.after(() => down(dir));

  const first = await cli(
    dir,
    "up",
    "--detach",
    "--shards",
    "3",
    "--replicas",
    "0",
    "--workers",
    "1",
    "--port",
    String(port),
    "--base-port",
    String(basePort),
  );
  assert.equal(first.code, 0, first.stderr);
  const client = new Redis({ port, maxRetriesPerRequest: 0 });
  // It reconnects across the down/up below; commands are only sent while the proxy runs.
  client.on("error", () => {});
  t.after(() => client.disconnect());
  for (let i = 0; i < 100; i++) await client.set(`shape:${i}`, `v${i}`);
  const running = (await readState(dir))!;
  assert.equal((await cli(dir, "down")).code, 0);
  assert.ok(!alive(running.proxy.pid) && running.nodes.every((n) => !alive(n.pid)));

  const before = await snapshot(dir);
  const stateBefore = await readFile(statePath(dir), "utf8");
  const refused = await cli(dir, "up", "--detach", "--replicas", "1", "--port", String(port));
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `dredis: ${dir} holds a cluster of 3 shards x 0 replicas; refusing to start 3 shards x 1 replicas over it (nothing was changed).\n` +
      `  - start it as it was: dredis local up --dir ${dir} --shards 3 --replicas 0, then change the number of shards online with: ` +
      `dredis local scale --dir ${dir} --shards 3 (the number of replicas is fixed at creation)\n` +
      `  - or start afresh, deleting its data: dredis local down --dir ${dir} && rm -rf ${dir} && dredis local up --dir ${dir} --shards 3 --replicas 1\n` +
      `  - or use another directory: dredis local up --dir <new-dir> --shards 3 --replicas 1\n`,
  );
  assert.deepEqual(await snapshot(dir), before, "no file in the directory changed");
  assert.equal(await readFile(statePath(dir), "utf8"), stateBefore);
  assert.ok(
    running.nodes.every((n) => !alive(n.pid)),
    "no node was started",
  );

  // Without shape flags `up` restarts the directory in its own shape.
  const again = await cli(dir, "up", "--detach", "--workers", "1", "--port", String(port));
  assert.equal(again.code, 0, again.stderr);
  const restarted = (await readState(dir))!;
  assert.deepEqual(
    restarted.nodes.map((n) => n.port),
    running.nodes.map((n) => n.port),
    "nodes restart on their ports",
  );
  for (let i = 0; i < 100; i++) assert.equal(await client.get(`shape:${i}`), `v${i}`);
  const check = await run("redis-cli", ["--cluster", "check", `127.0.0.1:${restarted.nodes[0]!.port}`]);
  assert.match(check.stdout, /\[OK\] All 16384 slots covered/);
});
