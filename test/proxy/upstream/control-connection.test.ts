/**
 * The slot-map source's control connection (src/proxy/upstream/control-connection.ts) against a
 * real redis-server: the contract the ioredis client it replaced had there.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { ControlConnection } from "../../../src/proxy/upstream/control-connection.ts";
import { freePorts } from "../../../src/local/ports.ts";
import { startStandalone } from "../../support/redis.ts";

const options = { host: "127.0.0.1", connectTimeout: 1000, commandTimeout: 500 };

test("replies decode as ioredis's call gave them: strings, numbers, arrays, null; an error reply rejects with its text", async (t) => {
  const server = await startStandalone(t);
  const control = new ControlConnection({ ...options, port: server.port });
  t.after(() => control.disconnect());
  assert.equal(control.status, "wait");
  await control.connect();
  assert.equal(control.status, "ready");
  assert.equal(await control.call("SET", "k", "v"), "OK");
  assert.equal(await control.call("GET", "k"), "v");
  assert.equal(await control.call("GET", "none"), null);
  assert.equal(await control.call("INCRBY", "n", 7), 7);
  assert.deepEqual(await control.call("CONFIG", "GET", "maxmemory-policy"), [
    "maxmemory-policy",
    "noeviction",
  ]);
  await assert.rejects(control.call("NOSUCHCOMMAND"), /^Error: ERR unknown command 'NOSUCHCOMMAND'/);
  // The connection stays usable after an error reply.
  assert.equal(await control.call("PING"), "PONG");
  control.disconnect();
  assert.equal(control.status, "end");
  await assert.rejects(control.call("PING"), /Connection is closed\./);
});

test("AUTH: the right password connects, a wrong one rejects connect() and tells the error listener WRONGPASS", async (t) => {
  const server = await startStandalone(t);
  const admin = new ControlConnection({ ...options, port: server.port });
  t.after(() => admin.disconnect());
  assert.equal(await admin.call("CONFIG", "SET", "requirepass", "secret"), "OK");
  const good = new ControlConnection({ ...options, port: server.port, password: "secret" });
  t.after(() => good.disconnect());
  assert.equal(await good.call("PING"), "PONG");

  const bad = new ControlConnection({ ...options, port: server.port, username: "default", password: "nope" });
  const errors: string[] = [];
  bad.on("error", (err) => errors.push(err.message));
  await assert.rejects(bad.connect(), /WRONGPASS/);
  assert.match(errors.join("; "), /WRONGPASS/);
  assert.equal(bad.status, "end");
});

test("a refused connect rejects with 'Connection is closed.' and the error listener gets ECONNREFUSED", async () => {
  const [port] = await freePorts(1);
  const control = new ControlConnection({ ...options, port: port! });
  const errors: Error[] = [];
  control.on("error", (err) => errors.push(err));
  await assert.rejects(control.connect(), /Connection is closed\./);
  assert.equal((errors[0] as NodeJS.ErrnoException | undefined)?.code, "ECONNREFUSED");
  assert.equal(control.status, "end");
});

test("a node that never answers: the first round trip times out and connect() rejects; a silent command times out alone", async (t) => {
  // Accepts and never replies.
  const silent: Server = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  t.after(() => silent.close());
  const port = (silent.address() as { port: number }).port;
  const control = new ControlConnection({ ...options, port });
  const errors: string[] = [];
  control.on("error", (err) => errors.push(err.message));
  await assert.rejects(control.connect(), /Command timed out/);
  assert.deepEqual(errors, ["Command timed out"]);
  assert.equal(control.status, "end");

  // On a real server, a command that blocks past the timeout rejects; the connection stays, and
  // the late reply goes to the timed-out command, not to the next one.
  const server = await startStandalone(t);
  const live = new ControlConnection({ ...options, port: server.port });
  const other = new ControlConnection({ ...options, port: server.port });
  t.after(() => {
    live.disconnect();
    other.disconnect();
  });
  await assert.rejects(live.call("BLPOP", "list", "0"), /Command timed out/);
  assert.equal(await other.call("RPUSH", "list", "late"), 1); // BLPOP's reply now comes, to nobody
  assert.equal(await live.call("ECHO", "after"), "after");
});
