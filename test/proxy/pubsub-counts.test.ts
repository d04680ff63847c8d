import { test, before } from "node:test";
import assert from "node:assert/strict";
import { encodeCommand } from "../../src/resp/request-parser.ts";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { fileCleanup, startCluster, startStandalone, until, type TestCluster } from "../support/redis.ts";
import { SlotMover } from "../support/slot-mover.ts";
import { startProxyHost, startTestProxy, type TestProxyHost } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { globMatch } from "../../src/proxy/busy/glob.ts";

const hooks = fileCleanup();
let cluster: TestCluster;
let reference: { port: number };

before(async () => {
  cluster = await startCluster(hooks, { masters: 3, replicas: 0 });
  reference = await startStandalone(hooks);
});

/** Sends a subscription command and reads the `replies` confirmations it brings. */
async function subscribe(client: RawClient, args: string[], replies: number): Promise<string[]> {
  client.send(encodeCommand(args));
  return (await client.next(replies)).map((b) => b.toString("latin1"));
}

test("(P)(UN)SUBSCRIBE confirmations are Redis's, byte for byte, in RESP2 and RESP3", async (t) => {
  const proxy = await startTestProxy(t, cluster);
  for (const protocol of ["2", "3"]) {
    const viaProxy = await RawClient.connect(proxy.port);
    const direct = await RawClient.connect(reference.port);
    t.after(() => {
      viaProxy.close();
      direct.close();
    });
    const steps: [string[], number][] = [
      [["HELLO", protocol], 1],
      [["UNSUBSCRIBE"], 1],
      [["PUNSUBSCRIBE"], 1],
      [["SUBSCRIBE", "news", "alerts", "news", "{x}a"], 4],
      [["PSUBSCRIBE", "n*", "__keyevent@0__:*", "n*"], 3],
      [["SUBSCRIBE", "__keyspace@0__:k"], 1],
      [["PING"], 1],
      [["PING", "hi"], 1],
      [["UNSUBSCRIBE", "alerts", "nope"], 2],
      [["PUNSUBSCRIBE", "n*"], 1],
      [["UNSUBSCRIBE"], 3],
      [["PUNSUBSCRIBE"], 1],
      [["UNSUBSCRIBE"], 1],
      [["PING"], 1],
    ];
    for (const [args, replies] of steps) {
      const [p, d] = await Promise.all([
        subscribe(viaProxy, args, replies),
        subscribe(direct, args, replies),
      ]);
      if (args[0] === "HELLO") continue; // the server's identity differs
      if (args.length === 1 && replies > 1) {
        // Unsubscribing from all goes in each server's own hash order: same names, same counts.
        const names = (frames: string[]) => frames.map((f) => f.split("\r\n")[4]).sort();
        const counts = (frames: string[]) => frames.map((f) => f.split("\r\n")[5]);
        assert.deepEqual(names(p), names(d), `RESP${protocol} ${args.join(" ")}`);
        assert.deepEqual(counts(p), counts(d), `RESP${protocol} ${args.join(" ")}`);
      } else assert.deepEqual(p, d, `RESP${protocol} ${args.join(" ")}`);
    }
  }
});

interface Subscriptions {
  channels?: string[];
  patterns?: string[];
}

/** Subscribers of every kind: a channel's, several patterns matching one channel, both at once. */
const SUBSCRIBERS: Subscriptions[] = [
  { channels: ["news", "alerts"] },
  { patterns: ["n*"] },
  { channels: ["news"], patterns: ["news*", "*s"] },
  { channels: ["sports", "{x}a"] },
  { patterns: ["*"] },
  { channels: ["alerts"], patterns: ["al?rts"] },
  { channels: ["weather", "__keyevent@0__:set"] },
  { channels: ["news", "weather"], patterns: ["w*", "__keyspace@0__:*"] },
];
const CHANNELS = ["news", "alerts", "sports", "{x}a", "weather", "nobody", "newsflash", "w"];

async function subscribeAll(client: RawClient, s: Subscriptions): Promise<void> {
  if (s.channels) await subscribe(client, ["SUBSCRIBE", ...s.channels, "end"], s.channels.length + 1);
  else await subscribe(client, ["SUBSCRIBE", "end"], 1);
  if (s.patterns) await subscribe(client, ["PSUBSCRIBE", ...s.patterns], s.patterns.length);
}

test("PUBLISH counts, PUBSUB NUMSUB, NUMPAT and CHANNELS as one Redis, with subscribers on two workers of two proxy hosts", async (t) => {
  const hosts: TestProxyHost[] = [await startProxyHost(t, cluster), await startProxyHost(t, cluster)];
  const viaProxy: RawClient[] = [];
  const direct: RawClient[] = [];
  for (const [i, s] of SUBSCRIBERS.entries()) {
    // Alternating hosts; each host's kernel hands its connections to its workers in turn.
    const p = await RawClient.connect(hosts[i % 2]!.port);
    const d = await RawClient.connect(reference.port);
    t.after(() => {
      p.close();
      d.close();
    });
    await subscribeAll(p, s);
    await subscribeAll(d, s);
    viaProxy.push(p);
    direct.push(d);
  }
  for (const host of hosts) {
    const { workers } = await host.status();
    assert.ok(
      workers.every((w) => w !== null && w.clients >= 2),
      `subscribers on every worker: ${JSON.stringify(workers)}`,
    );
  }

  const publishers = await Promise.all(hosts.map((h) => RawClient.connect(h.port)));
  const standalone = await RawClient.connect(reference.port);
  t.after(() => [...publishers, standalone].forEach((c) => c.close()));
  let published = 0;
  for (const channel of CHANNELS) {
    for (const publisher of publishers) {
      const message = `m${published++}`;
      const [p, d] = await Promise.all([
        publisher.command("PUBLISH", channel, message),
        standalone.command("PUBLISH", channel, message),
      ]);
      assert.equal(p.toString(), d.toString(), `PUBLISH ${channel}`);
    }
  }
  for (const publisher of publishers) {
    const pubsub = async (...args: string[]) =>
      Promise.all([publisher.command("PUBSUB", ...args), standalone.command("PUBSUB", ...args)]);
    const [numsubP, numsubD] = await pubsub("NUMSUB", ...CHANNELS, "end", "__keyevent@0__:set");
    assert.equal(numsubP.toString(), numsubD.toString(), "PUBSUB NUMSUB");
    const [numpatP, numpatD] = await pubsub("NUMPAT");
    assert.equal(numpatP.toString(), numpatD.toString(), "PUBSUB NUMPAT");
    // CHANNELS is a set: the order is each server's own.
    const [channelsP, channelsD] = await pubsub("CHANNELS");
    const lines = (b: Buffer) => b.toString().split("\r\n").slice(1).sort().join(",");
    assert.equal(lines(channelsP), lines(channelsD), "PUBSUB CHANNELS");
  }

  // Every subscriber got what its standalone twin got, once each.
  const [endP, endD] = await Promise.all([
    publishers[0]!.command("PUBLISH", "end", "end"),
    standalone.command("PUBLISH", "end", "end"),
  ]);
  assert.equal(endP.toString(), endD.toString(), "PUBLISH end");
  for (const [i, d] of direct.entries()) {
    // The last frames are "end"'s: its message and one pmessage per pattern matching it, which a
    // standalone Redis sends together. Through the proxy they may come before other messages
    // (taken from other nodes), so every frame is read on both sides before comparing.
    const ends =
      1 +
      (SUBSCRIBERS[i]!.patterns ?? []).filter((p) => globMatch(Buffer.from(p), Buffer.from("end"))).length;
    const frames: string[] = [];
    for (let seen = 0; seen < ends;) {
      const [frame] = await d.next(1);
      frames.push(frame!.toString("latin1"));
      if (frames.at(-1)!.endsWith("\r\nend\r\n$3\r\nend\r\n")) seen++;
    }
    // Messages taken from different nodes may interleave differently; none may be missing or twice.
    const got = (await viaProxy[i]!.next(frames.length)).map((b) => b.toString("latin1"));
    assert.deepEqual(got.sort(), frames.sort(), `subscriber ${i}'s messages`);
  }
});

test("a channel's subscriptions follow its slot to another master: PUBLISH still counts and delivers once", async (t) => {
  const proxy = await startTestProxy(t, cluster, { refreshIntervalMs: 200 });
  const channel = "moving-channel";
  const slot = slotOf(channel);
  const from = SlotMover.initialOwner(slot);
  const to = (from + 1) % 3;
  const subscriber = await RawClient.connect(proxy.port);
  const publisher = await RawClient.connect(proxy.port);
  t.after(() => [subscriber, publisher].forEach((c) => c.close()));
  await subscribe(subscriber, ["SUBSCRIBE", channel], 1);
  const numsubOn = async (m: number) =>
    ((await cluster.connect(cluster.masters[m]!).call("PUBSUB", "NUMSUB", channel)) as [string, number])[1];
  assert.equal(await numsubOn(from), 1);
  const mover = await SlotMover.create(cluster);
  await mover.start(slot, from, to);
  await mover.finish(slot, from, to);
  await until(
    async () => (await numsubOn(to)) === 1 && (await numsubOn(from)) === 0,
    30_000,
    "the subscription to move to the slot's new master",
  );
  assert.equal((await publisher.command("PUBLISH", channel, "after")).toString(), ":1\r\n");
  assert.equal(
    (await subscriber.next(1))[0]!.toString(),
    `*3\r\n$7\r\nmessage\r\n$${channel.length}\r\n${channel}\r\n$5\r\nafter\r\n`,
  );
  // Nothing twice: the next message is the next one published.
  await publisher.command("PUBLISH", channel, "next");
  assert.match((await subscriber.next(1))[0]!.toString(), /\$4\r\nnext\r\n$/);
});

test("PUBLISH inside MULTI goes with the transaction's keys, as on Redis (no CROSSSLOT for the channel)", async (t) => {
  const proxy = await startTestProxy(t, cluster);
  const viaProxy = await RawClient.connect(proxy.port);
  const direct = await RawClient.connect(reference.port);
  t.after(() => [viaProxy, direct].forEach((c) => c.close()));
  const block = [["MULTI"], ["SET", "{tx}k", "v"], ["PUBLISH", "some-channel", "m"], ["EXEC"]];
  const [p, d] = await Promise.all([viaProxy.pipeline(block), direct.pipeline(block)]);
  assert.deepEqual(
    p.map((b) => b.toString()),
    d.map((b) => b.toString()),
  );
});
