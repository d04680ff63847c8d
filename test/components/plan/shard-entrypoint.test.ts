/**
 * The shard entrypoint booted for real: the rendered script runs under `sh` with the real
 * redis-server and redis-cli, on the rendered redis.conf (only ports and dirs adapted to this
 * machine), as a 1 master + 1 replica cluster with a password.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { Cluster, Redis } from "ioredis";
import { freePorts } from "../../../src/local/ports.ts";
import { tempDir, until } from "../../support/redis.ts";
import { renderAuthConf, renderShardRedisConf } from "../../../components/plan/redis-conf.ts";
import {
  renderShardEntrypoint,
  shardEntrypointCommand,
  shardHealthCheckCommand,
} from "../../../components/plan/shard-entrypoint.ts";

const password = "entrypoint-password-01";

interface Node {
  port: number;
  script: ChildProcess;
  exited: Promise<number | null>;
  /** What the script said on stderr. */
  log(): string;
  admin: Redis;
}

/** Runs the entrypoint as a container would: its command, with REDISCLI_AUTH in the environment. */
async function startNode(t: TestContext, dir: string, port: number, busPort: number): Promise<Node> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "auth.conf"), renderAuthConf(password));
  const conf = join(dir, "redis.conf");
  await writeFile(
    conf,
    renderShardRedisConf({
      persistence: "aof",
      maxmemoryMb: 64,
      dataDir: dir,
      authConfPath: join(dir, "auth.conf"),
    }),
  );
  const script = renderShardEntrypoint({ configPath: conf, handoverTimeoutSeconds: 15, port });
  const [command, ...args] = shardEntrypointCommand(script, [
    ...["--port", String(port), "--bind", "127.0.0.1", "--cluster-port", String(busPort)],
    ...["--cluster-node-timeout", "2000", "--cluster-preferred-endpoint-type", "ip"],
    ...["--logfile", join(dir, "redis.log")],
  ]);
  // Its own process group, so that cleanup can reach redis-server even if the script is gone.
  const child = spawn(command!, args, {
    env: { ...process.env, REDISCLI_AUTH: password },
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  t.after(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  });
  const admin = new Redis({
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
  });
  admin.on("error", () => {});
  t.after(() => admin.disconnect());
  await until(async () => (await admin.ping()) === "PONG", 10_000, `redis-server on ${port} to answer`);
  return { port, script: child, exited, log: () => stderr, admin };
}

function healthy(port: number): boolean {
  const run = spawnSync("sh", ["-c", shardHealthCheckCommand(port)], {
    env: { ...process.env, REDISCLI_AUTH: password },
    // A probe that hangs is a failed probe, as for Docker and the kubelet.
    timeout: 5_000,
  });
  return run.status === 0;
}

/** A write still unanswered after 5 s counts as failed (a client would have given up). */
function withTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no reply within 5 s")), 5_000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const info = async (node: Node, section: string) => String(await node.admin.call("INFO", section));

test("the rendered script is valid sh, and bad options are refused with the option named", () => {
  const script = renderShardEntrypoint({ configPath: "/etc/redis/redis.conf", handoverTimeoutSeconds: 20 });
  const check = spawnSync("sh", ["-n"], { input: script, encoding: "utf8" });
  assert.equal(check.status, 0, check.stderr);
  // Kubernetes would substitute an environment variable for any of these in the pod's command.
  assert.doesNotMatch(script, /\$\([A-Za-z_][A-Za-z0-9_]*\)/);
  assert.throws(
    () => renderShardEntrypoint({ configPath: "/etc/redis/redis.conf", handoverTimeoutSeconds: 0 }),
    /handoverTimeoutSeconds must be a positive integer \(got 0\)/,
  );
  assert.throws(
    () => renderShardEntrypoint({ configPath: "redis.conf; rm -rf /", handoverTimeoutSeconds: 5 }),
    /configPath must be an absolute path/,
  );
  assert.throws(() => shardHealthCheckCommand(70000), /port must be an integer in 1\.\.65535 \(got 70000\)/);
  const tls = {
    caFile: "/etc/redis-tls/ca.crt",
    certFile: "/etc/redis-tls/tls.crt",
    keyFile: "/etc/redis-tls/tls.key",
  };
  const tlsScript = renderShardEntrypoint({
    configPath: "/etc/redis/redis.conf",
    handoverTimeoutSeconds: 20,
    tls,
  });
  const tlsCheck = spawnSync("sh", ["-n"], { input: tlsScript, encoding: "utf8" });
  assert.equal(tlsCheck.status, 0, tlsCheck.stderr);
  assert.doesNotMatch(tlsScript, /\$\([A-Za-z_][A-Za-z0-9_]*\)/);
  assert.throws(
    () =>
      renderShardEntrypoint({
        configPath: "/etc/redis/redis.conf",
        handoverTimeoutSeconds: 20,
        tls: { ...tls, keyFile: "/etc/redis tls/tls.key" },
      }),
    /keyFile must be an absolute path of letters, digits and _\.\/- \(got "\/etc\/redis tls\/tls\.key"\)/,
  );
  assert.throws(
    () =>
      renderShardEntrypoint({
        configPath: "/etc/redis/redis.conf",
        handoverTimeoutSeconds: 20,
        clientsLeaveTimeoutSeconds: 0.5,
      }),
    /clientsLeaveTimeoutSeconds must be a positive integer \(got 0\.5\)/,
  );
});

test("SIGTERM on a master hands its slots to the caught-up replica before it stops: no acknowledged write lost", async (t) => {
  const dir = await tempDir("dredis-entrypoint-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [masterPort, replicaPort, masterBus, replicaBus] = await freePorts(4);
  const master = await startNode(t, join(dir, "master"), masterPort!, masterBus!);
  const replica = await startNode(t, join(dir, "replica"), replicaPort!, replicaBus!);

  assert.equal(healthy(masterPort!), false, "a node outside any cluster is not healthy");
  await master.admin.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
  await until(() => healthy(masterPort!), 10_000, "the one-master cluster to be ok");
  await master.admin.set("before-replica", "1");
  await replica.admin.call("CLUSTER", "MEET", "127.0.0.1", String(masterPort), String(masterBus));
  const masterId = String(await master.admin.call("CLUSTER", "MYID"));
  // The replica's first sync waits a few seconds, long enough to see it unhealthy meanwhile.
  await master.admin.config("SET", "repl-diskless-sync", "yes");
  await master.admin.config("SET", "repl-diskless-sync-delay", "3");
  await until(
    async () => (await replica.admin.call("CLUSTER", "REPLICATE", masterId)) === "OK",
    10_000,
    "the replica to know its master",
  );
  // Its first sync is pending (the master delays it): a replica whose link is not up yet.
  await until(
    async () =>
      /^role:slave\r?$[\s\S]*^master_link_status:down\r?$/m.test(await info(replica, "replication")),
    10_000,
    "the replica to wait for its first sync",
  );
  assert.equal(healthy(replicaPort!), false, "a replica still syncing is not healthy");
  await until(() => healthy(replicaPort!) && healthy(masterPort!), 20_000, "both nodes to be healthy");

  const client = new Cluster(
    [masterPort!, replicaPort!].map((port) => ({ host: "127.0.0.1", port })),
    { redisOptions: { password } },
  );
  client.on("error", () => {});
  t.after(() => client.disconnect());

  const acknowledged: string[] = [];
  let errors = 0;
  const messages = new Set<string>();
  let stopped = false;
  let ackedAfterExit = 0;
  void master.exited.then(() => (stopped = true));
  const writer = (async () => {
    // Pipelined batches until well past the master's exit, bounded in count and time.
    const deadline = Date.now() + 30_000;
    for (let batch = 0; batch < 2000 && ackedAfterExit < 500 && Date.now() < deadline; batch++) {
      const keys = Array.from({ length: 50 }, (_, i) => `key:${batch}:${i}`);
      const results = await Promise.allSettled(
        keys.map((key) => withTimeout(client.set(key, `value-of-${key}`))),
      );
      results.forEach((r, i) => {
        if (r.status === "fulfilled") {
          acknowledged.push(keys[i]!);
          if (stopped) ackedAfterExit++;
        } else {
          errors++;
          messages.add(String((r.reason as Error).message));
        }
      });
    }
  })();

  await until(() => acknowledged.length >= 1000, 10_000, "writes to flow");
  process.kill(master.script.pid!, "SIGTERM");
  const code = await master.exited;
  await writer;
  t.diagnostic(
    `${acknowledged.length} writes acknowledged, ${errors} failed, ${ackedAfterExit} after the old master exited`,
  );

  assert.equal(code, 0, `the script exits 0:\n${master.log()}`);
  assert.match(master.log(), new RegExp(`handed over to 127\\.0\\.0\\.1:${replicaPort}`));
  assert.match(await info(replica, "replication"), /^role:master\r?$/m);
  assert.deepEqual([...messages].slice(0, 5), [], `${errors} writes failed: a client sees the handover`);
  assert.ok(ackedAfterExit >= 500, "writes keep being acknowledged after the old master is gone");
  const values = await replica.admin.pipeline(acknowledged.map((key) => ["get", key])).exec();
  const missing = acknowledged.filter((key, i) => values![i]![1] !== `value-of-${key}`);
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged keys missing on the new master`);
  assert.equal(await replica.admin.get("before-replica"), "1");
  assert.equal(healthy(replicaPort!), true, "the new master is healthy");

  // A master with no replica left just shuts down, and still exits 0.
  process.kill(replica.script.pid!, "SIGTERM");
  assert.equal(await replica.exited, 0, replica.log());
  assert.match(replica.log(), /no online replica: stopping without a handover/);
});
