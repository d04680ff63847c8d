import { test } from "node:test";
import assert from "node:assert/strict";
import { formatAddress, parseAddress } from "../../src/cluster/address.ts";

test("node addresses parse as the cluster spells them: host:port, [ipv6]:port, and a lone node's :port", () => {
  assert.deepEqual(parseAddress("10.0.0.5:6379"), { host: "10.0.0.5", port: 6379 });
  assert.deepEqual(parseAddress("redis-0.redis.svc:7000"), { host: "redis-0.redis.svc", port: 7000 });
  assert.deepEqual(parseAddress("[fd00::5]:6379"), { host: "fd00::5", port: 6379 });
  assert.deepEqual(parseAddress(":6379"), { host: "", port: 6379 });
  for (const [host, port] of [
    ["10.0.0.5", 6379],
    ["fd00::5", 6379],
  ] as const)
    assert.deepEqual(parseAddress(formatAddress(host, port)), { host, port });
});

test("a malformed address is refused with what was expected", () => {
  for (const bad of ["10.0.0.5", "10.0.0.5:", "10.0.0.5:port", "10.0.0.5:70000", "[fd00::5]"])
    assert.throws(
      () => parseAddress(bad),
      {
        name: "DredisError",
        message: `expected "host:port" (or "[ipv6]:port") with a port from 0 to 65535, got "${bad}"`,
      },
      bad,
    );
});
