/**
 * TLS between clients and the proxy, with certificates the test makes (a CA, the proxy's
 * certificate, a client certificate, and a second CA whose certificates must be refused), over a
 * real cluster of plain redis-server processes.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { copyFile, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { connect as connectTls, type ConnectionOptions } from "node:tls";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { pino } from "pino";
import { freePorts } from "../../src/local/ports.ts";
import { liveFields, parseProxyConfig, type ProxyConfigInput } from "../../src/proxy/config.ts";
import { startWorker, type ProxyWorker } from "../../src/proxy/worker.ts";
import {
  issueCertificate,
  makeCertificateAuthority,
  type CertificatePair,
} from "../../src/tls/certificates.ts";
import { fileCleanup, startCluster, tempDir, until, type TestCluster } from "../support/redis.ts";
import { dredisLaunch, startProxyHost } from "../support/proxy.ts";

const run = promisify(execFile);
const files = fileCleanup();
let cluster: TestCluster;
let dir: string;
let ca: CertificatePair;
let server: CertificatePair;
let client: CertificatePair;
let rogueCa: CertificatePair;
let rogueClient: CertificatePair;

before(async () => {
  cluster = await startCluster(files, { masters: 3, replicas: 0 });
  dir = await tempDir("dredis-tls-");
  files.after(() => rm(dir, { recursive: true, force: true }));
  ca = await makeCertificateAuthority(dir, "ca");
  server = await issueCertificate(ca, dir, "server", { commonName: "proxy" });
  client = await issueCertificate(ca, dir, "client", { commonName: "app" });
  rogueCa = await makeCertificateAuthority(dir, "rogue-ca", "someone else's CA");
  rogueClient = await issueCertificate(rogueCa, dir, "rogue-client", { commonName: "intruder" });
});

/** A worker in this process with `tls` set, its log lines kept for the assertions. */
async function startTlsWorker(
  t: { after(fn: () => unknown): void },
  tls: Partial<NonNullable<ProxyConfigInput["tls"]>> = {},
): Promise<{ worker: ProxyWorker; logs: string[] }> {
  const logs: string[] = [];
  const log = pino({ level: "info" }, { write: (line: string) => void logs.push(line) });
  const config = parseProxyConfig({
    listen: { host: "127.0.0.1", port: 0 },
    seeds: cluster.seeds.slice(0, 1),
    tls: { port: 0, certFile: server.cert, keyFile: server.key, ...tls },
  });
  const worker = await startWorker(config, { log });
  t.after(() => worker.close());
  return { worker, logs };
}

/** An ioredis client over TLS; `errors` collects the errors it emitted (the reason a connect failed). */
function tlsClient(
  t: { after(fn: () => unknown): void },
  port: number,
  tls: ConnectionOptions,
): Redis & { errors: string[] } {
  const errors: string[] = [];
  const redis = new Redis({
    host: "127.0.0.1",
    port,
    tls,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on("error", (err: Error) => errors.push(err.message));
  t.after(() => redis.disconnect());
  return Object.assign(redis, { errors });
}

/** The error a TLS connection attempt ends with, or "connected". */
async function handshake(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = connectTls({ host: "127.0.0.1", port, ...options });
    socket.once("secureConnect", () => {
      // TLS 1.3 refuses a client certificate after the client's side finished: read a reply to know.
      socket.write("PING\r\n");
    });
    socket.once("data", (d) => {
      socket.destroy();
      resolve(d.toString().startsWith("+PONG") ? "connected" : `reply ${d}`);
    });
    socket.once("error", (err) => resolve(`${(err as NodeJS.ErrnoException).code ?? ""} ${err.message}`));
    socket.once("close", () => resolve("closed"));
  });
}

const pem = (path: string) => readFileSync(path);

test("ioredis and redis-cli --tls reach the cluster through the proxy's TLS port, and the plain port is closed", async (t) => {
  const { worker } = await startTlsWorker(t);
  assert.ok(worker.tlsPort !== undefined);
  assert.equal(worker.port, worker.tlsPort, "only TLS is served");
  const redis = tlsClient(t, worker.tlsPort, { ca: pem(ca.cert) });
  await redis.connect();
  for (let i = 0; i < 50; i++) await redis.set(`tls:${i}`, `v${i}`);
  assert.equal(await redis.get("tls:42"), "v42");
  await redis.mset("{tls}:1", "v1", "{tls}:2", "v2");
  assert.deepEqual(await redis.mget("{tls}:1", "{tls}:2"), ["v1", "v2"]);
  // The keys really are on the shards.
  const onShards = await Promise.all(cluster.masters.map((m) => cluster.connect(m).dbsize()));
  assert.equal(
    onShards.reduce((a, b) => a + b, 0),
    52,
  );

  const cli = await run("redis-cli", [
    "--tls",
    "--cacert",
    ca.cert,
    "-h",
    "127.0.0.1",
    "-p",
    String(worker.tlsPort),
    "GET",
    "tls:7",
  ]);
  assert.equal(cli.stdout.trim(), "v7");
  // A plain client on the TLS port gets no Redis reply.
  const plain = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(worker.tlsPort), "PING"]).then(
    (r) => r.stdout,
    (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
  );
  assert.doesNotMatch(plain, /PONG/);
});

test("plain and TLS ports side by side serve the same data", async (t) => {
  const { worker } = await startTlsWorker(t, { plain: true });
  assert.notEqual(worker.port, worker.tlsPort);
  const secure = tlsClient(t, worker.tlsPort!, { ca: pem(ca.cert) });
  const plain = new Redis({ host: "127.0.0.1", port: worker.port, maxRetriesPerRequest: 0 });
  t.after(() => plain.disconnect());
  await secure.set("side:by:side", "over tls");
  assert.equal(await plain.get("side:by:side"), "over tls");
});

test("a client that does not trust the proxy's CA fails its handshake (ioredis and redis-cli)", async (t) => {
  const { worker } = await startTlsWorker(t);
  const redis = tlsClient(t, worker.tlsPort!, { ca: pem(rogueCa.cert) });
  await assert.rejects(redis.connect());
  assert.match(redis.errors.join("\n"), /unable to verify the first certificate/);
  const cli = await run("redis-cli", [
    "--tls",
    "--cacert",
    rogueCa.cert,
    "-h",
    "127.0.0.1",
    "-p",
    String(worker.tlsPort),
    "PING",
  ]).then(
    (r) => r.stdout + r.stderr,
    (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
  );
  assert.match(cli, /certificate verify failed/);
});

test("with clientCaFile, only clients presenting a certificate of that CA get in; the proxy logs why the others did not", async (t) => {
  const { worker, logs } = await startTlsWorker(t, { clientCaFile: ca.cert });
  const port = worker.tlsPort!;
  assert.equal(
    await handshake(port, { ca: pem(ca.cert), cert: pem(client.cert), key: pem(client.key) }),
    "connected",
  );
  const none = await handshake(port, { ca: pem(ca.cert) });
  assert.match(none, /certificate required|handshake failure|ECONNRESET|closed/);
  const rogue = await handshake(port, {
    ca: pem(ca.cert),
    cert: pem(rogueClient.cert),
    key: pem(rogueClient.key),
  });
  assert.match(rogue, /unknown ca|bad certificate|ECONNRESET|closed/);
  await until(
    () => logs.filter((l) => /TLS handshake with a client failed/.test(l)).length >= 2,
    10_000,
    "the proxy to log both refused handshakes",
  );
  const refused = logs.filter((l) => /TLS handshake with a client failed/.test(l)).join("\n");
  assert.match(refused, /peer did not return a certificate|certificate required/);
  assert.match(refused, /client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);

  const cli = (cert: CertificatePair) =>
    run("redis-cli", [
      "--tls",
      "--cacert",
      ca.cert,
      "--cert",
      cert.cert,
      "--key",
      cert.key,
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "PING",
    ]).then(
      (r) => r.stdout + r.stderr,
      (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
    );
  assert.equal((await cli(client)).trim(), "PONG");
  assert.doesNotMatch(await cli(rogueClient), /PONG/);
});

test("minVersion TLSv1.3 refuses a TLS 1.2 client and serves a TLS 1.3 one", async (t) => {
  const { worker } = await startTlsWorker(t, { minVersion: "TLSv1.3" });
  const port = worker.tlsPort!;
  const old = await handshake(port, { ca: pem(ca.cert), maxVersion: "TLSv1.2" });
  assert.match(old, /protocol version|unsupported protocol|ECONNRESET/);
  assert.equal(await handshake(port, { ca: pem(ca.cert), minVersion: "TLSv1.3" }), "connected");
  const { worker: default12 } = await startTlsWorker(t);
  assert.equal(await handshake(default12.tlsPort!, { ca: pem(ca.cert), maxVersion: "TLSv1.2" }), "connected");
});

/** The serial number of the certificate the server at `port` presents now. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: "127.0.0.1", port, ca: pem(ca.cert) }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once("error", reject);
  });
}

const serialOf = (path: string) =>
  run("openssl", ["x509", "-in", path, "-noout", "-serial"]).then((r) =>
    r.stdout.trim().split("=")[1]!.toUpperCase(),
  );

test("a reload (what SIGHUP sends the workers) takes on a renewed certificate for new connections; open ones keep working", async (t) => {
  const own = await tempDir("dredis-tls-reload-");
  t.after(() => rm(own, { recursive: true, force: true }));
  await copyFile(server.cert, join(own, "proxy.crt"));
  await copyFile(server.key, join(own, "proxy.key"));
  const { worker } = await startTlsWorker(t, {
    certFile: join(own, "proxy.crt"),
    keyFile: join(own, "proxy.key"),
  });
  const port = worker.tlsPort!;
  assert.equal(await servedSerial(port), await serialOf(server.cert));
  const open = tlsClient(t, port, { ca: pem(ca.cert) });
  await open.set("reload:k", "1");

  const renewed = await issueCertificate(ca, dir, "renewed", { commonName: "proxy, renewed" });
  const [cert, key] = await Promise.all([readFile(renewed.cert), readFile(renewed.key)]);
  // Written and reloaded in one synchronous step: the reload, not the file watch, is what is tested.
  writeFileSync(join(own, "proxy.crt"), cert);
  writeFileSync(join(own, "proxy.key"), key);
  worker.reload(liveFields(worker.context.config));
  assert.equal(await servedSerial(port), await serialOf(renewed.cert));
  assert.equal(await open.get("reload:k"), "1", "the open connection kept its session");
});

test("a multi-worker host reloads a certificate rewritten on disk by itself (file watch), and keeps the old one while the new files are unusable", async (t) => {
  const own = await tempDir("dredis-tls-watch-");
  t.after(() => rm(own, { recursive: true, force: true }));
  await copyFile(server.cert, join(own, "tls.crt"));
  await copyFile(server.key, join(own, "tls.key"));
  const [tlsPort] = await freePorts(1);
  const host = await startProxyHost(t, cluster, {
    workers: 2,
    tls: { port: tlsPort!, certFile: join(own, "tls.crt"), keyFile: join(own, "tls.key"), plain: true },
  });
  const first = await serialOf(server.cert);
  assert.equal(await servedSerial(tlsPort!), first);

  // A key that does not match the certificate: refused, and the running certificate stays.
  const other = await issueCertificate(ca, dir, "other", { commonName: "other" });
  await copyFile(other.key, join(own, "tls.key"));
  await until(
    () => /TLS files not reloaded/.test(host.output()),
    15_000,
    "the host to refuse the mismatched key",
  );
  for (let i = 0; i < 4; i++)
    assert.equal(await servedSerial(tlsPort!), first, "every worker keeps the old one");

  const renewed = await issueCertificate(ca, dir, "renewed-watch", { commonName: "proxy, renewed" });
  await copyFile(renewed.cert, join(own, "tls.crt"));
  await copyFile(renewed.key, join(own, "tls.key"));
  const next = await serialOf(renewed.cert);
  // Both workers (connections alternate between them) serve the new certificate.
  await until(
    async () =>
      (await Promise.all(Array.from({ length: 6 }, () => servedSerial(tlsPort!)))).every((s) => s === next),
    15_000,
    "every worker to serve the renewed certificate",
  );
  const redis = tlsClient(t, tlsPort!, { ca: pem(ca.cert) });
  await redis.set("watched", "yes");
  assert.equal(await redis.get("watched"), "yes");
});

/** Runs `dredis proxy` with `tls` set and resolves with its exit code and output once it exits. */
async function hostExit(tls: ProxyConfigInput["tls"]): Promise<{ code: number | null; output: string }> {
  const own = await tempDir("dredis-tls-bad-");
  files.after(() => rm(own, { recursive: true, force: true }));
  const [port, tlsPort] = await freePorts(2);
  const file = join(own, "proxy.json");
  writeFileSync(
    file,
    JSON.stringify({
      listen: { host: "127.0.0.1", port },
      seeds: cluster.seeds.slice(0, 1),
      tls: { ...tls, port: tlsPort },
    }),
  );
  const result = await run(process.execPath, [...dredisLaunch.argv, "proxy", "--config", file], {
    timeout: 60_000,
    env: { ...process.env, ...dredisLaunch.env },
  }).then(
    () => ({ code: 0, output: "" }),
    (err: { code: number | null; stdout: string; stderr: string }) => ({
      code: err.code,
      output: err.stdout + err.stderr,
    }),
  );
  return result;
}

test("a host whose TLS files are missing or do not match stops at start, naming the setting and the file", async () => {
  const missing = await hostExit({ port: 0, certFile: join(dir, "nope.crt"), keyFile: server.key });
  assert.equal(missing.code, 1);
  assert.match(missing.output, /dredis: cannot read tls\.certFile \([^)]*nope\.crt\)/);
  const mismatched = await hostExit({ port: 0, certFile: server.cert, keyFile: client.key });
  assert.equal(mismatched.code, 1);
  assert.match(mismatched.output, /tls \(certFile, keyFile, clientCaFile\)[^\n]*key values mismatch/);
});
