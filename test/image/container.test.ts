/**
 * The runtime image built for real and run as a proxy host: Debian's docker.io engine (a private
 * dockerd when none is reachable, scripts/image/dockerd.sh), the Dockerfile built from a local base
 * (scripts/image/build.sh: debootstrap + docker import, since no registry is reachable), and a
 * container of it on the host network serving over a Redis Cluster of local redis-server processes.
 *
 * Prerequisites: root (it installs docker.io and debootstrap, starts dockerd, debootstraps the base)
 * and the network (deb.debian.org for debootstrap and apt-get, registry.npmjs.org for npm ci). Without
 * them the test is skipped, saying why; with CI=true or DREDIS_IMAGE_TEST=required it fails instead.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { chmod, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";
import { freePorts } from "../../src/local/ports.ts";
import { startCluster, tempDir, until } from "../support/redis.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PRIVATE_ENGINE = "unix:///run/distributed-redis-docker/docker.sock";
const TAG = "distributed-redis:image-test";
const run = promisify(execFile);

/** Where the build reaches out to: a cold cache needs both. */
const ENDPOINTS: [string, number][] = [
  ["deb.debian.org", 80],
  ["registry.npmjs.org", 443],
];

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 10_000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("timeout", () => done(false));
    socket.once("error", () => done(false));
  });
}

/** Why the test cannot run here, or undefined when it can. */
async function missingPrerequisite(): Promise<string | undefined> {
  if (process.getuid?.() !== 0)
    return "needs root: it installs docker.io and debootstrap, starts dockerd and debootstraps the image's base";
  const unreachable = [];
  for (const [host, port] of ENDPOINTS)
    if (!(await reachable(host, port))) unreachable.push(`${host}:${port}`);
  if (unreachable.length > 0)
    return `no network: ${unreachable.join(", ")} unreachable (debootstrap, apt-get and npm ci in the build need them)`;
  return undefined;
}

/** Runs a script or docker with the engine's DOCKER_HOST; the error names the command and its stderr. */
async function sh(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      cwd: REPO,
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed: ${e.message}\n${(e.stderr ?? "").slice(-4000)}`);
  }
}

function dockerReachable(dockerHost: string): boolean {
  const env = { ...process.env, DOCKER_HOST: dockerHost };
  return spawnSync("docker", ["info"], { env, stdio: "ignore" }).status === 0;
}

test("the runtime image, built from a local base, serves redis-cli and /readyz over a local cluster", async (t) => {
  const missing = await missingPrerequisite();
  if (missing !== undefined) {
    const message = `runtime image test: ${missing}`;
    if (process.env.CI === "true" || process.env.DREDIS_IMAGE_TEST === "required") assert.fail(message);
    console.error(`${message} (skipped)`);
    t.skip(message);
    return;
  }
  await sh("bash", ["scripts/setup.sh", "dockerd", "debootstrap"]);

  // The machine's engine when one answers, else a private one that this test stops again.
  const privateWasRunning = dockerReachable(PRIVATE_ENGINE);
  const dockerHostLine = (await sh("bash", ["scripts/image/dockerd.sh", "start"])).trim();
  const dockerHost = dockerHostLine.replace(/^DOCKER_HOST=/, "");
  const env = dockerHost === "" ? {} : { DOCKER_HOST: dockerHost };
  const docker = (...args: string[]) => sh("docker", args, env);

  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const dir = await tempDir("dredis-image-");
  const [port, adminPort] = await freePorts(2);
  const container = `dredis-image-test-${process.pid}`;
  t.after(async () => {
    await docker("rm", "--force", container).catch(() => {});
    await rm(dir, { recursive: true, force: true });
    if (dockerHost === PRIVATE_ENGINE && !privateWasRunning) {
      // Layers nothing names any more (earlier builds of the test's tag) go with the engine's run.
      await docker("image", "prune", "--force").catch(() => {});
      await sh("bash", ["scripts/image/dockerd.sh", "stop"]);
    }
  });

  assert.equal(
    (await sh("bash", ["scripts/image/build.sh", TAG], env)).trim(),
    TAG,
    "build.sh prints the tag",
  );

  // The container runs as the image's `node` user: the config must be readable to it.
  await writeFile(
    join(dir, "proxy.json"),
    JSON.stringify({
      listen: { host: "127.0.0.1", port },
      admin: { host: "127.0.0.1", port: adminPort },
      seeds: cluster.seeds.slice(0, 1),
      workers: 2,
    }),
  );
  await chmod(dir, 0o755);
  await chmod(join(dir, "proxy.json"), 0o644);
  await docker(
    "run",
    "--detach",
    "--name",
    container,
    "--network",
    "host",
    "--volume",
    `${dir}:/config:ro`,
    TAG,
    "proxy",
    "--config",
    "/config/proxy.json",
  );
  await until(
    async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200,
    60_000,
    "the container's proxy host to be ready",
    200,
  ).catch(async (err: Error) => {
    const logs = await docker("logs", "--tail", "50", container).catch((e: Error) => e.message);
    throw new Error(`${err.message}\n--- container logs ---\n${logs}`);
  });
  const ready = (await (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).json()) as {
    ready: boolean;
    workers: unknown[];
    busyProxy: { running: boolean };
  };
  assert.equal(ready.ready, true);
  assert.equal(ready.workers.length, 2);
  assert.equal(ready.busyProxy.running, true);
  // Each worker runs on the native socket I/O the image's build compiled (it logs which).
  const logs = await sh("sh", ["-c", `docker logs ${container} 2>&1`], env);
  assert.equal(
    logs.match(/"socketIo":"native"/g)?.length,
    2,
    `two workers on native I/O:\n${logs.slice(-4000)}`,
  );

  // redis-cli from the host through the container's port: routed commands on the workers, a
  // cross-slot MSET/MGET on the busy proxy.
  const cli = async (...args: string[]) => (await sh("redis-cli", ["-p", String(port), ...args])).trimEnd();
  assert.equal(await cli("PING"), "PONG");
  assert.equal(await cli("SET", "image:a", "1"), "OK");
  assert.equal(await cli("MSET", "image:b", "2", "image:c", "3", "image:d", "4"), "OK");
  assert.equal(await cli("MGET", "image:a", "image:b", "image:c", "image:d"), "1\n2\n3\n4");
  assert.equal(await cli("INCR", "image:a"), "2");
  // The keys are in the cluster's shards.
  let stored = 0;
  for (const master of cluster.masters) stored += await cluster.connect(master).dbsize();
  assert.equal(stored, 4);

  // The cluster administration the migration workload runs, from the image: it sees the shards
  // and the keys the proxy wrote.
  const topology = {
    shards: cluster.masters.map((m, i) => ({ name: `shard-${i}`, master: `${m.host}:${m.port}` })),
  };
  const check = JSON.parse(
    await docker(
      "run",
      "--rm",
      "--network",
      "host",
      TAG,
      "cluster",
      "check",
      "--topology",
      JSON.stringify(topology),
      "--json",
    ),
  ) as { ok: boolean; shards: { slots: number; keys: number }[] };
  assert.equal(check.ok, true);
  assert.deepEqual(
    [check.shards.reduce((n, s) => n + s.slots, 0), check.shards.reduce((n, s) => n + s.keys, 0)],
    [16384, 4],
  );

  // The image's own redis-cli (its health checks use it) reaches the proxy too, and its processes
  // are the bundle on plain node as the unprivileged user.
  assert.equal(
    (await docker("exec", container, "redis-cli", "-p", String(port), "GET", "image:c")).trim(),
    "3",
  );
  assert.equal((await docker("exec", container, "id", "-u")).trim(), "1000");
  const cmdline = (await docker("exec", container, "cat", "/proc/1/cmdline")).replaceAll("\0", " ").trim();
  assert.equal(cmdline, "node /usr/local/bin/dredis proxy --config /config/proxy.json");
  const keepalived = await docker(
    "run",
    "--rm",
    "--entrypoint",
    "sh",
    TAG,
    "-c",
    "keepalived --version 2>&1",
  );
  assert.match(keepalived, /^Keepalived v/);

  // Only the runtime: the bundle and the one data package it reads at run time, no node_modules
  // of the package's SDKs.
  const listing = await docker(
    "run",
    "--rm",
    "--entrypoint",
    "find",
    TAG,
    "/app",
    "-maxdepth",
    "3",
    "-not",
    "-path",
    "/app/node_modules/@ioredis/commands/*",
  );
  // The bundle's shared code is in esbuild's chunks (scripts/image/bundle.sh): named by hash, so
  // counted here, and the rest of the listing is exact.
  const files = listing.trim().split("\n").sort();
  const chunks = files.filter((f) => /^\/app\/dist\/cli\/chunk-[A-Z0-9]+\.js$/.test(f));
  assert.ok(chunks.length > 0, "the bundle's chunks are in the image");
  assert.deepEqual(
    files.filter((f) => !chunks.includes(f)),
    [
      "/app",
      "/app/bin",
      "/app/bin/dredis.js",
      "/app/dist",
      "/app/dist/cli",
      "/app/dist/cli/main.js",
      "/app/dist/cli/role-main.js",
      "/app/native",
      "/app/native/build",
      "/app/native/build/dredis-io.node",
      "/app/node_modules",
      "/app/node_modules/@ioredis",
      "/app/node_modules/@ioredis/commands",
      "/app/package.json",
    ],
  );
});
