import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { evenQuotas } from "../../src/cluster/even-split.ts";
import { SLOT_COUNT } from "../../src/cluster/key-slot.ts";

const names = (n: number) => Array.from({ length: n }, (_, i) => `shard-${i}`);

test("quotas cover every slot and differ by at most one, whatever the shards own now", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.array(fc.integer({ min: 0, max: SLOT_COUNT }), { maxLength: 1000 }),
      (shards, owned) => {
        const targets = names(shards);
        const current = new Map(owned.slice(0, shards).map((count, i) => [targets[i]!, { length: count }]));
        const quotas = [...evenQuotas(targets, current).values()];
        assert.equal(quotas.length, shards);
        assert.equal(
          quotas.reduce((a, b) => a + b, 0),
          SLOT_COUNT,
        );
        assert.ok(Math.max(...quotas) - Math.min(...quotas) <= 1, `uneven: ${quotas}`);
      },
    ),
  );
});

test("a fresh split gives the remainder to the first shards; a grown one to the shards that own most", () => {
  assert.deepEqual([...evenQuotas(names(3)).values()], [5462, 5461, 5461]);
  const three = new Map([...evenQuotas(names(3))].map(([name, count]) => [name, { length: count }]));
  // 3 -> 5: the new shards get 3277 + 3276 = 6553 slots (the old three keep one extra each).
  assert.deepEqual([...evenQuotas(names(5), three).values()], [3277, 3277, 3277, 3277, 3276]);
});
