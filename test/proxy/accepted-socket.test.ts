/**
 * src/proxy/io.ts `readAccepted` moves an accepted socket's handle into a new net.Socket that reads
 * with `onread`. The server's bookkeeping (its connection count, which `server.close()` waits on)
 * must follow the handle, and the accepted socket object must not stay alive beside its twin
 * (it used to, until the connection closed: about 1 KB of heap per client). A bare net.Server
 * on real TCP connections, reading through `readAccepted` as the proxy's client sessions do.
 *
 * That move is the path without native/io.c (which reads the accepted socket itself, moving
 * nothing): DREDIS_NATIVE_IO=0 before io.ts loads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

process.env.DREDIS_NATIVE_IO = "0";
const { readAccepted, socketIo } = await import("../../src/proxy/io.ts");
assert.equal(socketIo.native, false, "this file tests the stream path");

const CLIENTS = 40;

/** V8's gc(), without starting the file with --expose-gc (test-run.ts starts files without flags). */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function connections(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface EchoServer {
  server: Server;
  port: number;
  /** The sockets readAccepted returned, in accept order. */
  twins: Socket[];
  /** Every `close` the server emitted. */
  closes: number;
}

/** A server echoing every read through `readAccepted`; `onAccepted` sees each accepted socket first. */
async function echoServer(onAccepted: (socket: Socket) => void): Promise<EchoServer> {
  const twins: Socket[] = [];
  const server = createServer((accepted) => {
    onAccepted(accepted);
    const twin: Socket = readAccepted(accepted, (chunk) => twin.write(chunk));
    twin.on("error", () => {});
    twins.push(twin);
  });
  const echo: EchoServer = { server, port: 0, twins, closes: 0 };
  server.on("close", () => echo.closes++);
  server.listen(0, "127.0.0.1");
  await within(once(server, "listening"), 5000, "the server to listen");
  echo.port = (server.address() as AddressInfo).port;
  return echo;
}

/** Connects `n` clients, each of which has had one echo round trip (so reads went through onread). */
async function clients(port: number, n: number): Promise<Socket[]> {
  const connect = (i: number) =>
    new Promise<Socket>((resolve, reject) => {
      const socket = createConnection({ port, host: "127.0.0.1" });
      socket.once("error", reject);
      const hello = `hello ${i}\n`;
      let got = "";
      socket.on("data", (chunk: Buffer) => {
        got += chunk.toString();
        if (got.length >= hello.length) {
          assert.equal(got, hello, `client ${i}'s echo`);
          socket.removeAllListeners("data");
          resolve(socket);
        }
      });
      socket.write(hello);
    });
  return within(
    Promise.all(Array.from({ length: n }, (_, i) => connect(i))),
    10_000,
    `${n} clients to connect and get their echo`,
  );
}

function closed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : once(socket, "close").then(() => undefined);
}

test("the accepted socket objects are collected while their connections stay open", async () => {
  const gc = collector();
  const refs: WeakRef<Socket>[] = [];
  const echo = await echoServer((accepted) => refs.push(new WeakRef(accepted)));
  const sockets = await clients(echo.port, CLIENTS);
  assert.equal(refs.length, CLIENTS);
  assert.equal(await connections(echo.server), CLIENTS, "each client counted once");

  let alive = CLIENTS;
  for (let attempt = 0; attempt < 10 && alive > 0; attempt++) {
    await turn(); // the accepted sockets' own close is emitted on a tick after their destroy
    gc();
    await turn(); // a WeakRef read in the job that made it keeps its target; read it in a later one
    alive = refs.filter((ref) => ref.deref() !== undefined).length;
  }
  assert.equal(alive, 0, `${alive} of ${CLIENTS} accepted socket objects still alive after 10 collections`);

  // The twins still serve their clients.
  for (const [i, socket] of sockets.entries()) {
    const reply = once(socket, "data");
    socket.write(`again ${i}\n`);
    const [chunk] = (await within(reply, 5000, `client ${i}'s second echo`)) as [Buffer];
    assert.equal(chunk.toString(), `again ${i}\n`);
  }
  assert.equal(await connections(echo.server), CLIENTS);

  const serverClosed = new Promise<void>((resolve, reject) =>
    echo.server.close((err) => (err ? reject(err) : resolve())),
  );
  for (const socket of sockets) socket.end();
  await within(Promise.all(echo.twins.map(closed)), 10_000, "the server's sockets to close");
  await within(serverClosed, 5000, "server.close()'s callback after every client left");
  assert.equal(await connections(echo.server), 0);
  await turn();
  assert.equal(echo.closes, 1, "the server emitted close once");
});

test("the server's connection count follows the twins: down to 0, close once, after the last client", async () => {
  const accepted: Socket[] = [];
  const echo = await echoServer((socket) => accepted.push(socket));
  const sockets = await clients(echo.port, CLIENTS);
  assert.equal(await connections(echo.server), CLIENTS, "each client counted once");

  // The accepted objects hold nothing: no handle, no server, and they are destroyed already.
  await turn();
  for (const [i, socket] of accepted.entries()) {
    const fields = socket as unknown as { _handle: unknown; _server: unknown; server: unknown };
    assert.equal(fields._handle, null, `accepted socket ${i} has no handle`);
    assert.equal(socket.destroyed, true, `accepted socket ${i} is destroyed`);
    assert.equal(fields._server, null, `accepted socket ${i} is off the server's books`);
    assert.equal(fields.server, null, `accepted socket ${i} points to no server`);
    assert.equal(socket.listenerCount("close"), 0, `accepted socket ${i} has no close listener`);
  }
  for (const twin of echo.twins) {
    assert.equal((twin as unknown as { server: unknown }).server, echo.server, "the twin carries the server");
  }

  // Drain: close the server with the clients still connected; its callback waits for the last one.
  let serverClosed = false;
  const closing = new Promise<void>((resolve, reject) =>
    echo.server.close((err) => {
      serverClosed = true;
      if (err) reject(err);
      else resolve();
    }),
  );

  // Half leave from the server's side (as an idle timeout or a drain does), half from the client's.
  const half = CLIENTS / 2;
  for (const twin of echo.twins.slice(0, half)) twin.destroy();
  await within(Promise.all(echo.twins.slice(0, half).map(closed)), 10_000, "the first half to close");
  await turn();
  assert.equal(await connections(echo.server), CLIENTS - half, "the first half counted out once each");
  assert.equal(serverClosed, false, "server.close() waits for the clients still connected");

  for (const socket of sockets.slice(half)) socket.end();
  await within(Promise.all(echo.twins.map(closed)), 10_000, "the second half to close");
  await within(closing, 5000, "server.close()'s callback after every client left");
  assert.equal(await connections(echo.server), 0);
  assert.equal((echo.server as unknown as { _connections: number })._connections, 0, "never counted below 0");
  await turn();
  await turn();
  assert.equal(echo.closes, 1, "the server emitted close once");
});
