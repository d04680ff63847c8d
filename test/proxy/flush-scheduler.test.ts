/**
 * FlushScheduler (src/proxy/io.ts): clients' replies are flushed at the end of the turn that made
 * them; backend connections a turn later, so the requests read in the next turn share their write.
 * A "turn" here is one round of immediates: an immediate set up while immediates run waits for the
 * next one, as the scheduler's own does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FlushScheduler } from "../../src/proxy/io.ts";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A backend connection's batching, as src/proxy/backend.ts does it. */
class Batch {
  out: string[] = [];
  writes: string[][] = [];
  private queued = false;
  constructor(private readonly scheduler: FlushScheduler) {}
  push(frame: string): void {
    this.out.push(frame);
    if (!this.queued) {
      this.queued = true;
      this.scheduler.addNextTurn(this);
    }
  }
  flush(): void {
    this.queued = false;
    if (this.out.length > 0) this.writes.push(this.out);
    this.out = [];
  }
}

test("add flushes at the end of this turn, addNextTurn at the end of the next", async () => {
  const scheduler = new FlushScheduler();
  const flushed: string[] = [];
  scheduler.addNextTurn({ flush: () => flushed.push("backend") });
  scheduler.add({ flush: () => flushed.push("client") });
  await nextTurn();
  assert.deepEqual(flushed, ["client"]);
  await nextTurn();
  assert.deepEqual(flushed, ["client", "backend"]);
  await nextTurn();
  assert.deepEqual(flushed, ["client", "backend"], "each is flushed once");
});

test("requests of two turns leave in one write, and a third turn's in the next", async () => {
  const scheduler = new FlushScheduler();
  const batch = new Batch(scheduler);
  batch.push("a");
  await nextTurn();
  assert.deepEqual(batch.writes, [], "held for the next turn's requests");
  batch.push("b");
  await nextTurn();
  assert.deepEqual(batch.writes, [["a", "b"]]);
  batch.push("c");
  await nextTurn();
  batch.push("d");
  await nextTurn();
  assert.deepEqual(batch.writes, [
    ["a", "b"],
    ["c", "d"],
  ]);
  await nextTurn();
  await nextTurn();
  assert.deepEqual(
    batch.writes,
    [
      ["a", "b"],
      ["c", "d"],
    ],
    "nothing more is written",
  );
});

test("a target queued again while it flushes is flushed a turn later, not lost", async () => {
  const scheduler = new FlushScheduler();
  const batch = new Batch(scheduler);
  const flush = batch.flush.bind(batch);
  let again = true;
  batch.flush = () => {
    flush();
    if (again) {
      again = false;
      batch.push("later"); // e.g. a request sent from the write's own path
    }
  };
  batch.push("first");
  await nextTurn();
  await nextTurn();
  assert.deepEqual(batch.writes, [["first"]]);
  await nextTurn();
  await nextTurn();
  assert.deepEqual(batch.writes, [["first"], ["later"]]);
});
