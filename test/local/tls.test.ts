/**
 * `dredis local up --tls`, for real: a local CA and certificates, shard nodes serving only TLS
 * (cluster bus and replication too), the proxy serving TLS on its port and reaching the shards over
 * TLS with its client certificate, and the admin tools over TLS; wrong certificates refused on
 * each side with an error that names the problem.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { access, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { connect as connectTls } from "node:tls";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { down, scale, status, topologyOf, up, type LocalState } from "../../src/local/platform.ts";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import {
  issueCertificate,
  makeCertificateAuthority,
  type CertificatePair,
} from "../../src/tls/certificates.ts";
import { localClientTls } from "../../src/tls/local.ts";
import { roll } from "../../src/local/day2.ts";
import { tempDir, until } from "../support/redis.ts";
import { dredisLaunch } from "../support/proxy.ts";

const run = promisify(execFile);
let dir: string;
let state: LocalState;
let tlsDir: string;
let rogueCa: CertificatePair;
const clients: Redis[] = [];

before(async () => {
  dir = await tempDir("dredis-local-tls-");
  const [port] = await freePorts(1);
  const basePort = (await freeNodePorts(1))[0]!; // the nodes take the ports from it, and their bus ports: below the ephemeral range
  state = await up({ dir, shards: 3, replicas: 1, workers: 2, port: port!, basePort, tls: true });
  tlsDir = join(dir, "tls");
  rogueCa = await makeCertificateAuthority(await tempDir("dredis-rogue-"), "rogue-ca", "someone else's CA");
});
after(async () => {
  for (const c of clients) c.disconnect();
  await down(dir);
  await rm(dir, { recursive: true, force: true });
  await rm(dirname(rogueCa.cert), { recursive: true, force: true });
});

/** An ioredis connection to a node over TLS, with the platform's client certificate. */
function node(port: number): Redis {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    tls: localClientTls(state.tls),
    maxRetriesPerRequest: 1,
  });
  client.on("error", () => {});
  clients.push(client);
  return client;
}

const cli = (args: string[]) =>
  run("redis-cli", args).then(
    (r) => r.stdout + r.stderr,
    (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
  );

test("up --tls makes a CA and certificates under <dir>/tls, and every shard node serves TLS only, cluster bus and replication included", async () => {
  for (const name of ["ca.crt", "server.crt", "server.key", "client.crt", "client.key"])
    await access(join(tlsDir, name));
  assert.equal(state.tls?.dir, tlsDir);
  for (const n of state.nodes) {
    const client = node(n.port);
    assert.deepEqual(await client.config("GET", "port"), ["port", "0"], "no plain port");
    assert.deepEqual(await client.config("GET", "tls-port"), ["tls-port", String(n.port)]);
    assert.deepEqual(await client.config("GET", "tls-cluster"), ["tls-cluster", "yes"]);
    assert.deepEqual(await client.config("GET", "tls-replication"), ["tls-replication", "yes"]);
    // A plain client on the node's port gets no Redis reply.
    assert.doesNotMatch(await cli(["-h", "127.0.0.1", "-p", String(n.port), "PING"]), /PONG/);
  }
  // The cluster formed over the TLS bus, and replicas replicate over TLS.
  const first = node(state.nodes[0]!.port);
  assert.match(String(await first.call("CLUSTER", "INFO")), /cluster_state:ok/);
  const replicas = state.nodes.filter((_, i) => i % 2 === 1);
  // Under load a replica may still be in its first sync when up returns.
  for (const r of replicas)
    await until(
      async () =>
        /role:slave[\s\S]*master_link_status:up/.test(String(await node(r.port).info("replication"))),
      30_000,
      `replica ${r.port} to replicate over TLS`,
    );
  const report = await status(dir);
  assert.equal(report.proxyReady, true);
  assert.equal(report.nodes.filter((n) => n.role === "master").length, 3);
});

test("redis-cli --tls and ioredis with tls work through the proxy, which reaches the shards over TLS", async () => {
  const port = state.proxy.port;
  const proxy = new Redis({
    host: "127.0.0.1",
    port,
    tls: { ca: await readFile(join(tlsDir, "ca.crt")) },
    maxRetriesPerRequest: 0,
  });
  clients.push(proxy);
  const pipeline = proxy.pipeline();
  for (let i = 0; i < 300; i++) pipeline.set(`tls-key:${i}`, `value-${i}`);
  await pipeline.exec();
  assert.equal(await proxy.get("tls-key:123"), "value-123");

  const ca = join(tlsDir, "ca.crt");
  assert.equal(
    (await cli(["--tls", "--cacert", ca, "-p", String(port), "GET", "tls-key:7"])).trim(),
    "value-7",
  );
  assert.equal((await cli(["--tls", "--cacert", ca, "-p", String(port), "DBSIZE"])).trim(), "300");
  assert.doesNotMatch(await cli(["-p", String(port), "PING"]), /PONG/, "the proxy port serves only TLS");

  // The keys are on the masters (read over TLS), spread over all three.
  const masters = topologyOf(state).shards.map((s) => Number(s.master.split(":")[1]));
  const counts = await Promise.all(masters.map((p) => node(p).dbsize()));
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    300,
  );
  assert.ok(
    counts.every((c) => c > 0),
    `keys on every master: ${counts}`,
  );
  // Across slots (the busy proxy's own shard connections), a transaction, a blocking pop
  // (a dedicated connection) and Pub/Sub (a session connection): every kind of shard connection is TLS.
  assert.deepEqual(await proxy.mget("tls-key:1", "tls-key:2", "tls-key:3"), [
    "value-1",
    "value-2",
    "value-3",
  ]);
  assert.deepEqual(await proxy.multi().incr("{t}:n").incr("{t}:n").exec(), [
    [null, 1],
    [null, 2],
  ]);
  await proxy.rpush("tls-list", "x");
  assert.deepEqual(await proxy.blpop("tls-list", 1), ["tls-list", "x"]);
  const subscriber = proxy.duplicate();
  clients.push(subscriber);
  const message = new Promise<string>((resolve) => subscriber.once("message", (_c, m: string) => resolve(m)));
  await subscriber.subscribe("tls-channel");
  await proxy.publish("tls-channel", "over tls");
  assert.equal(await message, "over tls");
});

test("scaling 3 -> 4 shards over TLS: new TLS-only nodes join, slots and keys move between nodes over TLS, the proxy keeps every key", async () => {
  const proxy = new Redis({
    host: "127.0.0.1",
    port: state.proxy.port,
    tls: { ca: await readFile(join(tlsDir, "ca.crt")) },
    maxRetriesPerRequest: 0,
  });
  clients.push(proxy);
  const before = await proxy.dbsize();
  state = await scale(dir, 4);
  const masters = topologyOf(state).shards.map((s) => Number(s.master.split(":")[1]));
  assert.equal(masters.length, 4);
  const added = node(masters[3]!);
  assert.deepEqual(await added.config("GET", "port"), ["port", "0"]);
  assert.ok((await added.dbsize()) > 0, "keys moved to the new shard");
  // Every key answers at once (a MOVED is followed); DBSIZE sums the masters the proxy's slot map
  // knows, which takes in the new shard at its next refresh (refreshIntervalMs).
  for (let i = 0; i < 300; i += 37) assert.equal(await proxy.get(`tls-key:${i}`), `value-${i}`);
  await until(
    async () => (await proxy.dbsize()) === before,
    20_000,
    "DBSIZE through the proxy to count all 4 shards",
  );
  for (let i = 0; i < 300; i += 37) assert.equal(await proxy.get(`tls-key:${i}`), `value-${i}`);
});

test("a client that does not trust the platform's CA is refused at the handshake", async () => {
  const out = await cli(["--tls", "--cacert", rogueCa.cert, "-p", String(state.proxy.port), "PING"]);
  assert.match(out, /certificate verify failed/);
  const error = await new Promise<string>((resolve) => {
    const socket = connectTls({ host: "127.0.0.1", port: state.proxy.port, ca: [] }, () =>
      resolve("connected"),
    );
    socket.once("error", (err) => resolve(err.message));
  });
  assert.match(error, /unable to verify the first certificate|self[- ]signed/);
});

test("dredis cluster check runs over TLS with --tls --cacert --cert --key, and names the certificate problem with a wrong --cacert", async () => {
  const topology = join(dir, "topology.json");
  await writeFile(topology, JSON.stringify(topologyOf(state)));
  const dredis = (...args: string[]) =>
    run(process.execPath, [...dredisLaunch.argv, "cluster", "check", "--topology", topology, ...args], {
      env: { ...process.env, ...dredisLaunch.env },
    }).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (err: { code: number; stdout: string; stderr: string }) => ({
        code: err.code,
        out: err.stdout + err.stderr,
      }),
    );
  const files = [
    "--cacert",
    join(tlsDir, "ca.crt"),
    "--cert",
    join(tlsDir, "client.crt"),
    "--key",
    join(tlsDir, "client.key"),
  ];
  const ok = await dredis("--tls", ...files);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /ok: all slots covered, all nodes agree/);

  const wrong = await dredis("--tls", "--cacert", rogueCa.cert, "--cert", files[3]!, "--key", files[5]!);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.out, /is not trusted[^\n]*--cacert/);
  const flagsWithoutTls = await dredis("--cacert", files[1]!);
  assert.match(flagsWithoutTls.out, /--cacert need --tls/);
});

/** A proxy host over the platform's shards with `backendTls`; resolves with what /readyz says once it names a reason. */
async function proxyReadiness(
  t: { after(fn: () => unknown): void },
  backendTls: Record<string, string>,
  expect: RegExp,
): Promise<{ status: number; body: string; log: () => string }> {
  const own = await tempDir("dredis-tls-proxy-");
  t.after(() => rm(own, { recursive: true, force: true }));
  const [port, adminPort] = await freePorts(2);
  const file = join(own, "proxy.json");
  await writeFile(
    file,
    JSON.stringify({
      listen: { host: "127.0.0.1", port },
      admin: { host: "127.0.0.1", port: adminPort },
      seeds: topologyOf(state).shards.map((s) => s.master),
      workers: 1,
      backendTls,
    }),
  );
  const child = spawn(process.execPath, [...dredisLaunch.argv, "proxy", "--config", file], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...dredisLaunch.env },
  });
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  t.after(async () => {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  });
  let last = { status: 0, body: "" };
  await until(
    async () => {
      const response = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
      last = { status: response.status, body: await response.text() };
      return expect.test(last.body);
    },
    30_000,
    `/readyz to name the TLS problem`,
    200,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; /readyz said: ${last.body}; the host's log: ${log.slice(-1500)}`);
  });
  return { ...last, log: () => log };
}

test("a proxy that does not trust the shards' CA is not ready, and /readyz and its log say the shards' certificate is not trusted", async (t) => {
  const readiness = await proxyReadiness(t, { caFile: rogueCa.cert }, /not trusted/);
  assert.equal(readiness.status, 503);
  const reason = (JSON.parse(readiness.body) as { workers: { reason: string }[] }).workers[0]!.reason;
  t.diagnostic(reason);
  assert.match(
    reason,
    /the certificate of 127\.0\.0\.1:\d+ is not trusted \([^)]+\); is it signed by the CA in backendTls\.caFile\?/,
  );
  await until(() => /is not trusted/.test(readiness.log()), 10_000, "the host's log to say it too");
});

test("a proxy without a client certificate is refused by shards that verify clients, and /readyz says to check backendTls.certFile", async (t) => {
  const readiness = await proxyReadiness(t, { caFile: join(tlsDir, "ca.crt") }, /none is set/);
  assert.equal(readiness.status, 503);
  t.diagnostic(readiness.body);
  assert.match(
    readiness.body,
    /client certificate \(Redis's tls-auth-clients\) and none is set: set backendTls\.certFile/,
  );
});

test("a client certificate of another CA is refused by the shards as well", async (t) => {
  const rogueClient = await issueCertificate(rogueCa, join(dir, "rogue"), "client", {
    commonName: "intruder",
  });
  const readiness = await proxyReadiness(
    t,
    { caFile: join(tlsDir, "ca.crt"), certFile: rogueClient.cert, keyFile: rogueClient.key },
    /refused the handshake|handshake with/,
  );
  assert.equal(readiness.status, 503);
  t.diagnostic(readiness.body);
});

test("backendTls.serverName: a name the shards' certificate carries is served, another is refused naming the setting", async (t) => {
  const files = {
    caFile: join(tlsDir, "ca.crt"),
    certFile: join(tlsDir, "client.crt"),
    keyFile: join(tlsDir, "client.key"),
  };
  const wrong = await proxyReadiness(t, { ...files, serverName: "redis.example" }, /not valid for the name/);
  assert.equal(wrong.status, 503);
  t.diagnostic(wrong.body);
  assert.match(wrong.body, /redis\.example[^"]*; set backendTls\.serverName to a name it carries/);
  const right = await proxyReadiness(t, { ...files, serverName: "localhost" }, /"ready":true/);
  assert.equal(right.status, 200);
});

test("a roll over TLS: every TLS-only node restarts, masters hand over to their replicas, and the data stays reachable through the proxy", async () => {
  const result = await roll(dir);
  assert.equal(result.restarted.length, state.nodes.length);
  assert.equal(result.handovers.length, topologyOf(state).shards.length);
  const proxy = new Redis({
    host: "127.0.0.1",
    port: state.proxy.port,
    tls: { ca: await readFile(join(tlsDir, "ca.crt")) },
    maxRetriesPerRequest: 0,
  });
  clients.push(proxy);
  for (let i = 0; i < 300; i += 29) assert.equal(await proxy.get(`tls-key:${i}`), `value-${i}`);
  // The restarted replicas synced again over TLS.
  const report = await status(dir);
  const replicas = report.nodes.filter((n) => n.role === "replica");
  assert.equal(replicas.length, topologyOf(state).shards.length);
  for (const r of replicas)
    assert.match(
      String(await node(Number(r.address.split(":")[1])).info("replication")),
      /master_link_status:up/,
    );
});
