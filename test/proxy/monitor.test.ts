import { test, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { fileCleanup, startCluster, startStandalone, until, type TestCluster } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import type { ProxyWorker } from "../../src/proxy/worker.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let proxy: ProxyWorker;

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 0 });
  proxy = await startTestProxy(hooks, cluster);
});

/** One key per shard (the harness gives master m the slots from floor(m * 16384 / 3)). */
function keyPerShard(prefix: string): string[] {
  return [0, 1, 2].map((m) => {
    for (let n = 0; ; n++) {
      const key = `${prefix}:${n}`;
      const slot = slotOf(key);
      if (slot >= Math.floor((m * 16384) / 3) && slot < Math.floor(((m + 1) * 16384) / 3)) return key;
    }
  });
}

/** A MONITOR line as Redis writes it: +<seconds>.<micros> [<db> <client address>] "command" "arg"... */
const LINE = /^\+\d+\.\d{6} \[0 (127\.0\.0\.1:\d+|unix:\S+)\]( "(?:[^"\\]|\\.)*")+\r\n$/;

test("redis-cli -p PROXY monitor shows the commands that went to every shard", async (t) => {
  const cli = spawn("redis-cli", ["-p", String(proxy.port), "monitor"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.after(() => cli.kill());
  let output = "";
  cli.stdout.on("data", (d: Buffer) => (output += d.toString()));
  await until(() => output.startsWith("OK\n"), 10_000, `redis-cli's OK (output: ${output})`);
  const keys = keyPerShard("monitored");
  const writer = proxyClient(t, proxy.port);
  for (const key of keys) await writer.set(key, "v");
  for (const key of keys)
    await until(() => output.includes(`"set" "${key}" "v"`), 10_000, `the SET of ${key} in: ${output}`);
  const lines = output.split("\n").filter((l) => l.includes('"set" "monitored:'));
  assert.equal(lines.length, keys.length, "each command once");
  for (const line of lines) assert.match(`+${line}\r\n`, LINE);
});

test("MONITOR answers +OK and streams lines in Redis's own format, as a standalone redis-server does", async (t) => {
  const reference = await startStandalone(t);
  for (const port of [proxy.port, reference.port]) {
    const monitor = await RawClient.connect(port);
    t.after(() => monitor.close());
    assert.equal((await monitor.command("MONITOR")).toString(), "+OK\r\n");
    const writer = proxyClient(t, port);
    const keys = keyPerShard(`raw${port}`);
    for (const key of keys) await writer.set(key, "v w");
    const seen: string[] = [];
    while (seen.length < keys.length) {
      const [frame] = await monitor.next(1);
      const line = frame!.toString();
      assert.match(line, LINE);
      if (line.includes(`"set" "raw${port}:`)) seen.push(line);
    }
    assert.deepEqual(
      seen.map((l) => l.slice(l.indexOf("]") + 2)),
      keys.map((k) => `"set" "${k}" "v w"\r\n`),
    );
  }
});
