/**
 * A master-backup fleet as the Docker platform deploys it, in network namespaces: two hosts each
 * run a real proxy host (the deployed proxy.yaml) and keepalived (the deployed keepalived.conf,
 * whose health check is the plan's), over a password-protected Redis Cluster on a third host.
 * Only addresses are rewritten: the namespaces' /24 instead of the Docker network's.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { test, type TestContext } from "node:test";
import { parse } from "yaml";
import {
  canUseNetns,
  createSwitchedNetwork,
  type NsProcess,
  type SwitchedNetwork,
} from "../../support/netns.ts";
import { spawnProxyHostFromFile, type ProxyHostProcess } from "../../support/proxy.ts";
import { tempDir, until } from "../../support/redis.ts";
import { deployStack, dockerProxyYaml, localizeProxyYaml } from "./deployed.ts";

// The plan's health check sends AUTH inline, so the password keeps to the characters it allows.
const PASSWORD = "ka-s3cret.pw";
const SHARD_PORTS = [7001, 7002, 7003];
const KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf";

/** Runs redis-cli with the password inside a namespace and returns its output, trimmed. */
async function redisCli(net: SwitchedNetwork, ns: string, args: string[]): Promise<string> {
  return (await net.exec(ns, "redis-cli", ["-a", PASSWORD, "--no-auth-warning", ...args], 5000)).trim();
}

/** Three cluster-enabled redis-servers on the "shards" host, formed into one cluster. */
async function startShards(net: SwitchedNetwork, dir: string): Promise<string[]> {
  const shards = net.host("shards");
  for (const port of SHARD_PORTS) {
    const nodeDir = join(dir, `node-${port}`);
    await mkdir(nodeDir, { recursive: true });
    net.spawn(shards.ns, "redis-server", [
      ...["--port", String(port), "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", nodeDir],
      ...[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
      ],
      ...["--requirepass", PASSWORD, "--masterauth", PASSWORD, "--save", "", "--appendonly", "no"],
    ]);
  }
  const seeds = SHARD_PORTS.map((port) => `${shards.address}:${port}`);
  await until(
    async () => {
      for (const port of SHARD_PORTS)
        if ((await redisCli(net, shards.ns, ["-p", String(port), "PING"])) !== "PONG") return false;
      return true;
    },
    10_000,
    "the shard nodes to answer PING",
  );
  await net.exec(
    shards.ns,
    "redis-cli",
    [
      "--cluster",
      "create",
      ...seeds,
      "--cluster-replicas",
      "0",
      "--cluster-yes",
      "-a",
      PASSWORD,
      "--no-auth-warning",
    ],
    30_000,
  );
  await until(
    async () => {
      for (const port of SHARD_PORTS) {
        const info = await redisCli(net, shards.ns, ["-p", String(port), "CLUSTER", "INFO"]);
        if (!info.includes("cluster_state:ok")) return false;
      }
      return true;
    },
    15_000,
    "the cluster to be ok on every node",
  );
  return seeds;
}

/** The host's deployed keepalived.conf with the Docker network's addresses replaced by the namespaces'. */
function localizeKeepalivedConf(
  rendered: string,
  rewrite: { self: string; peer: string; vip: string },
): string {
  const self = /unicast_src_ip (\S+)/.exec(rendered)?.[1];
  const peer = /unicast_peer \{\s*(\S+)/.exec(rendered)?.[1];
  const vip = /virtual_ipaddress \{\s*(\S+)\//.exec(rendered)?.[1];
  assert.ok(self && peer && vip, `unexpected keepalived.conf shape:\n${rendered}`);
  const swap = new Map([
    [self, rewrite.self],
    [peer, rewrite.peer],
    [vip, rewrite.vip],
  ]);
  return rendered
    .replace(/\d+\.\d+\.\d+\.\d+/g, (ip) => swap.get(ip) ?? ip)
    .replace(new RegExp(`(${rewrite.vip.replace(/\./g, "\\.")})/\\d+`), "$1/24");
}

/** Polls (every ~10 ms) until `host` holds the VIP; returns the milliseconds since `since`. */
async function vipArrival(net: SwitchedNetwork, host: string, vip: string, since: number, timeoutMs: number) {
  while (performance.now() - since < timeoutMs) {
    if ((await net.addresses(host)).includes(vip)) return performance.now() - since;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the VIP did not reach ${host} within ${timeoutMs} ms`);
}

interface Pair {
  net: SwitchedNetwork;
  vip: string;
  /** The deployed client port, kept on every host. */
  port: number;
  proxies: Record<"a" | "b", ProxyHostProcess>;
  /** redis-cli with the password, from the client host, to the VIP. */
  viaVip(...args: string[]): Promise<string>;
  logs(): string;
}

/** Shards, the two deployed proxy hosts with keepalived, and a client, on one private /24. */
async function startPair(t: TestContext, subnet: string): Promise<Pair> {
  const deployed = await deployStack("dev", { proxyMode: "master-backup" }, PASSWORD);
  const port = deployed.spec.port;
  const net = await createSwitchedNetwork(t, { hosts: ["a", "b", "client", "shards"], subnet });
  const dir = await tempDir("dredis-vrrp-boot-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const vip = `${subnet}.100`;
  const seeds = await startShards(net, dir);

  const keepalived = {} as Record<"a" | "b", NsProcess>;
  const proxies = {} as Record<"a" | "b", ProxyHostProcess>;
  for (const [index, name] of (["a", "b"] as const).entries()) {
    const self = net.host(name);
    const peer = net.host(name === "a" ? "b" : "a");
    const rendered = dockerProxyYaml(deployed, index);
    const proxyFile = join(dir, `proxy-${name}.yaml`);
    const adminPort = (parse(rendered) as { admin: { port: number } }).admin.port;
    // Each host has its own namespace, so the deployed ports are kept; only the seeds change.
    await writeFile(proxyFile, localizeProxyYaml(rendered, { seeds, port, adminPort }));
    proxies[name] = await spawnProxyHostFromFile(t, proxyFile, {
      netns: self.ns,
      ready: async () => {
        const script = `exec 3<>/dev/tcp/127.0.0.1/${adminPort}; printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3; head -1 <&3`;
        return /^HTTP\/1\.[01] 200/.test(await net.exec(self.ns, "/bin/bash", ["-c", script], 3000));
      },
      readyTimeoutMs: 45_000,
    });

    const conf = join(dir, `keepalived-${name}.conf`);
    await writeFile(
      conf,
      localizeKeepalivedConf(deployed.upload(`cache-proxy-${index}-keepalived`, KEEPALIVED_CONF), {
        self: self.address,
        peer: peer.address,
        vip,
      }),
    );
    // The Docker container's flags, plus pid files of its own so the two instances never clash.
    keepalived[name] = net.spawn(self.ns, "keepalived", [
      ...["--dont-fork", "--log-console", "--vrrp", `--use-file=${conf}`],
      ...["-p", join(dir, `${name}.pid`), "-r", join(dir, `${name}-vrrp.pid`)],
    ]);
  }
  const logs = () => `--- a ---\n${keepalived.a!.output()}\n--- b ---\n${keepalived.b!.output()}`;

  const client = net.host("client").ns;
  const viaVip = (...args: string[]) => redisCli(net, client, ["-h", vip, "-p", String(port), ...args]);
  return { net, vip, port, proxies, viaVip, logs };
}

async function settledOnA(pair: Pair): Promise<void> {
  const { net, vip } = pair;
  await until(
    async () => (await net.addresses("a")).includes(vip) && !(await net.addresses("b")).includes(vip),
    15_000,
    "the VIP to settle on the preferred host a (its health check passing)",
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${pair.logs()}`);
  });
}

const skipUnlessRoot = (t: TestContext): boolean => {
  if (canUseNetns()) return false;
  t.skip("needs root and ip netns (network namespaces for VRRP)");
  return true;
};

test("the deployed master-backup pair serves through the VIP and fails over within 1 s of a cable cut", async (t) => {
  if (skipUnlessRoot(t)) return;
  const pair = await startPair(t, "10.213.31");
  const { net, vip, viaVip } = pair;
  await settledOnA(pair);
  for (let i = 0; i < 10; i++) assert.equal(await viaVip("SET", `vip-key-${i}`, `v${i}`), "OK");
  assert.equal(await viaVip("GET", "vip-key-3"), "v3");
  assert.match(
    (
      await net.exec(net.host("client").ns, "redis-cli", [
        "-h",
        vip,
        "-p",
        String(pair.port),
        "GET",
        "vip-key-3",
      ])
    ).trim(),
    /NOAUTH/,
    "the VIP endpoint requires the password",
  );

  const cut = performance.now();
  await net.setCable("a", false);
  const elapsed = await vipArrival(net, "b", vip, cut, 5000).catch((err: Error) => {
    throw new Error(`${err.message}\n${pair.logs()}`);
  });
  t.diagnostic(`VIP moved to the backup ${elapsed.toFixed(0)} ms after the master was cut off`);
  console.log(`keepalived failover with real proxy hosts (cable cut): ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed < 1000, `failover took ${elapsed.toFixed(0)} ms; the product promises under 1 s`);

  // A reconnecting client reaches host b's proxy, which serves the data written through host a.
  let last = "";
  await until(
    async () => (last = await viaVip("GET", "vip-key-3")) === "v3",
    5000,
    "a client of the VIP to be served by host b",
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last answer: ${last})`);
  });
  for (let i = 0; i < 10; i++) assert.equal(await viaVip("GET", `vip-key-${i}`), `v${i}`);
  assert.equal(await viaVip("SET", "after-failover", "yes"), "OK");
  assert.equal(await viaVip("GET", "after-failover"), "yes");
});

test("the VIP leaves a host whose proxy host is killed, and the backup's proxy serves", async (t) => {
  if (skipUnlessRoot(t)) return;
  const pair = await startPair(t, "10.213.32");
  const { net, vip, viaVip } = pair;
  await settledOnA(pair);
  assert.equal(await viaVip("SET", "before-kill", "kept"), "OK");

  const killed = performance.now();
  await pair.proxies.a.killGroup();
  // The plan's check fails twice (1 s apart), then host a enters FAULT and hands the VIP over.
  const elapsed = await vipArrival(net, "b", vip, killed, 8000).catch((err: Error) => {
    throw new Error(`${err.message}\n${pair.logs()}`);
  });
  console.log(`keepalived failover with real proxy hosts (proxy host killed): ${elapsed.toFixed(0)} ms`);
  assert.equal((await net.addresses("a")).includes(vip), false, "host a must give the VIP up");
  let last = "";
  await until(
    async () => (last = await viaVip("GET", "before-kill")) === "kept",
    5000,
    "host b to serve",
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last answer: ${last})`);
  });
});
