import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Redis } from "ioredis";
import { keySlot, slotOf } from "../../src/cluster/key-slot.ts";
import { startStandalone } from "../support/redis.ts";

test("key slots match redis's CLUSTER KEYSLOT, hash tag edge cases and random binary keys", async (t) => {
  const server = await startStandalone(t, { "cluster-enabled": true, "cluster-config-file": "nodes.conf" });
  const redis = new Redis({ host: server.host, port: server.port });
  t.after(() => redis.disconnect());
  const redisSlot = async (key: Buffer) => Number(await redis.call("CLUSTER", "KEYSLOT", key));

  const edgeCases = [
    "",
    "foo",
    "{user1000}.following",
    "foo{}{bar}", // empty first tag: the whole key is hashed (cluster-key-slot 1.1.2 gets this wrong)
    "foo{{bar}}zap",
    "foo{bar}{zap}",
    "{",
    "}",
    "{}",
    "a{b",
    "a}b{c}",
    "{a}",
    "日本語{キー}",
  ];
  for (const key of edgeCases) {
    const buf = Buffer.from(key);
    assert.equal(slotOf(buf), await redisSlot(buf), `key ${JSON.stringify(key)}`);
  }

  const samples = fc.sample(
    fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.stringMatching(/^[a-z{}]{0,12}$/).map((s) => new TextEncoder().encode(s)),
    ),
    { numRuns: 500, seed: 42 },
  );
  const pipeline = redis.pipeline();
  for (const s of samples) pipeline.call("CLUSTER", "KEYSLOT", Buffer.from(s));
  const expected = (await pipeline.exec())!.map(([, v]) => Number(v));
  samples.forEach((s, i) =>
    assert.equal(slotOf(s), expected[i], `key bytes ${Buffer.from(s).toString("hex")}`),
  );
});

test("a key inside a larger buffer hashes as the key alone", () => {
  const buf = Buffer.from("xx{tag}keyyy");
  assert.equal(keySlot(buf, 2, 10), slotOf("{tag}key"));
});
