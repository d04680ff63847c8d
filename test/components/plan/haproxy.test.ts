import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { Redis } from "ioredis";
import { DredisError } from "../../../src/errors.ts";
import { freePorts } from "../../../src/local/ports.ts";
import { renderHaproxyCfg, type HaproxyArgs } from "../../../components/plan/haproxy.ts";
import { startStandalone, until, type Cleanup } from "../../support/redis.ts";

const valid: HaproxyArgs = {
  bind: { host: "0.0.0.0", port: 6380 },
  backends: [
    { name: "proxy-0", host: "172.30.0.20", port: 6380 },
    { name: "proxy-1", host: "172.30.0.21", port: 6380 },
  ],
  check: { intervalMs: 1000, fall: 3, rise: 2 },
};

function rejects(args: HaproxyArgs, field: string, message: RegExp): void {
  assert.throws(
    () => renderHaproxyCfg(args),
    (err: unknown) => {
      assert.ok(err instanceof DredisError, `expected a DredisError, got ${String(err)}`);
      assert.equal(err.code, "E_HAPROXY_ARGS");
      assert.ok(err.message.includes(`- ${field}: `), `expected the field ${field} in:\n${err.message}`);
      assert.match(err.message, message);
      return true;
    },
  );
}

describe("renderHaproxyCfg validation", () => {
  test("rejects an empty backend list", () => {
    rejects({ ...valid, backends: [] }, "backends", /at least one backend/);
  });
  test("rejects a discovery without slots and a check path that is not a path", () => {
    rejects({ ...valid, discover: { host: "proxies", port: 6380, slots: 0 } }, "discover.slots", /1\.\.1024/);
    rejects({ ...valid, httpCheck: { port: 9121, path: "readyz" } }, "httpCheck.path", /\/readyz/);
  });
  test("rejects duplicate backend names, naming the first holder", () => {
    const backends = [...valid.backends, { name: "proxy-0", host: "172.30.0.22", port: 6380 }];
    rejects({ ...valid, backends }, "backends.2.name", /"proxy-0" is also the name of backends\.0/);
  });
  test("rejects ports outside 1..65535", () => {
    rejects({ ...valid, bind: { host: "0.0.0.0", port: 0 } }, "bind.port", /1\.\.65535/);
    rejects({ ...valid, bind: { host: "0.0.0.0", port: 65536 } }, "bind.port", /1\.\.65535/);
    const backends = [{ name: "p", host: "172.30.0.20", port: 6380.5 }];
    rejects({ ...valid, backends }, "backends.0.port", /integer port/);
    rejects({ ...valid, statsPort: 70000 }, "statsPort", /1\.\.65535/);
  });
  test("rejects a stats port equal to the client port", () => {
    rejects({ ...valid, statsPort: 6380 }, "statsPort", /6380 is also bind\.port/);
  });
  test("rejects hosts that are neither IPv4 addresses nor names", () => {
    rejects(
      { ...valid, bind: { host: "300.1.1.1", port: 6380 } },
      "bind.host",
      /IPv4 address or a host name/,
    );
    rejects({ ...valid, backends: [{ name: "p", host: "a b", port: 1 }] }, "backends.0.host", /host name/);
  });
  test("rejects backend names HAProxy would misread", () => {
    rejects(
      { ...valid, backends: [{ name: "proxy 0", host: "h", port: 1 }] },
      "backends.0.name",
      /letters, digits/,
    );
  });
  test("rejects check timings and limits out of range", () => {
    rejects({ ...valid, check: { intervalMs: 5, fall: 3, rise: 2 } }, "check.intervalMs", /10\.\.2147483647/);
    rejects({ ...valid, check: { intervalMs: 1000, fall: 0, rise: 2 } }, "check.fall", /1\.\.100/);
    rejects({ ...valid, maxConnections: 0 }, "maxConnections", /1\.\.1000000/);
    rejects({ ...valid, timeouts: { clientMs: 2 ** 31 } }, "timeouts.clientMs", /2147483647/);
    rejects({ ...valid, password: "" }, "password", /non-empty/);
  });
});

async function haproxyCheck(t: TestContext, cfg: string): Promise<{ status: number | null; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), "dredis-haproxy-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "haproxy.cfg"), cfg);
  const result = spawnSync("haproxy", ["-c", "-f", join(dir, "haproxy.cfg")], {
    encoding: "utf8",
    timeout: 10_000,
  });
  return { status: result.status, output: result.stdout + result.stderr };
}

describe("haproxy -c accepts the generated config", () => {
  test("without warnings, with a password (any characters), stats and a backend given by name", async (t) => {
    const cfg = renderHaproxyCfg({
      ...valid,
      backends: [...valid.backends, { name: "proxy-2", host: "localhost", port: 6380 }],
      password: `p w"$HOME\\'#`,
      statsPort: 8404,
      maxConnections: 500,
      timeouts: { connectMs: 1000, clientMs: 60_000, serverMs: 60_000 },
    });
    const { status, output } = await haproxyCheck(t, cfg);
    assert.equal(status, 0, output);
    assert.doesNotMatch(output, /WARNING|ALERT/, output);
  });
  test("with hosts discovered through one DNS name and an HTTP readiness check: no host, no password", async (t) => {
    const cfg = renderHaproxyCfg({
      ...valid,
      backends: [],
      discover: { host: "localhost", port: 6380, slots: 64 },
      httpCheck: { port: 9121, path: "/readyz" },
    });
    assert.match(cfg, /^ {2}server-template proxy 1-64 localhost:6380 resolvers system init-addr none$/m);
    assert.match(cfg, /^ {2}default-server check port 9121 /m);
    assert.match(cfg, /^ {2}option httpchk GET \/readyz$/m);
    assert.doesNotMatch(cfg, /tcp-check|AUTH|^ {2}server /m);
    const { status, output } = await haproxyCheck(t, cfg);
    assert.equal(status, 0, output);
    assert.doesNotMatch(output, /WARNING|ALERT/, output);
  });
});

/** A process standing in for a proxy host: answers PING with +PONG on 127.0.0.1:port. */
interface ProxyHostStandIn {
  readonly port: number;
  readonly pid: number | undefined;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** Starts a stand-in, cleaned up with `t`. Swap for the real proxy host once it exists. */
type ProxyHostFactory = (t: Cleanup, options: { password?: string }) => Promise<ProxyHostStandIn>;

const redisServerStandIn: ProxyHostFactory = async (t, { password }) => {
  const server = await startStandalone(t);
  // Set after start: the harness's readiness probe sends a bare PING.
  if (password !== undefined) {
    const admin = new Redis({ host: server.host, port: server.port });
    await admin.config("SET", "requirepass", password);
    admin.disconnect();
  }
  return {
    port: server.port,
    get pid() {
      return server.pid;
    },
    kill: () => server.kill(),
    restart: () => server.restart(),
  };
};

interface Balancer {
  port: number;
  hosts: ProxyHostStandIn[];
  /**
   * Each backend's state on the stats page, by backend index: "UP" once its health check has
   * passed (HAProxy also shows UP before the first check), "DOWN", or the raw status and check.
   */
  statuses(): Promise<string[]>;
  waitStatus(index: number, status: "UP" | "DOWN", timeoutMs?: number): Promise<void>;
  /** A new client connection through HAProxy. */
  connect(password?: string): Redis;
  output(): string;
  waitAll(status: "UP" | "DOWN"): Promise<void>;
}

async function startBalancer(
  t: TestContext,
  options: { hostPassword?: string; checkPassword?: string; standIn?: ProxyHostFactory } = {},
): Promise<Balancer> {
  const standIn = options.standIn ?? redisServerStandIn;
  const hosts: ProxyHostStandIn[] = [];
  for (let i = 0; i < 3; i++) hosts.push(await standIn(t, { password: options.hostPassword }));
  const [port, statsPort] = (await freePorts(2)) as [number, number];
  const cfg = renderHaproxyCfg({
    bind: { host: "127.0.0.1", port },
    backends: hosts.map((h, i) => ({ name: `proxy-${i}`, host: "127.0.0.1", port: h.port })),
    password: options.checkPassword,
    check: { intervalMs: 200, fall: 2, rise: 2 },
    statsPort,
  });
  const dir = await mkdtemp(join(tmpdir(), "dredis-haproxy-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "haproxy.cfg"), cfg);

  const child = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const clients: Redis[] = [];
  t.after(async () => {
    for (const c of clients) c.disconnect();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
  });

  const statuses = async () => {
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/;csv`)).text();
    const [header, ...rows] = csv.replace(/^# /, "").trim().split("\n");
    const columns = header!.split(",");
    const [status, check] = [columns.indexOf("status"), columns.indexOf("check_status")];
    const byName = new Map(
      rows
        .map((r) => r.split(","))
        .map((f) => {
          const state =
            f[status] === "UP" && f[check] === "L7OK"
              ? "UP"
              : f[status] === "DOWN"
                ? "DOWN"
                : `${f[status]} ${f[check]}`;
          return [`${f[0]}/${f[1]}`, state];
        }),
    );
    return hosts.map((_, i) => byName.get(`proxies/proxy-${i}`) ?? "missing");
  };
  const balancer: Balancer = {
    port,
    hosts,
    statuses,
    output: () => output,
    async waitAll(status) {
      for (let i = 0; i < hosts.length; i++) await balancer.waitStatus(i, status);
    },
    async waitStatus(index, status, timeoutMs = 5000) {
      await until(
        async () => (await statuses())[index] === status,
        timeoutMs,
        `backend proxy-${index} to be ${status}`,
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}; statuses ${await statuses().catch(() => "?")}\n${output}`);
      });
    },
    connect(password) {
      const client = new Redis({
        host: "127.0.0.1",
        port,
        password,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on("error", () => {});
      clients.push(client);
      return client;
    },
  };
  return balancer;
}

/** Which stand-in serves this connection: the port its server reports. */
async function servedBy(client: Redis): Promise<number> {
  const info = String(await client.call("INFO", "server"));
  return Number(/tcp_port:(\d+)/.exec(info)![1]);
}

async function countServed(
  balancer: Balancer,
  connections: number,
  password?: string,
): Promise<Map<number, number>> {
  const served = new Map<number, number>();
  for (let i = 0; i < connections; i++) {
    const client = balancer.connect(password);
    await client.set("k", String(i));
    assert.equal(await client.get("k"), String(i));
    const port = await servedBy(client);
    served.set(port, (served.get(port) ?? 0) + 1);
  }
  return served;
}

describe("haproxy in front of proxy hosts", () => {
  test("spreads clients over live hosts, ejects a killed host and takes it back once restarted", async (t) => {
    const balancer = await startBalancer(t);
    await balancer.waitAll("UP");
    const [a, b, c] = balancer.hosts as [ProxyHostStandIn, ProxyHostStandIn, ProxyHostStandIn];

    // leastconn with connections held open: six clients land two on each host.
    const spread = await countServed(balancer, 6);
    assert.deepEqual(
      [a, b, c].map((h) => spread.get(h.port)),
      [2, 2, 2],
    );

    await b.kill();
    await balancer.waitStatus(1, "DOWN");
    // Once ejected, every new client is served, and never by the dead host.
    const after = await countServed(balancer, 12);
    assert.equal(after.get(b.port), undefined);
    assert.equal((after.get(a.port) ?? 0) + (after.get(c.port) ?? 0), 12);

    await b.restart();
    await balancer.waitStatus(1, "UP");
    // The restarted host has the fewest connections, so leastconn sends the next client there.
    const next = balancer.connect();
    assert.equal(await servedBy(next), b.port);
  });

  test("disconnects the clients of a host that hangs, once it is marked down", async (t) => {
    const balancer = await startBalancer(t);
    await balancer.waitAll("UP");
    const hung = balancer.hosts[0]!;
    const client = balancer.connect();
    assert.equal(
      await servedBy(client),
      hung.port,
      "an idle balancer sends the first client to the first host",
    );
    const closed = new Promise<void>((resolve) => client.once("end", () => resolve()));

    // A stopped process keeps its socket open: only the health check can tell it is gone.
    process.kill(hung.pid!, "SIGSTOP");
    try {
      await balancer.waitStatus(0, "DOWN");
      await Promise.race([
        closed,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("the client was not disconnected")), 3000),
        ),
      ]);
      const fresh = balancer.connect();
      assert.notEqual(await servedBy(fresh), hung.port);
    } finally {
      // Resumed so that the cleanup's SIGTERM can stop it.
      process.kill(hung.pid!, "SIGCONT");
    }
  });

  test("authenticates its health check when the hosts require a password", async (t) => {
    const balancer = await startBalancer(t, { hostPassword: "s3cret pass", checkPassword: "s3cret pass" });
    await balancer.waitAll("UP");
    const served = await countServed(balancer, 3, "s3cret pass");
    assert.equal(served.size, 3);
  });

  test("marks every host down when the check lacks the password the hosts require", async (t) => {
    const balancer = await startBalancer(t, { hostPassword: "s3cret" });
    await balancer.waitAll("DOWN");
    const client = balancer.connect();
    await assert.rejects(client.ping());
  });
});
