import assert from "node:assert/strict";
import { test } from "node:test";
import { parseClusterSpec } from "../../../components/plan/spec.ts";

const valid = { platform: "docker" };

test("defaults describe a 3 x 1 load-balanced cluster", () => {
  const spec = parseClusterSpec(valid, "args");
  assert.equal(spec.shards, 3);
  assert.equal(spec.replicasPerShard, 1);
  assert.equal(spec.proxyMode, "load-balanced");
  assert.equal(spec.redisImage, "redis:7.2");
});

const cases: [string, Record<string, unknown>, RegExp][] = [
  ["platform", { platform: "aws" }, /- platform: Invalid option: expected one of "docker"\|"kubernetes"/],
  ["shards", { shards: 2 }, /- shards: Redis Cluster needs at least 3 shards/],
  ["shards (not an integer)", { shards: 3.5 }, /- shards: /],
  ["replicasPerShard", { replicasPerShard: -1 }, /- replicasPerShard: /],
  ["shardMemoryMb", { shardMemoryMb: 1 }, /- shardMemoryMb: /],
  ["persistence", { persistence: "always" }, /- persistence: /],
  ["storageGb", { storageGb: 0 }, /- storageGb: /],
  ["storageClass", { storageClass: "" }, /- storageClass: /],
  ["proxyMode", { proxyMode: "round-robin" }, /- proxyMode: /],
  ["proxyHosts", { proxyHosts: 0 }, /- proxyHosts: /],
  [
    "proxyHosts (master-backup)",
    { proxyMode: "master-backup", proxyHosts: 3 },
    /- proxyHosts: master-backup runs exactly 2/,
  ],
  ["proxyWorkers", { proxyWorkers: 100 }, /- proxyWorkers: /],
  ["port", { port: 70000 }, /- port: /],
  ["image", { image: "" }, /- image: /],
  ["image (kubernetes)", { platform: "kubernetes" }, /- image: required on kubernetes/],
  ["redisImage", { redisImage: "" }, /- redisImage: /],
  ["haproxyImage", { haproxyImage: 7 }, /- haproxyImage: /],
  ["namespace", { namespace: "Team_A" }, /- namespace: expected lower-case letters/],
  ["clusterDomain", { clusterDomain: "" }, /- clusterDomain: /],
  ["serviceType", { serviceType: "NodePort" }, /- serviceType: /],
  ["fixedIp", { fixedIp: "10.0.0" }, /- fixedIp: expected an IPv4 address/],
  ["dockerSubnet", { dockerSubnet: "10.0.0.0/8" }, /- dockerSubnet: expected an IPv4 CIDR from \/16 to \/24/],
  ["podAntiAffinity", { podAntiAffinity: "never" }, /- podAntiAffinity: /],
  ["an unknown key", { shard: 4 }, /- shard: unknown key/],
];

for (const [key, patch, message] of cases) {
  test(`a bad ${key} is refused, naming the key`, () => {
    assert.throws(
      () => parseClusterSpec({ ...valid, ...patch }, "args"),
      (err: Error) => {
        assert.match(err.message, /^invalid args:\n/);
        assert.match(err.message, message);
        return true;
      },
    );
  });
}

test("the key prefix names stack config keys as Pulumi spells them", () => {
  assert.throws(
    () => parseClusterSpec({ ...valid, shards: 1 }, "stack config", "distributed-redis:"),
    /- distributed-redis:shards: Redis Cluster needs at least 3 shards/,
  );
});
