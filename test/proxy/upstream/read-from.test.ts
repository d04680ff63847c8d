import { test } from "node:test";
import assert from "node:assert/strict";
import { SlotMap, type ShardInfo } from "../../../src/cluster/slot-map.ts";
import { fieldsNeedingRestart, parseProxyConfig } from "../../../src/proxy/config.ts";
import {
  chooseReadNode,
  masterOffsetFromInfo,
  qualifyingReplicas,
  ReadFrom,
  readReplicaHealth,
  replicaHealthFromInfo,
  sessionReadFrom,
  type ReplicaHealth,
} from "../../../src/proxy/upstream/read-from.ts";
import { until } from "../../support/redis.ts";
import { FakeNetwork, FakeReader, Sink, connected, fakeRouter, request } from "./fakes.ts";

const always = () => true;

test("a client's READONLY raises `master` to replica-preferred; READWRITE (false) returns to the setting", () => {
  assert.equal(sessionReadFrom("master", false), ReadFrom.Master);
  assert.equal(sessionReadFrom("master", true), ReadFrom.ReplicaPreferred);
  assert.equal(sessionReadFrom("replica-preferred", false), ReadFrom.ReplicaPreferred);
  assert.equal(sessionReadFrom("replica", false), ReadFrom.Replica);
  assert.equal(sessionReadFrom("replica", true), ReadFrom.Replica);
});

test("reads go to a usable replica by affinity, else the master (preferred) or nowhere (replica)", () => {
  const replicas = ["r1:1", "r2:2"];
  assert.equal(chooseReadNode(ReadFrom.Master, "m:0", replicas, 0, always), "m:0");
  assert.equal(chooseReadNode(ReadFrom.ReplicaPreferred, "m:0", replicas, 0, always), "r1:1");
  assert.equal(chooseReadNode(ReadFrom.ReplicaPreferred, "m:0", replicas, 7, always), "r2:2");
  // The affine replica is failing: the next one takes the read.
  assert.equal(
    chooseReadNode(ReadFrom.Replica, "m:0", replicas, 0, (a) => a !== "r1:1"),
    "r2:2",
  );
  assert.equal(
    chooseReadNode(ReadFrom.ReplicaPreferred, "m:0", replicas, 0, () => false),
    "m:0",
  );
  assert.equal(chooseReadNode(ReadFrom.ReplicaPreferred, "m:0", undefined, 0, always), "m:0");
  assert.equal(
    chooseReadNode(ReadFrom.Replica, "m:0", replicas, 0, () => false),
    undefined,
  );
  assert.equal(chooseReadNode(ReadFrom.Replica, "m:0", undefined, 0, always), undefined);
});

function shard(master: string, replicas: string[], range: [number, number]): ShardInfo {
  return {
    ranges: [range],
    master: { id: master, address: master, role: "master", health: "online" },
    replicas: replicas.map((r) => ({ id: r, address: r, role: "replica", health: "online" })),
  };
}

test("only replicas with a known, up link within the lag bound qualify", () => {
  const map = new SlotMap([
    shard("a:1", ["a:2", "a:3", "a:4"], [0, 8191]),
    shard("b:1", ["b:2"], [8192, 16383]),
  ]);
  map.shards[0]!.replicas[2]!.health = "failed";
  map.shards[1]!.replicas[0]!.health = "loading";
  const health = new Map<string, ReplicaHealth>([
    ["a:2", { linkUp: true, lagBytes: 100 }],
    ["a:3", { linkUp: true, lagBytes: 101 }],
    ["a:4", { linkUp: true, lagBytes: 0 }],
    // b:2 unknown (did not answer): it does not qualify.
  ]);
  assert.deepEqual([...qualifyingReplicas(map, health, 100)], [["a:1", ["a:2"]]]);
  health.set("b:2", { linkUp: false, lagBytes: Infinity });
  assert.deepEqual([...qualifyingReplicas(map, health, 1000)], [["a:1", ["a:2", "a:3"]]]);
  // "loading" in CLUSTER SHARDS is gossip that lags; the replica's own state decides.
  health.set("b:2", { linkUp: true, lagBytes: 0 });
  assert.deepEqual(
    [...qualifyingReplicas(map, health, 1000)],
    [
      ["a:1", ["a:2", "a:3"]],
      ["b:1", ["b:2"]],
    ],
  );
});

const REPLICA_INFO = (link: string, offset: number, syncing = 0) =>
  [
    "# Replication",
    "role:slave",
    "master_host:127.0.0.1",
    "master_port:7000",
    `master_link_status:${link}`,
    "master_last_io_seconds_ago:1",
    `master_sync_in_progress:${syncing}`,
    `slave_repl_offset:${offset}`,
    `master_repl_offset:${offset}`,
    "",
  ].join("\r\n");

test("a replica's health comes from its INFO replication and its master's offset", () => {
  assert.deepEqual(replicaHealthFromInfo(REPLICA_INFO("up", 900), 1000), { linkUp: true, lagBytes: 100 });
  // Read after its master: it may be ahead of the offset read; never a negative lag.
  assert.deepEqual(replicaHealthFromInfo(REPLICA_INFO("up", 1200), 1000), { linkUp: true, lagBytes: 0 });
  assert.equal(replicaHealthFromInfo(REPLICA_INFO("down", 1000), 1000).linkUp, false);
  assert.equal(replicaHealthFromInfo(REPLICA_INFO("up", 1000, 1), 1000).linkUp, false);
  assert.equal(
    replicaHealthFromInfo("# Replication\r\nrole:master\r\nmaster_repl_offset:5\r\n", 5).linkUp,
    false,
  );
  assert.equal(masterOffsetFromInfo("# Replication\r\nrole:master\r\nmaster_repl_offset:12345\r\n"), 12345);
});

test("replica state is read from every shard; a silent replica or master leaves its replicas out", async () => {
  const map = new SlotMap([shard("a:1", ["a:2", "a:3"], [0, 8191]), shard("b:1", ["b:2"], [8192, 16383])]);
  const answers: Record<string, string> = {
    "a:1": "role:master\r\nmaster_repl_offset:500\r\n",
    "a:2": REPLICA_INFO("up", 450),
    // a:3 refuses; b:1 (the master) refuses, so b:2's lag is unknown.
    "b:2": REPLICA_INFO("up", 10),
  };
  const health = await readReplicaHealth(map, async (address) => {
    const text = answers[address];
    if (text === undefined) throw new Error("connection refused");
    return text;
  });
  assert.deepEqual([...health], [["a:2", { linkUp: true, lagBytes: 50 }]]);
});

/** Two shards, each a master with one replica whose state the test sets. */
class ReplicaReader extends FakeReader {
  health = new Map<string, ReplicaHealth>([
    ["a:2", { linkUp: true, lagBytes: 0 }],
    ["b:2", { linkUp: true, lagBytes: 0 }],
  ]);
  constructor() {
    super(new SlotMap([shard("a:1", ["a:2"], [0, 8191]), shard("b:1", ["b:2"], [8192, 16383])]));
  }
  async replicaHealth() {
    return this.health;
  }
}

const sentFrames = (net: FakeNetwork, address: string) =>
  net.sentTo(address).map((r) => r.frame.toString().split("\r\n")[2]);

test("router: a replica-preferred read goes to the replica, after a READONLY on its connection; the rest to the master", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new ReplicaReader());
  const sink = new Sink();
  const read = request(sink, 5, { readFrom: ReadFrom.ReplicaPreferred, readonly: true });
  const plain = request(sink, 5);
  const block = request(sink, 5, { readFrom: ReadFrom.ReplicaPreferred, readonly: true, parts: 3 });
  const blocking = request(sink, 5, { readFrom: ReadFrom.ReplicaPreferred, readonly: true, dedicated: true });
  for (const r of [read, plain, block, blocking]) router.dispatch(r);
  await connected();
  assert.deepEqual(sentFrames(net, "a:2"), ["READONLY", "GET"]);
  assert.equal(net.sentTo("a:2")[1], read);
  assert.ok([plain, block, blocking].every((r) => net.sentTo("a:1").includes(r)));
  assert.equal(net.sentTo("b:2").length, 0, "no connection to a replica before it serves a read");
});

test("router: a MOVED from a replica follows the redirect to the new master", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new ReplicaReader());
  const sink = new Sink();
  const read = request(sink, 5, { readFrom: ReadFrom.Replica, readonly: true });
  router.dispatch(read);
  await connected();
  const replica = net.to("a:2")[0]!;
  replica.reply("+OK\r\n"); // the READONLY
  replica.reply("-MOVED 5 b:1\r\n");
  await until(() => net.sentTo("b:1").includes(read), 5000, "the read at the new master");
  net.to("b:1")[0]!.reply("$1\r\nv\r\n");
  assert.equal(await sink.replyTo(read), "$1\r\nv\r\n");
});

test("router: reads in flight on a replica that dies go to its master, with no error", async (t) => {
  const net = new FakeNetwork();
  const reader = new ReplicaReader();
  const router = await fakeRouter(t, net, reader);
  const sink = new Sink();
  const reads = [1, 2, 3].map(() =>
    request(sink, 5, { readFrom: ReadFrom.ReplicaPreferred, readonly: true }),
  );
  for (const r of reads) router.dispatch(r);
  await connected();
  net.down.add("a:2");
  reader.health.delete("a:2");
  net.to("a:2")[0]!.fail();
  const master = net.to("a:1")[0]!;
  await until(() => reads.every((r) => master.inflight.includes(r)), 5000, "the reads at the master");
  for (let i = 0; i < reads.length; i++) master.reply("$1\r\nv\r\n");
  for (const r of reads) assert.equal(await sink.replyTo(r), "$1\r\nv\r\n");
  // Under `replica`, the shard with no qualifying replica answers an error naming its master.
  const strict = request(sink, 5, { readFrom: ReadFrom.Replica, readonly: true });
  router.dispatch(strict);
  assert.match(await sink.replyTo(strict), /^-ERR no replica of the shard of master a:1 may serve reads now/);
});

test("config: readFrom defaults to master; a bad value is named with the values expected", () => {
  const config = parseProxyConfig({ seeds: ["a:1"] });
  assert.equal(config.readFrom, "master");
  assert.equal(config.maxReplicaLagBytes, 1024 * 1024);
  assert.throws(
    () => parseProxyConfig({ seeds: ["a:1"], readFrom: "replicas" }),
    /readFrom: expected "master", "replica-preferred" or "replica"/,
  );
  // Reloadable: a changed readFrom needs no restart.
  assert.deepEqual(fieldsNeedingRestart(config, { ...config, readFrom: "replica" }), []);
});
