import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { once } from "node:events";
import { createConnection } from "node:net";
import { encodeCommand } from "../../src/resp/request-parser.ts";
import { startCluster } from "../support/redis.ts";
import { startProxyHost } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

const MB = 1024 * 1024;
/**
 * The stated bound for one worker: its baseline (~110 MB with tsx) plus the per-client limit
 * (64 MB) of requests in flight and replies unread, with room for V8's own garbage.
 */
const RSS_BOUND = 400 * MB;

test("a client pipelining 1 GB of SETs without reading: worker RSS stays bounded and another client's PING still answers", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const host = await startProxyHost(t, cluster, { workers: 1 });
  const worker = (await host.status()).workers[0]!;
  const baseline = rssBytes(worker.pid);

  const flood = createConnection({ host: "127.0.0.1", port: host.port });
  flood.on("error", () => {});
  t.after(() => flood.destroy());
  const value = Buffer.alloc(1024, "v");
  const batch = Buffer.concat(
    Array.from({ length: 64 }, (_, i) => encodeCommand(["SET", `flood:${i}`, value])),
  );
  let sent = 0;
  const deadline = Date.now() + 20_000;
  const writing = (async () => {
    while (sent < 1024 * MB && Date.now() < deadline) {
      sent += batch.length;
      if (!flood.write(batch)) {
        // Wait until the proxy reads again, or give up at the deadline: the proxy should stop reading.
        const left = deadline - Date.now();
        await Promise.race([once(flood, "drain"), new Promise((r) => setTimeout(r, Math.max(0, left)))]);
      }
    }
  })();

  const probe = await RawClient.connect(host.port);
  t.after(() => probe.close());
  let peak = baseline;
  const pings: number[] = [];
  // Probe for as long as the flood runs (it stops at 1 GB, or stalls once the proxy stops reading it).
  while (Date.now() < deadline && sent < 1024 * MB) {
    const started = process.hrtime.bigint();
    assert.equal((await probe.command("PING")).toString(), "+PONG\r\n");
    pings.push(Number(process.hrtime.bigint() - started) / 1e6);
    peak = Math.max(peak, rssBytes(worker.pid));
    await new Promise((r) => setTimeout(r, 250));
  }
  flood.destroy();
  await writing;
  pings.sort((a, b) => a - b);
  t.diagnostic(
    `sent ${(sent / MB).toFixed(0)} MB unread; worker RSS ${(baseline / MB).toFixed(0)} MB at start, peak ${(peak / MB).toFixed(0)} MB ` +
      `(bound ${RSS_BOUND / MB} MB); PING p50 ${pings[pings.length >> 1]!.toFixed(2)} ms, max ${pings.at(-1)!.toFixed(2)} ms over ${pings.length}`,
  );
  assert.ok(peak < RSS_BOUND, `worker RSS peaked at ${(peak / MB).toFixed(0)} MB`);
});

test("a client that never reads its large replies is paused at the per-client limit, not buffered without bound", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const limit = 16 * MB;
  const host = await startProxyHost(t, cluster, { workers: 1, limits: { maxPendingBytesPerClient: limit } });
  const worker = (await host.status()).workers[0]!;
  const setup = await RawClient.connect(host.port);
  t.after(() => setup.close());
  await setup.command("SET", "big", Buffer.alloc(64 * 1024, "b"));
  const baseline = rssBytes(worker.pid);

  // Each 22-byte GET asks for 64 KB: all 16,384 of them (one read holds thousands) would be 1 GB
  // of replies. The proxy stops taking commands at the in-flight and unread-bytes limits.
  const reader = createConnection({ host: "127.0.0.1", port: host.port });
  reader.on("error", () => {});
  t.after(() => reader.destroy());
  reader.pause();
  reader.write(Buffer.concat(Array.from({ length: 16_384 }, () => encodeCommand(["GET", "big"]))));
  let peak = baseline;
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 250));
    peak = Math.max(peak, rssBytes(worker.pid));
  }
  assert.equal((await setup.command("PING")).toString(), "+PONG\r\n");
  t.diagnostic(
    `limit ${limit / MB} MB: worker RSS ${(baseline / MB).toFixed(0)} MB before, peak ${(peak / MB).toFixed(0)} MB`,
  );
  // Bounded by the limits: 1,000 commands in flight x 64 KB, plus the unread bytes limit, plus slack.
  assert.ok(peak - baseline < 200 * MB, `RSS grew by ${((peak - baseline) / MB).toFixed(0)} MB`);
});
