import { test } from "node:test";
import assert from "node:assert/strict";
import { applyTopology } from "../../../src/cluster/admin/apply.ts";
import {
  redisCliCheck,
  clusterClient,
  startEmptyNodes,
  topologyOf,
  writeKeys,
  wrongKeys,
  keyOf,
  valueOf,
} from "./cluster-fixture.ts";

const KEYS = 10_000;
const WORKERS = 8;
/** The loop stops when the migration ends, or at this bound if it never does. */
const MAX_LOOP_MS = 60_000;

test("clients reading and writing through the migration never see a lost or wrong value", async (t) => {
  const nodes = await startEmptyNodes(t, 8);
  const three = topologyOf(nodes, 3);
  const four = topologyOf(nodes, 4);
  await applyTopology(three);
  const client = clusterClient(t, three);
  await writeKeys(client, KEYS);

  let migrating = true;
  const deadline = Date.now() + MAX_LOOP_MS;
  const problems: string[] = [];
  let operations = 0;
  // Worker w owns keys w, w+WORKERS, ...: it alone writes them, so it knows each expected value.
  const worker = async (w: number) => {
    const expected = new Map<number, string>();
    for (let round = 0; migrating && Date.now() < deadline; round++) {
      const i = w + WORKERS * ((round * 7919) % (KEYS / WORKERS));
      const key = keyOf(i);
      try {
        if (round % 3 === 0) {
          const value = `w${w}-r${round}`;
          await client.set(key, value);
          expected.set(i, value);
        } else {
          const got = await client.get(key);
          const want = expected.get(i) ?? valueOf(i);
          if (got !== want) problems.push(`${key}: got ${got}, want ${want}`);
        }
        operations++;
      } catch (err) {
        problems.push(`${key}: ${(err as Error).message}`);
      }
    }
    return expected;
  };
  const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
  const result = await applyTopology(four).finally(() => (migrating = false));
  const written = await Promise.all(workers);

  assert.ok(result.moved.length >= 4096, `moved ${result.moved.length} slots`);
  assert.ok(operations > 100, `only ${operations} operations ran during the migration`);
  assert.deepEqual(problems.slice(0, 10), []);
  await redisCliCheck(four.shards[0]!.master);
  const overwritten = new Set(written.flatMap((m) => [...m.keys()]));
  const lost = (await wrongKeys(client, KEYS)).filter((i) => !overwritten.has(i));
  assert.deepEqual(lost, []);
  for (const m of written)
    for (const [i, value] of m)
      assert.equal(await client.get(keyOf(i)), value, `key ${keyOf(i)} keeps its last write`);
});
