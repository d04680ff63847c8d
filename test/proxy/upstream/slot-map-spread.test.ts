/**
 * Where a proxy process reads the slot map: each starts at its own place in the list of masters
 * (and of seeds), so a fleet's refreshes and control connections spread over the masters instead
 * of all landing on the first one; one process keeps reading the same master while it answers.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { SlotMapSource, type MapReader } from "../../../src/proxy/upstream/slot-map-source.ts";
import { slotMap } from "./fakes.ts";

const MASTERS = ["a:1", "b:1", "c:1", "d:1"];
const MAP = slotMap([
  [0, 4095, "a:1"],
  [4096, 8191, "b:1"],
  [8192, 12287, "c:1"],
  [12288, 16383, "d:1"],
]);

/** The addresses one source reads at its first load and at three refreshes. */
async function readsOf(startAt: number, seeds: string[] = MASTERS): Promise<string[]> {
  const read: string[] = [];
  const reader: MapReader = {
    read: async (address) => {
      read.push(address);
      return { map: MAP, nodeTimeoutMs: 1000, version: undefined };
    },
    close: () => {},
  };
  const source = new SlotMapSource(seeds, reader, 60_000, () => {}, pino({ level: "silent" }), startAt);
  await source.start();
  for (let i = 0; i < 3; i++) await source.refresh();
  source.close();
  return read;
}

test("processes starting at different places read the map from different masters, each always the same one", async () => {
  assert.deepEqual(await readsOf(0), ["a:1", "a:1", "a:1", "a:1"]);
  assert.deepEqual(await readsOf(0.3), ["b:1", "b:1", "b:1", "b:1"]);
  assert.deepEqual(await readsOf(0.99), ["d:1", "d:1", "d:1", "d:1"]);
  // The first read goes to a seed, chosen the same way.
  assert.deepEqual((await readsOf(0.6, ["s1:1", "s2:1"])).slice(0, 2), ["s2:1", "c:1"]);
});

test("over many processes every master takes a share of the reads", async () => {
  const first = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const [, address] = await readsOf(i / 40);
    first.set(address!, (first.get(address!) ?? 0) + 1);
  }
  assert.deepEqual(
    [...first.entries()].sort(),
    MASTERS.map((m) => [m, 10]),
  );
});
