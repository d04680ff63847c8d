import { test } from "node:test";
import assert from "node:assert/strict";
import { SlotMap, type ShardInfo } from "../../../src/cluster/slot-map.ts";
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
