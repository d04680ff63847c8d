/**
 * A backend connection's writes (src/proxy/backend.ts): the requests for one node wait a turn for
 * the next turn's, so that one write, and one read on the node, carries both; a batch already long
 * goes out in its own turn. The reads are counted on a real Redis (INFO stats
 * total_reads_processed).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { FlushScheduler } from "../../src/proxy/io.ts";
import { ConnectionState, SocketConnection, type BackendEvents } from "../../src/proxy/backend.ts";
import { Request } from "../../src/proxy/request.ts";
import { encodeCommand } from "../../src/resp/request-parser.ts";
import { startStandalone, until } from "../support/redis.ts";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("a request waits a turn and shares the next turn's write (one read on the node); 16 do not wait", async (t) => {
  const server = await startStandalone(t);
  const admin = new Redis({ port: server.port, lazyConnect: true });
  await admin.connect();
  t.after(() => admin.disconnect());
  let answered = 0;
  const events: BackendEvents = {
    onReply: () => void answered++,
    onClose: () => {},
    onReady: () => {},
  };
  const connection = new SocketConnection(
    { host: "127.0.0.1", port: server.port },
    server.address,
    2,
    undefined,
    new FlushScheduler(),
    events,
  );
  t.after(() => connection.close());
  await until(() => connection.state === ConnectionState.Ready, 5000, "the connection is ready");

  const reads = async () => Number(/total_reads_processed:(\d+)/.exec(await admin.info("stats"))![1]);
  const send = (count: number) => {
    for (let i = 0; i < count; i++) {
      const request = new Request(null);
      request.frame = encodeCommand(["PING"]);
      connection.send(request);
    }
  };
  /** The node's reads of the connection's requests: sent in turns, `counts[i]` in turn i. */
  const readsFor = async (counts: number[]): Promise<number> => {
    const before = await reads();
    const expected = answered + counts.reduce((a, b) => a + b, 0);
    for (const count of counts) {
      send(count);
      await nextTurn();
    }
    await until(() => answered === expected, 5000, "every request answered");
    // The INFO that reads the count is one read itself.
    return (await reads()) - before - 1;
  };

  // What waits: the frames not yet written (read from the connection: a node's reads cannot tell
  // which turn wrote them when it is slow to read, as on a loaded machine).
  const unwritten = () => (connection as unknown as { out: unknown[] }).out.length;
  send(1);
  await nextTurn();
  assert.equal(unwritten(), 1, "one request waits for the next turn");
  await nextTurn();
  assert.equal(unwritten(), 0, "and goes out at the end of it");
  send(16);
  await nextTurn();
  assert.equal(unwritten(), 0, "16 requests do not wait");
  await until(() => answered === 17, 5000, "every request answered");

  assert.equal(await readsFor([1, 1]), 1, "one turn's request and the next turn's: one read");
  assert.equal(await readsFor([3, 2]), 1);
});
