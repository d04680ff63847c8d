import assert from "node:assert/strict";
import { test } from "node:test";
import { parseStackConfig } from "../../components/stack.ts";
import { stackFileConfig, stackSpec } from "./support/stack-config.ts";

test("the three stack files are valid and say what their names promise", () => {
  const dev = stackSpec("dev");
  assert.deepEqual(
    [dev.platform, dev.shards, dev.replicasPerShard, dev.proxyMode],
    ["docker", 3, 1, "load-balanced"],
  );
  const staging = stackSpec("staging");
  assert.deepEqual([staging.platform, staging.proxyMode], ["kubernetes", "master-backup"]);
  const prod = stackSpec("prod");
  assert.deepEqual(
    [prod.platform, prod.shards, prod.replicasPerShard, prod.proxyMode],
    ["kubernetes", 6, 2, "load-balanced"],
  );
});

// Values as the Pulumi CLI hands them to the program: strings.
const bad: [string, string, RegExp][] = [
  ["platform", "aws", /distributed-redis:platform: Invalid option/],
  ["shards", "2", /distributed-redis:shards: Redis Cluster needs at least 3 shards/],
  ["shards", "three", /distributed-redis:shards: Invalid input: expected number, received string/],
  ["replicasPerShard", "9", /distributed-redis:replicasPerShard: /],
  ["shardMemoryMb", "0", /distributed-redis:shardMemoryMb: /],
  ["persistence", "sometimes", /distributed-redis:persistence: /],
  ["storageGb", "0", /distributed-redis:storageGb: /],
  ["proxyMode", "active-active", /distributed-redis:proxyMode: /],
  ["proxyHosts", "0", /distributed-redis:proxyHosts: /],
  ["proxyWorkers", "0", /distributed-redis:proxyWorkers: /],
  ["port", "0", /distributed-redis:port: /],
  ["namespace", "Redis", /distributed-redis:namespace: /],
  ["serviceType", "NodePort", /distributed-redis:serviceType: /],
  ["fixedIp", "somewhere", /distributed-redis:fixedIp: expected an IPv4 address/],
  ["dockerSubnet", "172.28.0.0", /distributed-redis:dockerSubnet: /],
  ["podAntiAffinity", "maybe", /distributed-redis:podAntiAffinity: /],
  ["shard", "5", /distributed-redis:shard: unknown key/],
];

for (const [key, value, message] of bad) {
  test(`stack config ${key}: ${value} is refused, naming distributed-redis:${key}`, () => {
    assert.throws(
      () => parseStackConfig({ ...stackFileConfig("dev"), [key]: value }),
      (err: Error) => {
        assert.match(err.message, /^invalid stack config:\n/);
        assert.match(err.message, message);
        return true;
      },
    );
  });
}

test("name and password are read apart from the spec", () => {
  const spec = parseStackConfig({ ...stackFileConfig("dev"), name: "cache", password: "x" });
  assert.equal(spec.shards, 3);
});

test("previousPassword (set only while rotating) is read apart from the spec too", () => {
  const spec = parseStackConfig({ ...stackFileConfig("dev"), password: "new", previousPassword: "old" });
  assert.equal(spec.shards, 3);
});
