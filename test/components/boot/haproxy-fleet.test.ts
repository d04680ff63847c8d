/**
 * A load-balanced fleet as the Docker platform deploys it: real proxy hosts from the deployed
 * proxy.yaml, behind HAProxy running the haproxy.cfg rendered with the platform's arguments. Its
 * readiness check (HTTP GET /readyz on the admin port) passes against the real proxy; a host
 * killed outright is ejected and new clients are served by the others. The platform finds its
 * hosts through a network alias (DNS); here, with no DNS server, the same hosts are listed by
 * address instead, each on a loopback address of its own so that all share the ports as in Docker.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { test, type TestContext } from "node:test";
import { renderHaproxyCfg, type HaproxyArgs } from "../../../components/plan/haproxy.ts";
import { freePorts } from "../../../src/local/ports.ts";
import { proxyClient, spawnProxyHostFromFile, type HostStatus } from "../../support/proxy.ts";
import { startCluster, tempDir, until } from "../../support/redis.ts";
import { deployStack, dockerProxyYaml, localizeProxyYaml, requirePassword } from "./deployed.ts";

const PASSWORD = "lb s3cret: 'x\"";
const HOSTS = 3;
const HAPROXY_CFG = "/usr/local/etc/haproxy/haproxy.cfg";

/** What the Docker platform passes to renderHaproxyCfg for a load-balanced fleet `cache-proxy`. */
function dockerHaproxyArgs(port: number): HaproxyArgs {
  return {
    bind: { host: "0.0.0.0", port },
    backends: [],
    discover: { host: "cache-proxy-hosts", port, slots: 64 },
    httpCheck: { port: 9121, path: "/readyz" },
    check: { intervalMs: 2000, fall: 3, rise: 2 },
  };
}

type ServerState = Record<string, { status: string; checkStatus: string }>;

/** `show stat` over HAProxy's admin socket: each proxy host's status (UP/DOWN) and last check result. */
function serverStates(socketPath: string): Promise<ServerState> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let text = "";
    socket.on("connect", () => socket.write("show stat\n"));
    socket.on("data", (d) => (text += d.toString()));
    socket.on("error", reject);
    socket.on("end", () => {
      const [header, ...rows] = text.trim().split("\n");
      const columns = header!.replace(/^# /, "").split(",");
      const col = (row: string[], name: string) => row[columns.indexOf(name)] ?? "";
      const states: ServerState = {};
      for (const row of rows.map((r) => r.split(","))) {
        if (col(row, "pxname") !== "proxies" || /^(FRONTEND|BACKEND)$/.test(col(row, "svname"))) continue;
        states[col(row, "svname")] = { status: col(row, "status"), checkStatus: col(row, "check_status") };
      }
      resolve(states);
    });
  });
}

async function totalClients(host: string, adminPort: number): Promise<number> {
  const status = (await (await fetch(`http://${host}:${adminPort}/status`)).json()) as HostStatus;
  return status.workers.reduce((sum, w) => sum + (w?.clients ?? 0), 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startHaproxy(t: TestContext, dir: string, cfg: string) {
  const socketPath = join(dir, "haproxy.sock");
  await writeFile(join(dir, "haproxy.cfg"), cfg);
  // A second file adds only an admin socket to observe server states; the rendered file is as is.
  await writeFile(join(dir, "observe.cfg"), `global\n  stats socket ${socketPath} level admin\n`);
  const child = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg"), "-f", join(dir, "observe.cfg")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  return { socketPath, output: () => output };
}

test("HAProxy with the platform's config serves clients over real proxy hosts and ejects a killed one", async (t) => {
  const deployed = await deployStack("dev", { proxyMode: "load-balanced", proxyHosts: HOSTS }, PASSWORD);
  const { port: deployedPort } = deployed.spec;
  assert.equal(
    deployed.upload("cache-proxy-lb", HAPROXY_CFG),
    renderHaproxyCfg(dockerHaproxyArgs(deployedPort)),
    "the Docker platform's haproxy arguments changed: update dockerHaproxyArgs to match",
  );

  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  await requirePassword(cluster, PASSWORD);
  const dir = await tempDir("dredis-lb-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  // One client port and one admin port for every host, as in Docker, on 127.0.0.2, .3, ...
  const [port, adminPort, lbPort] = (await freePorts(3)) as [number, number, number];
  const hosts = await Promise.all(
    Array.from({ length: HOSTS }, async (_, i) => {
      const address = `127.0.0.${2 + i}`;
      const file = join(dir, `proxy-${i}.yaml`);
      await writeFile(
        file,
        localizeProxyYaml(dockerProxyYaml(deployed, i), {
          seeds: cluster.seeds,
          port,
          adminPort,
          host: address,
        }),
      );
      const host = await spawnProxyHostFromFile(t, file, {
        ready: async () => (await fetch(`http://${address}:${adminPort}/readyz`)).status === 200,
        readyTimeoutMs: 45_000,
      });
      return { name: `cache-proxy-${i}`, address, port, adminPort, host };
    }),
  );

  // The platform's arguments, with addresses moved to loopback and the hosts listed, not resolved.
  const { discover: _resolved, ...platformArgs } = dockerHaproxyArgs(deployedPort);
  const haproxy = await startHaproxy(
    t,
    dir,
    renderHaproxyCfg({
      ...platformArgs,
      bind: { host: "127.0.0.1", port: lbPort },
      backends: hosts.map((h) => ({ name: h.name, host: h.address, port: h.port })),
      httpCheck: { ...platformArgs.httpCheck!, port: adminPort },
    }),
  );
  let states: ServerState = {};
  // L7OK: the real proxy's /readyz answered 200.
  await until(
    async () => {
      states = await serverStates(haproxy.socketPath);
      return hosts.every((h) => states[h.name]?.status === "UP" && states[h.name]?.checkStatus === "L7OK");
    },
    15_000,
    "every proxy host to pass HAProxy's readiness check",
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nstates: ${JSON.stringify(states)}\n${haproxy.output()}`);
  });

  // leastconn spreads long-lived clients over every host.
  const clients = Array.from({ length: 2 * HOSTS }, () => proxyClient(t, lbPort, { password: PASSWORD }));
  for (const [i, client] of clients.entries()) assert.equal(await client.set(`lb-key-${i}`, `v${i}`), "OK");
  for (const h of hosts)
    assert.ok((await totalClients(h.address, h.adminPort)) >= 1, `${h.name} serves no client`);

  const victim = hosts[1]!;
  const status = (await (
    await fetch(`http://${victim.address}:${victim.adminPort}/status`)
  ).json()) as HostStatus;
  const pids = [victim.host.pid, ...status.workers.flatMap((w) => (w ? [w.pid] : []))];
  const killed = performance.now();
  await victim.host.killGroup();
  await until(() => pids.every((pid) => !alive(pid)), 5000, "every process of the killed host to be gone");

  await until(
    async () => (await serverStates(haproxy.socketPath))[victim.name]?.status.startsWith("DOWN") ?? false,
    15_000,
    `HAProxy to mark ${victim.name} DOWN`,
  );
  const ejectedMs = performance.now() - killed;
  t.diagnostic(`HAProxy marked the killed host DOWN after ${ejectedMs.toFixed(0)} ms`);
  console.log(`haproxy ejection after SIGKILL: ${ejectedMs.toFixed(0)} ms (check every 2 s, fall 3)`);
  const after = await serverStates(haproxy.socketPath);
  for (const h of hosts.filter((h) => h !== victim)) assert.equal(after[h.name]?.status, "UP", `${h.name}`);

  // New clients are served by the others, with no error, and see what was written before.
  for (let i = 0; i < 2 * HOSTS; i++) {
    const client = proxyClient(t, lbPort, { password: PASSWORD, lazyConnect: true });
    await client.connect();
    assert.equal(await client.get(`lb-key-${i}`), `v${i}`);
    assert.equal(await client.set(`lb-after-${i}`, `w${i}`), "OK");
  }
  const survivors = hosts.filter((h) => h !== victim);
  const served = await Promise.all(survivors.map((h) => totalClients(h.address, h.adminPort)));
  assert.ok(
    served.every((n) => n >= 1),
    `the surviving hosts should share the clients: ${served.join(", ")}`,
  );
});
