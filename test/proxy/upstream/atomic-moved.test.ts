/**
 * An atomic slot handoff (Valkey 9) moves hundreds of slots to a known master at once, and the
 * first request to each answers MOVED: the proxy applies each at once but reads the whole map
 * once per burst, not once per MOVED. A MOVED to a master it did not know is read at once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SlotMapSource, type MapReader } from "../../../src/proxy/upstream/slot-map-source.ts";
import { silent, slotMap } from "./fakes.ts";
import { until } from "../../support/redis.ts";

const BEFORE = slotMap([
  [0, 8191, "a:1"],
  [8192, 16383, "b:1"],
]);
const AFTER = slotMap([
  [0, 511, "b:1"],
  [512, 8191, "a:1"],
  [8192, 16383, "b:1"],
]);

test("a burst of MOVED to a known master is applied at once and confirmed by one map read", async (t) => {
  let reads = 0;
  let current = BEFORE;
  const reader: MapReader = {
    read: async () => {
      reads++;
      return { map: current, nodeTimeoutMs: 1000, version: undefined };
    },
    close: () => {},
  };
  const source = new SlotMapSource(["a:1"], reader, 60_000, () => {}, silent, 0);
  t.after(() => source.close());
  await source.start();
  assert.equal(reads, 1);

  current = AFTER;
  for (let slot = 0; slot < 512; slot++) source.moved(slot, "b:1");
  assert.equal(source.map!.masterFor(0), "b:1", "the MOVED is applied before any read");
  assert.equal(source.map!.masterFor(511), "b:1");
  assert.equal(reads, 1, "no read per MOVED");
  await until(() => reads === 2, 5_000, "the confirming read");
  await new Promise((r) => setImmediate(r));
  assert.equal(reads, 2, "one read for the whole burst");
  assert.equal(source.map!.masterFor(300), "b:1");

  // A master the map does not know (a new shard, a failover): the map is read at once.
  source.moved(600, "c:1");
  assert.equal(reads, 3);
});
