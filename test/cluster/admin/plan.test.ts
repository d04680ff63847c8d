import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { balanceMoves, evenQuotas } from "../../../src/cluster/admin/plan.ts";

const SLOTS = 16384;

/** A random ownership of all slots by owners o0..o{n-1}. */
const ownership = fc
  .tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }))
  .map(([owners, seed]) => {
    const current = new Map<string, number[]>(Array.from({ length: owners }, (_, i) => [`o${i}`, []]));
    let x = seed;
    for (let slot = 0; slot < SLOTS; slot++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      current.get(`o${x % owners}`)!.push(slot);
    }
    return current;
  });

const targetsFrom = (owners: number, keep: number, add: number) => [
  ...Array.from({ length: Math.min(keep, owners) }, (_, i) => `o${i}`),
  ...Array.from({ length: add }, (_, i) => `new${i}`),
];

test("a balanced plan leaves every target within one slot of the others and drains the rest", () => {
  fc.assert(
    fc.property(
      ownership,
      fc.integer({ min: 0, max: 8 }),
      fc.integer({ min: 0, max: 4 }),
      (current, keep, add) => {
        const targets = targetsFrom(current.size, keep, add);
        fc.pre(targets.length > 0);
        const moves = balanceMoves({ current, targets });
        const owner = new Map<number, string>();
        for (const [name, slots] of current) for (const slot of slots) owner.set(slot, name);
        const movedSlots = new Set<number>();
        for (const move of moves) {
          assert.equal(owner.get(move.slot), move.from, "a move starts where the slot is");
          assert.ok(!movedSlots.has(move.slot), "a slot moves at most once");
          movedSlots.add(move.slot);
          owner.set(move.slot, move.to);
        }
        const counts = targets.map(() => 0);
        for (const o of owner.values()) if (targets.includes(o)) counts[targets.indexOf(o)]!++;
        assert.equal(
          counts.reduce((a, b) => a + b, 0),
          SLOTS,
          "only targets own slots",
        );
        assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `uneven: ${counts}`);
        // Minimal: exactly the surplus over the quotas moves.
        const quotas = evenQuotas(targets, current);
        const surplus = [...current].reduce(
          (n, [name, slots]) => n + Math.max(0, slots.length - (quotas.get(name) ?? 0)),
          0,
        );
        assert.equal(moves.length, surplus);
      },
    ),
    { numRuns: 60 },
  );
});

test("a plan is deterministic and a balanced cluster plans no move", () => {
  fc.assert(
    fc.property(ownership, (current) => {
      const targets = [...current.keys()];
      const once = balanceMoves({ current, targets });
      assert.deepEqual(balanceMoves({ current, targets }), once);
      const owner = new Map<number, string>();
      for (const [name, slots] of current) for (const slot of slots) owner.set(slot, name);
      for (const m of once) owner.set(m.slot, m.to);
      const after = new Map(targets.map((name) => [name, [] as number[]]));
      for (const [slot, name] of owner) after.get(name)!.push(slot);
      assert.deepEqual(balanceMoves({ current: after, targets }), []);
    }),
    { numRuns: 30 },
  );
});

test("growing 3 even shards to 4 moves only a quarter of the slots, each new range contiguous per donor", () => {
  const quotas = evenQuotas(["a", "b", "c"]);
  let next = 0;
  const current = new Map(
    ["a", "b", "c"].map((name) => {
      const slots = Array.from({ length: quotas.get(name)! }, () => next++);
      return [name, slots];
    }),
  );
  const moves = balanceMoves({ current, targets: ["a", "b", "c", "d"] });
  assert.equal(moves.length, 4096);
  assert.ok(moves.every((m) => m.to === "d"));
  for (const donor of ["a", "b", "c"]) {
    const slots = moves.filter((m) => m.from === donor).map((m) => m.slot);
    assert.equal(slots.at(-1)! - slots[0]! + 1, slots.length, `${donor} gives one contiguous range`);
  }
});
