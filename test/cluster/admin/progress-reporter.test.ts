import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { progressReporter } from "../../../src/cluster/admin/progress-reporter.ts";

/** A writable that collects what is written (escape codes stripped); a terminal or not. */
function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let written = "";
  const stream = new Writable({
    write(chunk, _encoding, done) {
      written += String(chunk);
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  if (isTTY) Object.assign(stream, { isTTY: true, columns: 160 });
  // eslint-disable-next-line no-control-regex
  return { stream, text: () => written.replace(/\x1B(\[[0-9;?]*[A-Za-z]|[78])/g, "") };
}

/** The bar redraws on its own timer (10 per second): let it draw. */
const redraw = () => new Promise((resolve) => setTimeout(resolve, 250));

test("on a terminal, a migration shows a bar with slots, keys and rate, and steps print as lines", async () => {
  const { stream, text } = fakeStream(true);
  const report = progressReporter(stream);
  report({ type: "step", message: "adding shard-3" });
  report({ type: "migration-start", slots: 10, keys: 200, bytes: 2000 });
  report({ type: "keys-moved", slot: 3, moved: 20, totalMoved: 80, totalKeys: 200 });
  report({ type: "slot-done", slot: 3, from: "a:1", to: "b:1", slotsDone: 4, slotsTotal: 10 });
  await redraw();
  report({ type: "warning", message: "slot 7 is busy" });
  await redraw();
  report({ type: "migration-done", slots: 10, keys: 200, seconds: 1 });
  const out = text();
  assert.match(out, /adding shard-3\n/);
  assert.match(out, /4\/10 slots, 80\/200 keys/);
  assert.match(out, /warning: slot 7 is busy/);
  assert.match(out, /\[#{30}\] 10\/10 slots, 200\/200 keys, \d+ keys\/s/);
});

test("on a terminal, an atomic migration's bar shows the bytes its sources sent", async () => {
  const { stream, text } = fakeStream(true);
  const report = progressReporter(stream);
  report({ type: "migration-start", slots: 10, keys: 200, bytes: 2000 });
  report({
    type: "bytes-moved",
    bytesSent: 3 * 1024 * 1024,
    bytesPlanned: 2000,
    slotsDone: 0,
    slotsTotal: 10,
    pendingReplBytes: 0,
  });
  await redraw();
  report({ type: "migration-done", slots: 10, keys: 200, seconds: 1 });
  assert.match(text(), /10\/10 slots, 200\/200 keys, \d+ keys\/s, 3\.0 MB sent/);
});

test("off a terminal, progress is JSON lines a log collector can read", () => {
  const { stream, text } = fakeStream(false);
  const report = progressReporter(stream);
  report({ type: "step", message: "adding shard-3" });
  const line = JSON.parse(text().trim()) as { type: string; message: string; time: string };
  assert.equal(line.type, "step");
  assert.equal(line.message, "adding shard-3");
  assert.ok(!Number.isNaN(Date.parse(line.time)));
});
