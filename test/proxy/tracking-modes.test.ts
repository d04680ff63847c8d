import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster, startStandalone, until } from "../support/redis.ts";
import { proxyClient, startTestProxy } from "../support/proxy.ts";
import { TrackingErrors } from "../../src/errors.ts";
import { TrackingClient } from "./tracking-support.ts";

/** A standalone redis-server and a proxy over a cluster, side by side. */
async function pair(t: Parameters<typeof startCluster>[0]) {
  const [standalone, cluster] = await Promise.all([startStandalone(t), startCluster(t, { replicas: 0 })]);
  const proxy = await startTestProxy(t, cluster);
  return { ports: { redis: standalone.port, proxy: proxy.port } };
}

/** CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO sequences, replies compared byte for byte. */
const SCRIPTS: string[][][] = [
  [
    ["CLIENT", "TRACKINGINFO"],
    ["CLIENT", "GETREDIR"],
    ["CLIENT", "TRACKING", "off"],
    ["CLIENT", "TRACKING", "maybe"],
  ],
  [
    ["CLIENT", "TRACKING", "on", "PREFIX", "a"],
    ["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
    ["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"],
    ["CLIENT", "TRACKING", "on", "REDIRECT", "999999"],
    ["CLIENT", "TRACKING", "on", "REDIRECT", "abc"],
    ["CLIENT", "TRACKING", "on", "REDIRECT", "999999", "REDIRECT", "1"],
    ["CLIENT", "TRACKING", "on", "FOO"],
    ["CLIENT", "TRACKING", "on", "REDIRECT"],
    ["CLIENT", "CACHING", "yes"],
    ["CLIENT", "CACHING", "maybe"],
    ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "ab"],
    ["CLIENT", "TRACKINGINFO"],
  ],
  [
    ["CLIENT", "TRACKING", "on", "OPTIN"],
    ["CLIENT", "CACHING", "no"],
    ["CLIENT", "CACHING", "yes"],
    ["CLIENT", "TRACKINGINFO"],
    ["CLIENT", "TRACKINGINFO"],
    ["GET", "k"],
    ["CLIENT", "TRACKINGINFO"],
    ["CLIENT", "TRACKING", "on", "BCAST"],
    ["CLIENT", "TRACKING", "on", "OPTOUT"],
    ["CLIENT", "TRACKING", "on"],
    ["CLIENT", "TRACKINGINFO"],
    ["CLIENT", "TRACKING", "on", "NOLOOP"],
    ["CLIENT", "GETREDIR"],
    ["CLIENT", "TRACKINGINFO"],
    ["CLIENT", "CACHING", "yes"],
    ["CLIENT", "TRACKING", "off"],
    ["CLIENT", "TRACKING", "on", "OPTOUT"],
    ["CLIENT", "CACHING", "no"],
    ["CLIENT", "TRACKINGINFO"],
    ["CLIENT", "CACHING", "yes"],
    ["CLIENT", "TRACKING", "off"],
    ["CLIENT", "TRACKINGINFO"],
  ],
  [
    ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "b"],
    ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab"],
    ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "c"],
    ["CLIENT", "TRACKINGINFO"],
    ["CLIENT", "TRACKING", "on"],
    ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "c", "NOLOOP"],
    ["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "d", "NOLOOP"],
    ["CLIENT", "TRACKINGINFO"],
    ["CLIENT", "CACHING", "yes"],
    ["RESET"],
    ["CLIENT", "TRACKINGINFO"],
  ],
];

test("tracking: CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO answer as a standalone redis-server, byte for byte, in RESP2 and RESP3", async (t) => {
  const { ports } = await pair(t);
  for (const protocol of ["2", "3"]) {
    for (const script of SCRIPTS) {
      const replies: Record<string, string[]> = {};
      for (const [side, port] of Object.entries(ports)) {
        const client = await TrackingClient.connect(port);
        await client.command("HELLO", protocol);
        // One at a time: RESET drops the replies still due before it (noticed here; not this area's).
        replies[side] = [];
        for (const command of script) replies[side].push(String(await client.command(...command)));
        client.close();
      }
      assert.deepEqual(replies.proxy, replies.redis, `RESP${protocol}: ${JSON.stringify(script)}`);
    }
  }
});

interface Scenario {
  name: string;
  /** CLIENT TRACKING's arguments after "on". */
  options: string[];
  /** What the tracking client sends (reads, CACHING) before the writes. */
  reads: string[][];
  /** Written by another client. */
  writes: string[];
  /** Written by the tracking client itself. */
  ownWrites?: string[];
}

const SCENARIOS: Scenario[] = [
  {
    name: "default",
    options: [],
    reads: [
      ["GET", "d1"],
      ["GET", "d2"],
      ["MGET", "{d}3", "{d}4"],
    ],
    writes: ["d1", "{d}3", "d5"],
  },
  {
    name: "BCAST with prefixes",
    options: ["BCAST", "PREFIX", "user:", "PREFIX", "order:"],
    reads: [],
    writes: ["user:1", "order:9", "other:1", "use"],
  },
  { name: "BCAST over all keys", options: ["BCAST"], reads: [], writes: ["x1", "y2"] },
  {
    name: "OPTIN",
    options: ["OPTIN"],
    reads: [
      ["GET", "i1"],
      ["CLIENT", "CACHING", "yes"],
      ["GET", "i2"],
      ["GET", "i3"],
    ],
    writes: ["i1", "i2", "i3"],
  },
  {
    name: "OPTOUT",
    options: ["OPTOUT"],
    reads: [
      ["GET", "o1"],
      ["CLIENT", "CACHING", "no"],
      ["GET", "o2"],
      ["GET", "o3"],
    ],
    writes: ["o1", "o2", "o3"],
  },
  {
    name: "own writes",
    options: [],
    reads: [
      ["GET", "w1"],
      ["GET", "w2"],
    ],
    writes: [],
    ownWrites: ["w1"],
  },
];

/** Runs a scenario on one side; the keys its client is told of, once `expected` (or everything) arrived. */
async function run(
  t: Parameters<typeof startCluster>[0],
  port: number,
  scenario: Scenario,
  expected?: Set<string>,
) {
  const client = await TrackingClient.connect(port);
  t.after(() => client.close());
  await client.command("HELLO", "3");
  assert.equal(String(await client.command("CLIENT", "TRACKING", "on", ...scenario.options)), "+OK\r\n");
  await client.pipeline(scenario.reads);
  for (const key of scenario.ownWrites ?? []) await client.command("SET", key, "own");
  const writer = proxyClient(t, port);
  for (const key of scenario.writes) await writer.set(key, "changed");
  // On Redis the writes' invalidations are written before the writer's replies: they are all in.
  if (expected === undefined) {
    await client.command("PING");
    return new Set(client.invalidated);
  }
  await until(
    () => [...expected].every((k) => client.invalidated.has(k)),
    30_000,
    `${scenario.name}'s invalidations`,
  );
  return new Set(client.invalidated);
}

test("tracking: default, BCAST with and without prefixes, OPTIN and OPTOUT report the same keys as a standalone redis-server", async (t) => {
  const { ports } = await pair(t);
  for (const scenario of SCENARIOS) {
    const redis = await run(t, ports.redis, scenario);
    assert.ok(redis.size > 0, `${scenario.name}: the scenario must invalidate something`);
    const proxy = await run(t, ports.proxy, scenario, redis);
    assert.deepEqual([...proxy].sort(), [...redis].sort(), scenario.name);
  }
});

test("tracking: NOLOOP through the proxy still reports the client's own writes (an extra invalidation is safe), and the others' as Redis", async (t) => {
  const { ports } = await pair(t);
  const scenario: Scenario = {
    name: "NOLOOP",
    options: ["NOLOOP"],
    reads: [
      ["GET", "n1"],
      ["GET", "n2"],
    ],
    writes: ["n2"],
    ownWrites: ["n1"],
  };
  const redis = await run(t, ports.redis, scenario);
  assert.deepEqual([...redis], ["n2"]);
  const proxy = await run(t, ports.proxy, scenario, new Set(["n1", "n2"]));
  assert.deepEqual([...proxy].sort(), ["n1", "n2"]);
});

test("tracking: a RESP2 client's invalidations REDIRECTed to a connection subscribed to __redis__:invalidate arrive as Redis sends them", async (t) => {
  const { ports } = await pair(t);
  const frames: Record<string, string[]> = {};
  for (const [side, port] of Object.entries(ports)) {
    const target = await TrackingClient.connect(port);
    t.after(() => target.close());
    const id = String(await target.command("CLIENT", "ID")).slice(1, -2);
    target.subscriber = true;
    await target.command("SUBSCRIBE", "__redis__:invalidate");
    const client = await TrackingClient.connect(port);
    t.after(() => client.close());
    assert.equal(String(await client.command("CLIENT", "TRACKING", "on", "REDIRECT", id)), "+OK\r\n");
    assert.equal(String(await client.command("CLIENT", "GETREDIR")), `:${id}\r\n`);
    await client.pipeline([
      ["GET", "r1"],
      ["GET", "r2"],
    ]);
    const writer = proxyClient(t, port);
    await writer.set("r1", "changed");
    await until(() => target.invalidated.has("r1"), 30_000, `${side}: the redirected invalidation`);
    assert.ok(!target.invalidated.has("r2"));
    frames[side] = target.pushes.map(String);
  }
  assert.deepEqual(frames.proxy, frames.redis);
});

test("tracking: when the REDIRECT target is gone, the next invalidation tells the RESP3 client (tracking-redir-broken) and TRACKINGINFO shows broken_redirect, as Redis", async (t) => {
  const { ports } = await pair(t);
  const seen: Record<string, string[]> = {};
  for (const [side, port] of Object.entries(ports)) {
    const target = await TrackingClient.connect(port);
    const id = String(await target.command("CLIENT", "ID")).slice(1, -2);
    const client = await TrackingClient.connect(port);
    t.after(() => client.close());
    await client.command("HELLO", "3");
    await client.command("CLIENT", "TRACKING", "on", "REDIRECT", id);
    await client.command("GET", "b1");
    target.close();
    await until(
      async () => !String(await client.command("CLIENT", "LIST")).includes(`id=${id} `),
      10_000,
      "the target gone",
    );
    await proxyClient(t, port).set("b1", "changed");
    await until(() => client.pushes.length > 0, 30_000, `${side}: the broken-redirect push`);
    const info = String(await client.command("CLIENT", "TRACKINGINFO"));
    seen[side] = [...client.pushes.map(String), info].map((s) => s.replaceAll(`:${id}\r\n`, ":<id>\r\n"));
  }
  assert.deepEqual(seen.proxy, seen.redis);
});

test("tracking: a REDIRECT to a client of another worker of the host is refused with its own error, not Redis's 'does not exist'", async (t) => {
  const cluster = await startCluster(t, { replicas: 0 });
  const proxy = await startTestProxy(t, cluster);
  const client = await TrackingClient.connect(proxy.port);
  t.after(() => client.close());
  // Worker 1's client ids start at 1,000,000,001 (./src/proxy/context.ts); this worker is worker 0.
  assert.equal(
    String(await client.command("CLIENT", "TRACKING", "on", "REDIRECT", "1000000001")),
    `-${TrackingErrors.redirectOtherWorker(1000000001)}\r\n`,
  );
  assert.equal(
    String(await client.command("CLIENT", "TRACKING", "on", "REDIRECT", "424242")),
    `-${TrackingErrors.redirectMissing}\r\n`,
  );
  assert.equal(String(await client.command("CLIENT", "GETREDIR")), ":-1\r\n");
});
