/**
 * Routing at 32 shards (masters only, one machine): every key of a sample set through the proxy
 * lands on the master that owns its slot and nowhere else, reads back the same through the proxy
 * and from the owner, and cross-slot MSET/MGET touching most shards come back whole. Without a
 * single MOVED: a proxy that reached the owner only by following redirects would pass the value
 * checks, so the redirect counter must stay at zero.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { SLOTS, startCluster } from "../support/redis.ts";
import { proxyClient, startProxyHost } from "../support/proxy.ts";

const MASTERS = 32;
const SAMPLE = 2000;

/** The master startCluster gave this slot to (slots spread evenly, in master order). */
function ownerIndex(slot: number): number {
  for (let m = 0; m < MASTERS; m++) if (slot <= Math.floor(((m + 1) * SLOTS) / MASTERS) - 1) return m;
  throw new Error(`slot ${slot} out of range`);
}

async function redirects(adminPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("dredis_redirects_total"));
  assert.ok(line, `no dredis_redirects_total in /metrics:\n${text.slice(0, 500)}`);
  return Number(line.split(" ").pop());
}

test(
  `${MASTERS} shards: every key reaches its owner, cross-slot MSET/MGET are whole, no redirects`,
  { timeout: 90_000 },
  async (t) => {
    const cluster = await startCluster(t, { masters: MASTERS, replicas: 0 });
    const host = await startProxyHost(t, cluster, { workers: 2, logLevel: "warn" });
    const proxy = proxyClient(t, host.port);
    const owners = cluster.masters.map((m) => cluster.connect(m));

    const keys = Array.from({ length: SAMPLE }, (_, i) => `scale:${i}`);
    const setReplies = await Promise.all(keys.map((k, i) => proxy.set(k, `v${i}`)));
    assert.ok(setReplies.every((r) => r === "OK"));

    // Each master holds exactly the sample keys of its slots: none missing, none stored elsewhere.
    const expected = new Array<number>(MASTERS).fill(0);
    for (const k of keys) expected[ownerIndex(slotOf(k))]!++;
    assert.ok(
      expected.every((n) => n > 0),
      "the sample must reach every shard",
    );
    assert.deepEqual(await Promise.all(owners.map((o) => o.dbsize())), expected);

    const viaProxy = await Promise.all(keys.map((k) => proxy.get(k)));
    const fromOwner = await Promise.all(keys.map((k) => owners[ownerIndex(slotOf(k))]!.get(k)));
    assert.deepEqual(viaProxy, fromOwner);
    assert.deepEqual(
      viaProxy,
      keys.map((_, i) => `v${i}`),
    );

    // One MSET and one MGET across slots of (nearly) every shard.
    const multi = Array.from({ length: 200 }, (_, i) => `multi:${i}`);
    const shardsTouched = new Set(multi.map((k) => ownerIndex(slotOf(k))));
    assert.ok(shardsTouched.size >= MASTERS - 2, `the MSET touches only ${shardsTouched.size} shards`);
    assert.equal(await proxy.mset(...multi.flatMap((k) => [k, `m-${k}`])), "OK");
    assert.deepEqual(
      await proxy.mget(...multi),
      multi.map((k) => `m-${k}`),
    );
    assert.deepEqual(
      await Promise.all(multi.map((k) => owners[ownerIndex(slotOf(k))]!.get(k))),
      multi.map((k) => `m-${k}`),
    );

    assert.equal(await redirects(host.adminPort), 0);
  },
);
