/**
 * replicasCaughtUp against a real master and replica: the replica held back with SIGSTOP (it can
 * neither apply nor acknowledge anything), writes on the master. `WAIT 1` on a fresh connection
 * answers 1 all the same; the helper waits for the replica to be resumed, or times out saying why.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import type { RedisServer } from "../../src/local/redis-server.ts";
import { RawClient } from "./raw-client.ts";
import { startStandalone, until } from "./redis.ts";
import { parseReplication, replicasCaughtUp } from "./replication.ts";

const KEYS = 100;
const escape = (text: string) => text.replaceAll(".", "\\.");

/** A master with one replica that has finished its first sync, and a connection factory. */
async function pair(t: TestContext) {
  const master = await startStandalone(t, { "repl-diskless-sync-delay": 0 });
  const replica = await startStandalone(t);
  const connect = (server: RedisServer) => {
    const client = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    t.after(() => client.disconnect());
    return client;
  };
  const admin = connect(master);
  assert.equal(await connect(replica).call("REPLICAOF", master.host, master.port), "OK");
  await replicasCaughtUp(admin, { replicas: 1, timeoutMs: 30_000 });
  return { master, replica, admin, connect };
}

/** Stops the replica's process until `body` is done (also when it throws). */
async function whileStopped(replica: RedisServer, body: () => Promise<void>): Promise<void> {
  process.kill(replica.pid!, "SIGSTOP");
  try {
    await body();
  } finally {
    process.kill(replica.pid!, "SIGCONT");
  }
}

async function write(client: Redis): Promise<void> {
  for (let i = 0; i < KEYS; i++) await client.set(`k:${i}`, "v");
}

test("WAIT 1 on a fresh connection answers 1 while the replica is stopped; replicasCaughtUp returns only once it has resumed and applied the writes", async (t) => {
  const { master, replica, admin, connect } = await pair(t);
  let settled = false;
  let waiting: Promise<void> | undefined;
  let written = 0;
  await whileStopped(replica, async () => {
    await write(connect(master));
    const behind = parseReplication(String(await admin.call("INFO", "replication")));
    assert.equal(behind.replicas.length, 1);
    assert.ok(
      behind.replicas[0]!.offset < behind.offset,
      `the stopped replica acknowledged ${behind.replicas[0]!.offset} of ${behind.offset}`,
    );
    // WAIT as a connection's first command: the stopped replica cannot have acknowledged
    // anything, yet WAIT counts it, since the connection has no write of its own to wait for.
    const fresh = await RawClient.connect(master.port, master.host);
    t.after(() => fresh.close());
    assert.equal((await fresh.command("WAIT", "1", "10000")).toString(), ":1\r\n");
    written = behind.offset;

    // The replica acknowledges every second when it runs: the helper has not returned after the
    // master has gone two more seconds without an acknowledgement (its own count, `lag`).
    const lag = async () =>
      parseReplication(String(await admin.call("INFO", "replication"))).replicas[0]!.lag;
    const lagBefore = await lag();
    waiting = replicasCaughtUp(connect(master), { replicas: 1, timeoutMs: 60_000 }).finally(
      () => (settled = true),
    );
    waiting.catch(() => {});
    await until(
      async () => settled || (await lag()) >= lagBefore + 2,
      30_000,
      "two more seconds without an acknowledgement from the stopped replica",
    );
    assert.equal(settled, false, "replicasCaughtUp returned while the replica was stopped");
  });
  await waiting;
  const after = parseReplication(String(await admin.call("INFO", "replication")));
  assert.ok(
    after.replicas[0]!.offset >= written,
    `the replica acknowledged ${after.replicas[0]!.offset} of ${written}`,
  );
  assert.equal(await connect(replica).dbsize(), KEYS, "the replica has every key once the helper returned");
});

test("replicasCaughtUp times out naming the master, the offset awaited and what the replica acknowledged", async (t) => {
  const { master, replica, admin, connect } = await pair(t);
  await whileStopped(replica, async () => {
    await write(connect(master));
    const { replicas } = parseReplication(String(await admin.call("INFO", "replication")));
    await assert.rejects(
      replicasCaughtUp(admin, { replicas: 1, timeoutMs: 1_000 }),
      new RegExp(
        `timed out after 1000 ms waiting for the replicas of master ${escape(master.address)} to ` +
          `acknowledge offset \\d+: 1 of 1 replicas: ${escape(replica.address)} online offset=${replicas[0]!.offset} `,
      ),
    );
  });
});

test("replicasCaughtUp waits for as many replicas as it is told: one of two times out", async (t) => {
  const { admin } = await pair(t);
  await assert.rejects(
    replicasCaughtUp(admin, { replicas: 2, timeoutMs: 500 }),
    /waiting for the replicas of master .* 1 of 2 replicas: 127\.0\.0\.1:\d+ online offset=\d+/,
  );
});
