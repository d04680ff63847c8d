import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { describe, test, type TestContext } from "node:test";
import { Redis } from "ioredis";
import { DredisError } from "../../../src/errors.ts";
import { renderKeepalivedConf, type KeepalivedArgs } from "../../../components/plan/keepalived.ts";
import { proxyHealthCheckCommand } from "../../../components/plan/health-check.ts";
import {
  canUseNetns,
  createSwitchedNetwork,
  type NsProcess,
  type SwitchedNetwork,
} from "../../support/netns.ts";
import { startStandalone, until } from "../../support/redis.ts";

const valid: KeepalivedArgs = {
  instance: "dredis-proxy",
  interface: "eth0",
  virtualRouterId: 51,
  vip: "172.30.0.100",
  vipPrefixLength: 24,
  selfAddress: "172.30.0.11",
  peerAddresses: ["172.30.0.12"],
  priority: 150,
  healthCheck: { command: proxyHealthCheckCommand({ port: 6380 }), intervalSeconds: 1, fall: 2, rise: 1 },
};

function rejects(overrides: Partial<KeepalivedArgs>, field: string, message: RegExp): void {
  assert.throws(
    () => renderKeepalivedConf({ ...valid, ...overrides }),
    (err: unknown) => {
      assert.ok(err instanceof DredisError, `expected a DredisError, got ${String(err)}`);
      assert.equal(err.code, "E_KEEPALIVED_ARGS");
      assert.match(err.message, new RegExp(`- ${field.replace(".", "\\.")}: `));
      assert.match(err.message, message);
      return true;
    },
  );
}

describe("renderKeepalivedConf validation", () => {
  test("rejects a virtual router id outside 1..255", () => {
    rejects({ virtualRouterId: 0 }, "virtualRouterId", /integer in 1\.\.255/);
    rejects({ virtualRouterId: 256 }, "virtualRouterId", /integer in 1\.\.255/);
    rejects({ virtualRouterId: 1.5 }, "virtualRouterId", /integer in 1\.\.255/);
  });
  test("rejects a VIP, self or peer address that is not IPv4", () => {
    rejects({ vip: "172.30.0.300" }, "vip", /IPv4 address/);
    rejects({ vip: "proxy-vip" }, "vip", /IPv4 address/);
    rejects({ selfAddress: "::1" }, "selfAddress", /IPv4 address/);
    rejects({ peerAddresses: ["172.30.0"] }, "peerAddresses.0", /IPv4 address/);
  });
  test("rejects a VIP equal to a host address", () => {
    rejects({ vip: "172.30.0.11" }, "vip", /172\.30\.0\.11 is also a host address/);
    rejects({ vip: "172.30.0.12" }, "vip", /also a host address/);
  });
  test("rejects a VIP outside the host's network, unless it is a /32", () => {
    rejects({ vip: "172.31.0.100" }, "vip", /not on selfAddress 172\.30\.0\.11's network/);
    assert.match(
      renderKeepalivedConf({ ...valid, vip: "172.31.0.100", vipPrefixLength: 32 }),
      /172\.31\.0\.100\/32 dev eth0/,
    );
  });
  test("rejects peers that are missing, repeated or include this host", () => {
    rejects({ peerAddresses: [] }, "peerAddresses", /at least one peer/);
    rejects({ peerAddresses: ["172.30.0.12", "172.30.0.12"] }, "peerAddresses", /twice/);
    rejects({ peerAddresses: ["172.30.0.11"] }, "peerAddresses", /contains selfAddress/);
  });
  test("rejects priorities outside 1..254 and prefix lengths outside 1..32", () => {
    rejects({ priority: 255 }, "priority", /1\.\.254/);
    rejects({ priority: 0 }, "priority", /1\.\.254/);
    rejects({ vipPrefixLength: 33 }, "vipPrefixLength", /1\.\.32/);
  });
  test("rejects a password longer than 8 characters, or with spaces", () => {
    rejects({ authPassword: "123456789", advertIntervalSeconds: 1 }, "authPassword", /1\.\.8 printable/);
    rejects({ authPassword: "a b", advertIntervalSeconds: 1 }, "authPassword", /1\.\.8 printable/);
  });
  test("rejects a password with a sub-second advert interval, since only VRRPv2 authenticates", () => {
    rejects({ authPassword: "secret" }, "authPassword", /advertIntervalSeconds is 0\.2/);
  });
  test("rejects advert intervals keepalived cannot express", () => {
    rejects({ advertIntervalSeconds: 0 }, "advertIntervalSeconds", /0\.01\.\.40\.95/);
    rejects({ advertIntervalSeconds: 0.125 }, "advertIntervalSeconds", /multiple of 0\.01/);
  });
  test("rejects health checks keepalived cannot run as given", () => {
    const healthCheck = valid.healthCheck;
    rejects({ healthCheck: { ...healthCheck, command: " " } }, "healthCheck.command", /expected a command/);
    rejects(
      { healthCheck: { ...healthCheck, command: 'sh -c "x"' } },
      "healthCheck.command",
      /double quotes/,
    );
    rejects(
      { healthCheck: { ...healthCheck, intervalSeconds: 0.5 } },
      "healthCheck.intervalSeconds",
      /1\.\.4294/,
    );
    rejects({ healthCheck: { ...healthCheck, fall: 0 } }, "healthCheck.fall", /1\.\.1000/);
  });
  test("rejects instance and interface names keepalived would misread", () => {
    rejects({ instance: "dredis proxy" }, "instance", /letters, digits/);
    rejects({ interface: "a-very-long-interface0" }, "interface", /1\.\.15 characters/);
  });
  test("lists every bad field at once", () => {
    assert.throws(
      () => renderKeepalivedConf({ ...valid, priority: 0, vip: "x" }),
      /- vip: .*\n\s+- priority: |- priority: .*\n\s+- vip: /s,
    );
  });
  test("rejects health check ports and passwords that cannot be checked", () => {
    assert.throws(
      () => proxyHealthCheckCommand({ port: 0 }),
      /port must be an integer in 1\.\.65535 \(got 0\)/,
    );
    assert.throws(() => proxyHealthCheckCommand({ port: 6380, password: "a b" }), /may contain only/);
    assert.throws(() => proxyHealthCheckCommand({ port: 6380, password: "$x" }), /may contain only/);
  });
});

/** Runs a health check command as keepalived would: `/bin/bash -c '<script>'`, without a shell around it. */
function runHealthCheck(command: string): number | null {
  const script = /^\/bin\/bash -c '([^']*)'$/.exec(command);
  assert.ok(script, `unexpected command shape: ${command}`);
  return spawnSync("/bin/bash", ["-c", script[1]!], { timeout: 5000 }).status;
}

describe("proxyHealthCheckCommand", () => {
  test("passes while the host answers PING with +PONG, and fails once it stops", async (t) => {
    const server = await startStandalone(t);
    const command = proxyHealthCheckCommand({ port: server.port });
    assert.equal(runHealthCheck(command), 0);
    await server.stop();
    assert.notEqual(runHealthCheck(command), 0);
  });
  test("authenticates first when the host requires a password, and fails on a wrong or missing one", async (t) => {
    const server = await startStandalone(t);
    const admin = new Redis({ host: server.host, port: server.port });
    await admin.config("SET", "requirepass", "s3cret:pw");
    admin.disconnect();
    assert.equal(runHealthCheck(proxyHealthCheckCommand({ port: server.port, password: "s3cret:pw" })), 0);
    assert.notEqual(runHealthCheck(proxyHealthCheckCommand({ port: server.port, password: "wrong" })), 0);
    assert.notEqual(
      runHealthCheck(proxyHealthCheckCommand({ port: server.port })),
      0,
      "NOAUTH must fail the check",
    );
  });
});

describe("keepalived accepts the generated config", () => {
  for (const [label, overrides] of [
    ["VRRPv3, sub-second adverts", {}],
    ["VRRPv2 with a password", { authPassword: "s3cret!", advertIntervalSeconds: 1 }],
  ] as const) {
    test(`keepalived -t passes: ${label}`, async (t) => {
      const dir = await mkdtemp(join(tmpdir(), "dredis-keepalived-"));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const conf = join(dir, "keepalived.conf");
      await writeFile(conf, renderKeepalivedConf({ ...valid, ...overrides }));
      const result = spawnSync("keepalived", ["-t", "-f", conf], { encoding: "utf8", timeout: 10_000 });
      assert.equal(result.status, 0, `keepalived -t failed:\n${result.stderr}${result.stdout}`);
      // keepalived -t exits 0 on some problems it only warns about ("rounding", "ignoring").
      assert.equal(result.stderr.trim(), "", `keepalived -t warned:\n${result.stderr}`);
    });
  }
});

/** A process standing in for a proxy host: answers PING with +PONG on `port`, on all addresses. */
interface ProxyHostStandIn {
  /** What `INFO server` reports as run_id through any address of this host. */
  readonly runId: string;
  stop(): Promise<void>;
}

/** Starts a stand-in inside `host`'s namespace. Swap for the real proxy host once it exists. */
type ProxyHostFactory = (net: SwitchedNetwork, host: string, port: number) => Promise<ProxyHostStandIn>;

const redisServerStandIn: ProxyHostFactory = async (net, host, port) => {
  const ns = net.host(host).ns;
  const proc = net.spawn(ns, "redis-server", [
    "--port",
    String(port),
    "--bind",
    "0.0.0.0",
    "--protected-mode",
    "no",
    "--save",
    "",
    "--appendonly",
    "no",
    "--daemonize",
    "no",
  ]);
  let info = "";
  await until(
    async () => {
      info = await net.exec(ns, "redis-cli", ["-p", String(port), "INFO", "server"], 2000);
      return /run_id:/.test(info);
    },
    10_000,
    `redis-server in ${ns} to answer`,
  );
  return { runId: runIdOf(info), stop: () => proc.stop() };
};

function runIdOf(info: string): string {
  const match = /run_id:(\w+)/.exec(info);
  if (!match) throw new Error(`no run_id in INFO reply: ${info}`);
  return match[1]!;
}

const PORT = 6380;

interface Pair {
  net: SwitchedNetwork;
  vip: string;
  hosts: Record<"a" | "b", { standIn: ProxyHostStandIn; keepalived: NsProcess }>;
  /** The run_id of whoever answers a fresh connection to the VIP from the client namespace. */
  whoAnswersVip(): Promise<string>;
  /** Keepalived's logs, for assertion messages. */
  logs(): string;
}

/** Two proxy hosts (a preferred, b backup) running keepalived, and a client, on one private /24. */
async function startPair(
  t: TestContext,
  subnet: string,
  standIn: ProxyHostFactory = redisServerStandIn,
): Promise<Pair> {
  const net = await createSwitchedNetwork(t, { hosts: ["a", "b", "client"], subnet });
  const dir = await mkdtemp(join(tmpdir(), "dredis-vrrp-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const vip = `${subnet}.100`;
  const priorities = { a: 150, b: 100 };
  const hosts = {} as Pair["hosts"];
  for (const name of ["a", "b"] as const) {
    const self = net.host(name);
    const peer = net.host(name === "a" ? "b" : "a");
    const started = await standIn(net, name, PORT);
    const conf = join(dir, `${name}.conf`);
    await writeFile(
      conf,
      renderKeepalivedConf({
        instance: "dredis-proxy",
        interface: self.iface,
        virtualRouterId: 51,
        vip,
        vipPrefixLength: net.prefixLength,
        selfAddress: self.address,
        peerAddresses: [peer.address],
        priority: priorities[name],
        healthCheck: {
          command: proxyHealthCheckCommand({ port: PORT }),
          intervalSeconds: 1,
          fall: 2,
          rise: 1,
        },
      }),
    );
    // Foreground, VRRP only, logs on the console, and pid files of its own so instances never clash.
    const keepalived = net.spawn(self.ns, "keepalived", [
      ...["-n", "-l", "-D", "-G", "-P", "-f", conf],
      ...["-p", join(dir, `${name}.pid`), "-r", join(dir, `${name}-vrrp.pid`)],
    ]);
    hosts[name] = { standIn: started, keepalived };
  }
  const logs = () => `--- a ---\n${hosts.a.keepalived.output()}\n--- b ---\n${hosts.b.keepalived.output()}`;
  const whoAnswersVip = async () => {
    const info = await net.exec(
      net.host("client").ns,
      "redis-cli",
      ["-h", vip, "-p", String(PORT), "INFO", "server"],
      2000,
    );
    return runIdOf(info);
  };
  return { net, vip, hosts, whoAnswersVip, logs };
}

async function holdsVip(pair: Pair, host: "a" | "b"): Promise<boolean> {
  return (await pair.net.addresses(host)).includes(pair.vip);
}

/** Polls (every ~10 ms) until `host` holds the VIP; returns the milliseconds it took from `since`. */
async function vipArrival(pair: Pair, host: "a" | "b", since: number, timeoutMs: number): Promise<number> {
  while (performance.now() - since < timeoutMs) {
    if (await holdsVip(pair, host)) return performance.now() - since;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the VIP did not reach ${host} within ${timeoutMs} ms\n${pair.logs()}`);
}

async function settledOnA(pair: Pair): Promise<void> {
  await until(
    async () => (await holdsVip(pair, "a")) && !(await holdsVip(pair, "b")),
    15_000,
    "the VIP to settle on the preferred host a",
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${pair.logs()}`);
  });
}

const skipUnlessRoot = (t: TestContext): boolean => {
  if (canUseNetns()) return false;
  t.skip("needs root and ip netns");
  return true;
};

describe("keepalived in network namespaces", () => {
  test("the VIP moves to the backup within 1 s of the master being cut off, and clients follow it", async (t) => {
    if (skipUnlessRoot(t)) return;
    const pair = await startPair(t, "10.213.1");
    await settledOnA(pair);
    assert.equal(
      await pair.whoAnswersVip(),
      pair.hosts.a.standIn.runId,
      "the client should reach host a via the VIP",
    );

    const cut = performance.now();
    await pair.net.setCable("a", false);
    const elapsed = await vipArrival(pair, "b", cut, 5000);
    t.diagnostic(`VIP moved to the backup ${elapsed.toFixed(0)} ms after the master was cut off`);
    console.log(`keepalived failover (cable cut): ${elapsed.toFixed(0)} ms`);
    assert.ok(elapsed < 1000, `failover took ${elapsed.toFixed(0)} ms; the product promises under 1 s`);

    // A reconnecting client is served by the backup (its ARP entry follows the backup's gratuitous ARP).
    let servedBy = "";
    await until(
      async () => (servedBy = await pair.whoAnswersVip()) === pair.hosts.b.standIn.runId,
      3000,
      "a client of the VIP to be served by host b",
    ).catch((err: Error) => {
      throw new Error(`${err.message} (last answer from run_id ${servedBy || "nobody"})`);
    });

    // Plugged back in, the preferred host takes the VIP back, and the backup gives it up.
    await pair.net.setCable("a", true);
    await settledOnA(pair);
  });

  test("the VIP leaves a host whose proxy stops answering PING", async (t) => {
    if (skipUnlessRoot(t)) return;
    const pair = await startPair(t, "10.213.2");
    await settledOnA(pair);

    const stopped = performance.now();
    await pair.hosts.a.standIn.stop();
    // fall (2) failed checks at a 1 s interval, then the master's priority-0 advert hands over.
    const elapsed = await vipArrival(pair, "b", stopped, 6000);
    console.log(`keepalived failover (health check): ${elapsed.toFixed(0)} ms`);
    assert.equal(await holdsVip(pair, "a"), false, "host a must give the VIP up");
    assert.equal(await pair.whoAnswersVip(), pair.hosts.b.standIn.runId);
  });
});
