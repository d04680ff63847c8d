/**
 * What the Docker platform renders for a stack with TLS to the shards (and to the clients) boots
 * for real: each node's redis.conf, settings files, entrypoint and health check, the migration's
 * `dredis cluster apply` command and a proxy host's proxy.yaml run as processes on this machine,
 * with certificates this test makes with openssl. Only addresses are adapted: container paths get
 * a local root, ports become free ones (asserted: undoing those rewrites gives back the rendered
 * text byte for byte).
 *
 * It shows: the plain port closed on every node, the health check passing over TLS, the cluster
 * formed by the rendered migration flags, a client through the proxy over TLS reaching every
 * shard, a master's handover over TLS on SIGTERM, and a renewed certificate reloaded live.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect as connectPlain } from "node:net";
import { connect as connectTls } from "node:tls";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test, type TestContext } from "node:test";
import { Redis } from "ioredis";
import { parse, stringify } from "yaml";
import { makeCertificateAuthority, issueCertificate } from "../../../src/tls/certificates.ts";
import { slotOf } from "../../../src/cluster/key-slot.ts";
import { freePorts } from "../../../src/local/ports.ts";
import { dredisLaunch, spawnProxyHostFromFile } from "../../support/proxy.ts";
import { tempDir, until } from "../../support/redis.ts";
import { find, installMocks, startRun, type Recorded } from "../support/mocks.ts";

installMocks();
const { DistributedRedis } = await import("../../../components/distributed-redis.ts");

const PASSWORD = "tls-boot-password-01";
const SERVER_NAME = "shards.internal";
const CONTAINER = "docker:index/container:Container";
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

type Upload = { file: string; content: string };
const uploadsOf = (r: Recorded) => r.inputs["uploads"] as Upload[];

/** Container paths the rendering uses, each moved under a local root. */
const CONTAINER_PATHS =
  /(?<=^|[\s'=])(\/data|\/etc\/redis|\/etc\/dredis-shard-tls|\/etc\/dredis-tls|\/etc\/dredis)(?=[/\s'"]|$)/gm;

/** Rewrites for this machine, and their exact inverse (checked, so nothing else can change). */
function localizer(root: string, port: number) {
  const to = (text: string) =>
    text
      .replace(CONTAINER_PATHS, (path) => `${root}${path}`)
      .replace(/^PORT=6379$/m, `PORT=${port}`)
      .replace(/ -p 6379( |$)/g, ` -p ${port}$1`)
      // The renewal check's period, so the test need not wait a minute.
      .replace(/^TLS_RELOAD=60$/m, "TLS_RELOAD=1");
  const back = (text: string) =>
    text
      .replaceAll(root, "")
      .replace(new RegExp(`^PORT=${port}$`, "m"), "PORT=6379")
      .replace(new RegExp(` -p ${port}( |$)`, "g"), " -p 6379$1")
      .replace(/^TLS_RELOAD=1$/m, "TLS_RELOAD=60");
  return (rendered: string) => {
    const local = to(rendered);
    assert.equal(back(local), rendered, "the local rewrite changed more than paths and ports");
    return local;
  };
}

interface Node {
  hostname: string;
  port: number;
  busPort: number;
  root: string;
  healthCheck: string;
  script: ReturnType<typeof spawn>;
  exited: Promise<unknown>;
  log(): string;
}

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content, { mode: 0o600 });
  }
}

/** One node as Docker would run it: its settings written as the writer container does, then its command. */
async function startNode(t: TestContext, resources: Recorded[], name: string, dir: string): Promise<Node> {
  const [port, busPort] = (await freePorts(2)) as [number, number];
  const root = join(dir, name);
  const local = localizer(root, port);
  const container = find(resources, CONTAINER, name);
  const writer = find(resources, CONTAINER, `${name}-settings`);
  // The writer copies /tmp/dredis-settings/<f> to /data/.dredis/<f>.
  await writeFiles(
    root,
    Object.fromEntries(
      uploadsOf(writer).map((u) => [u.file.replace("/tmp/dredis-settings/", "/data/.dredis/"), u.content]),
    ),
  );
  await writeFiles(root, Object.fromEntries(uploadsOf(container).map((u) => [u.file, local(u.content)])));
  const [sh, c, script, name0] = container.inputs["command"] as string[];
  const child = spawn(
    sh!,
    [
      c!,
      local(script!),
      name0!,
      // This machine's addresses: loopback, free ports, announced by IP (the hostnames resolve nowhere here).
      ...["--tls-port", String(port), "--bind", "127.0.0.1", "--cluster-port", String(busPort)],
      ...["--cluster-preferred-endpoint-type", "ip", "--logfile", join(root, "redis.log")],
    ],
    { stdio: ["ignore", "ignore", "pipe"], detached: true, env: { ...process.env, REDISCLI_AUTH: "" } },
  );
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
  const healthCheck = local((container.inputs["healthcheck"] as { tests: string[] }).tests[1]!);
  return {
    hostname: container.inputs["hostname"] as string,
    port,
    busPort,
    root,
    healthCheck,
    script: child,
    exited,
    log: () => stderr,
  };
}

const healthy = (node: Node) => spawnSync("sh", ["-c", node.healthCheck], { timeout: 5_000 }).status === 0;

/** Sends a plain-text PING to `port` and returns all it got back before the connection closed. */
async function plainPing(port: number): Promise<string> {
  const socket = connectPlain(port, "127.0.0.1");
  let got = "";
  socket.on("data", (d: Buffer) => (got += d.toString("latin1")));
  // A reset is a refusal too: `close` follows either way (events.once would reject on the error).
  const closed = new Promise((resolve) => socket.on("close", resolve));
  socket.on("error", () => {});
  socket.write("PING\r\n");
  await closed;
  return got;
}

/** The serial number of the certificate the TLS server on `port` presents. */
async function servedSerial(port: number, tls: { ca: string; cert: string; key: string }): Promise<string> {
  const socket = connectTls({ port, host: "127.0.0.1", servername: SERVER_NAME, ...tls });
  socket.on("error", () => {});
  await once(socket, "secureConnect");
  const serial = socket.getPeerCertificate().serialNumber;
  socket.destroy();
  return serial;
}

test("docker with shardTls and tls: the rendered nodes, migration and proxy boot over TLS only", async (t) => {
  const dir = await tempDir("dredis-tls-boot-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pki = join(dir, "pki");
  const ca = await makeCertificateAuthority(pki, "ca", "test shards CA");
  const shards = await issueCertificate(ca, pki, "shards", {
    commonName: "shards",
    dnsNames: [SERVER_NAME, "localhost"],
  });
  const proxyCert = await issueCertificate(ca, pki, "proxy", { commonName: "proxy" });
  const pem = async (path: string) => readFile(path, "utf8");
  const tlsFiles = { ca: await pem(ca.cert), cert: await pem(shards.cert), key: await pem(shards.key) };

  const run = startRun();
  new DistributedRedis(
    "tb",
    {
      platform: "docker",
      password: PASSWORD,
      shardMemoryMb: 64,
      shardTls: {
        ca: tlsFiles.ca,
        certificate: tlsFiles.cert,
        privateKey: tlsFiles.key,
        serverName: SERVER_NAME,
      },
      tls: { certificate: await pem(proxyCert.cert), privateKey: await pem(proxyCert.key) },
    },
    run.opts,
  );
  const resources = await run.settle();

  const names = [
    "tb-shard-0-0",
    "tb-shard-0-1",
    "tb-shard-1-0",
    "tb-shard-1-1",
    "tb-shard-2-0",
    "tb-shard-2-1",
  ];
  const nodes = await Promise.all(names.map((name) => startNode(t, resources, name, dir)));
  const direct = (node: Node) => {
    const client = new Redis({
      port: node.port,
      password: PASSWORD,
      tls: { ...tlsFiles, servername: SERVER_NAME },
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 100,
    });
    client.on("error", () => {});
    t.after(() => client.disconnect());
    return client;
  };
  const admins = nodes.map(direct);
  for (const [i, node] of nodes.entries())
    await until(
      async () => (await admins[i]!.ping()) === "PONG",
      15_000,
      `${node.hostname} to answer over TLS`,
    );

  // TLS only: no plain listener, and the TLS port refuses plain RESP.
  for (const [i, node] of nodes.entries()) {
    assert.deepEqual(
      await admins[i]!.config("GET", "port"),
      ["port", "0"],
      `${node.hostname}: plain port closed`,
    );
    assert.doesNotMatch(await plainPing(node.port), /PONG/, `${node.hostname}: plain PING refused`);
  }
  // Healthy alone (a new node, before the migration joins it), over TLS.
  for (const node of nodes) assert.ok(healthy(node), `${node.hostname}: health check over TLS`);

  // The migration as rendered: its command with this machine's topology, files and ports.
  const migration = find(resources, CONTAINER, "tb-migration-run");
  const argv = migration.inputs["command"] as string[];
  const topologyAt = argv.indexOf("--topology") + 1;
  let topology = argv[topologyAt]!;
  for (const node of nodes)
    topology = topology.replaceAll(`"${node.hostname}:6379"`, `"127.0.0.1:${node.port}"`);
  assert.doesNotMatch(topology, /tb-shard/, "every node of the rendered topology is running here");
  const migrationRoot = join(dir, "migration");
  await writeFiles(migrationRoot, Object.fromEntries(uploadsOf(migration).map((u) => [u.file, u.content])));
  const localArgs = argv.map((arg, i) =>
    i === topologyAt ? topology : arg.replace(CONTAINER_PATHS, (p) => `${migrationRoot}${p}`),
  );
  assert.deepEqual(localArgs.slice(topologyAt + 1, topologyAt + 2), ["--tls"]);
  const env = Object.fromEntries(
    (migration.inputs["envs"] as string[]).map((e) => e.split(/=(.*)/s).slice(0, 2)),
  );
  const apply = spawnSync(process.execPath, [...dredisLaunch.argv, ...localArgs], {
    cwd: repoRoot,
    env: { ...process.env, ...dredisLaunch.env, ...env },
    encoding: "utf8",
    timeout: 180_000,
  });
  assert.equal(apply.status, 0, `dredis cluster apply over TLS:\n${apply.stdout}\n${apply.stderr}`);
  await until(() => nodes.every(healthy), 30_000, "every node healthy over TLS: cluster ok, replicas synced");

  // A proxy host on its rendered config: TLS to its clients, TLS to the shards with the client certificate.
  const proxy = find(resources, CONTAINER, "tb-proxy-0");
  const proxyRoot = join(dir, "proxy");
  const [port, adminPort] = (await freePorts(2)) as [number, number];
  const localProxy = localizer(proxyRoot, port);
  await writeFiles(proxyRoot, Object.fromEntries(uploadsOf(proxy).map((u) => [u.file, u.content])));
  const doc = parse(
    localProxy(uploadsOf(proxy).find((u) => u.file === "/etc/dredis/proxy.yaml")!.content),
  ) as {
    seeds: string[];
    listen: { port: number; host: string };
    admin: { port: number; host: string };
    tls: { port: number };
    backendTls: Record<string, string>;
  };
  assert.equal(doc.backendTls["serverName"], SERVER_NAME);
  doc.seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
  doc.listen = { host: "127.0.0.1", port };
  doc.tls.port = port;
  doc.admin = { host: "127.0.0.1", port: adminPort };
  const proxyYaml = join(proxyRoot, "etc/dredis/proxy.yaml");
  await writeFile(proxyYaml, stringify(doc));
  await spawnProxyHostFromFile(t, proxyYaml, {
    ready: async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200,
  });

  const client = new Redis({ port, password: PASSWORD, tls: { ca: tlsFiles.ca, servername: "localhost" } });
  client.on("error", () => {});
  t.after(() => client.disconnect());
  const masters = [0, 2, 4].map((i) => admins[i]!);
  const keys: string[] = [];
  const ranges = (await masters[0]!.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
  for (const [first, last] of ranges)
    for (let i = 0; ; i++)
      if (slotOf(`k${i}`) >= first && slotOf(`k${i}`) <= last) {
        keys.push(`k${i}`);
        break;
      }
  assert.equal(keys.length, 3, "one key per shard");
  for (const key of keys) assert.equal(await client.set(key, `v-${key}`), "OK");
  for (const key of keys) assert.equal(await client.get(key), `v-${key}`);
  const held = await Promise.all(masters.map(async (m) => ((await m.call("KEYS", "k*")) as string[]).length));
  assert.deepEqual(held, [1, 1, 1], "each shard holds its key, written through the proxy over TLS");

  // A renewed certificate (same CA, new serial) written where the node reads it is served without a restart.
  const node = nodes[1]!;
  const before = await servedSerial(node.port, tlsFiles);
  const renewed = await issueCertificate(ca, pki, "renewed", {
    commonName: "shards",
    dnsNames: [SERVER_NAME],
  });
  await writeFile(join(node.root, "data/.dredis/tls.key"), await pem(renewed.key));
  await writeFile(join(node.root, "data/.dredis/tls.crt"), await pem(renewed.cert));
  await until(
    async () => (await servedSerial(node.port, tlsFiles)) !== before,
    20_000,
    `${node.hostname} to serve the renewed certificate`,
  );
  // The script says so right after the CONFIG SET that made the new certificate served.
  await until(
    async () => /TLS certificate files changed: reloaded/.test(node.log()),
    10_000,
    `${node.hostname}'s entrypoint to log the reload`,
  );

  // SIGTERM on shard-0's master: the handover runs over TLS, and the proxy keeps serving.
  const master = nodes[0]!;
  process.kill(master.script.pid!, "SIGTERM");
  await master.exited;
  assert.match(master.log(), new RegExp(`handed over to 127\\.0\\.0\\.1:${nodes[1]!.port}`), master.log());
  assert.match(master.log(), /no client redirected for 0\.5 s/, master.log());
  assert.match(String(await admins[1]!.call("INFO", "replication")), /^role:master\r?$/m);
  for (const key of keys) assert.equal(await client.get(key), `v-${key}`);
});
