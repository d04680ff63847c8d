import { test } from "node:test";
import assert from "node:assert/strict";
import { slotOf } from "../../src/cluster/key-slot.ts";
import { fileCleanup, startCluster, startStandalone } from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { SlotMover } from "../support/slot-mover.ts";

type Command = string[];

interface Case {
  setup: Command[];
  command: Command;
  /** The key whose slot is half-migrated while the command runs. */
  moving: string;
  /** How to read each key afterwards. */
  reads: Command[];
}

/** Each case with keys of its own (its own slots), so each slot moves once from its first owner. */
const CASES: Case[] = [
  {
    setup: [
      ["SADD", "d1", "x"],
      ["SADD", "{d1}2", "y"],
      ["SADD", "a1", "z"],
    ],
    command: ["SUNIONSTORE", "d1", "a1", "{d1}2"],
    moving: "d1",
    reads: [
      ["SORT", "d1", "ALPHA"],
      ["SORT", "a1", "ALPHA"],
    ],
  },
  {
    setup: [
      ["SET", "a2", "v"],
      ["SET", "{a2}2", "w"],
      ["SET", "b2", "old"],
    ],
    command: ["RENAME", "a2", "b2"],
    moving: "a2",
    reads: [
      ["GET", "a2"],
      ["GET", "b2"],
      ["GET", "{a2}2"],
    ],
  },
  {
    setup: [
      ["RPUSH", "a3", "1", "2"],
      ["RPUSH", "{a3}2", "3"],
      ["RPUSH", "b3", "0"],
    ],
    command: ["LMOVE", "a3", "b3", "LEFT", "RIGHT"],
    moving: "a3",
    reads: [
      ["LRANGE", "a3", "0", "-1"],
      ["LRANGE", "b3", "0", "-1"],
    ],
  },
  {
    setup: [
      ["SET", "d4", "old"],
      ["SET", "{d4}2", "k"],
      ["SET", "a4", "v"],
    ],
    command: ["COPY", "a4", "d4", "REPLACE"],
    moving: "d4",
    reads: [
      ["GET", "d4"],
      ["GET", "a4"],
    ],
  },
];

test("crossSlot: emulate: commands whose source or destination slot is half-migrated answer and write as a standalone redis does", async (t) => {
  const hooks = fileCleanup();
  const cluster = await startCluster(hooks, { masters: 3, replicas: 0 });
  const proxy = await startTestProxy(
    hooks,
    cluster,
    { crossSlot: "emulate", retryBudgetMs: 20_000 },
    { busyProxy: true },
  );
  const reference = await startStandalone(hooks);
  const client = await RawClient.connect(proxy.port);
  const direct = await RawClient.connect(reference.port);
  t.after(() => {
    client.close();
    direct.close();
  });
  const mover = await SlotMover.create(cluster);
  for (const { setup, command, moving, reads } of CASES) {
    await client.pipeline(setup);
    await direct.pipeline(setup);
    const slot = slotOf(moving);
    const from = SlotMover.initialOwner(slot);
    const to = (from + 1) % 3;
    // Half the slot's keys move first: the command meets ASK or TRYAGAIN until the move finishes.
    await mover.start(slot, from, to);
    const reply = client.command(...command);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await mover.finish(slot, from, to);
    const label = command.join(" ");
    assert.equal(String(await reply), String(await direct.command(...command)), label);
    assert.deepEqual(
      (await client.pipeline(reads)).map(String),
      (await direct.pipeline(reads)).map(String),
      label,
    );
  }
});
