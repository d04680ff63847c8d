// @ts-check
/**
 * The least a Node relay can do per request: what `bench/syscalls.ts --floor` measures beside the
 * worker and twemproxy, to tell Node's own cost per request (a read callback, a write, an event-loop
 * turn) from the proxy's.
 *
 *   node bench/lib/node-floor.mjs PORT SERVER_PORT [SERVER_PORT...]
 *
 * It does what the worker's I/O does and nothing else: plain sockets read with `onread` into one
 * reused buffer and copied out (src/proxy/io.ts), one write per server per event-loop turn
 * (setImmediate), and one write per client of the replies each server read brings it. No command table, no slots, no
 * ordering across servers: client N always talks to server N % count, so each server connection's
 * replies come back in the order of its requests. Plain JavaScript so that no loader runs beside it.
 * Not a proxy: it trusts every frame (a RESP array per request, a reply per request).
 */
import { Socket, connect, createServer } from "node:net";
import { setImmediate } from "node:timers";

const [port, ...serverPorts] = process.argv.slice(2).map(Number);
if (!port || serverPorts.length === 0) {
  console.error("usage: node bench/lib/node-floor.mjs PORT SERVER_PORT [SERVER_PORT...]");
  process.exit(2);
}
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * The end of the RESP value at `i` (a simple line, a bulk string or an array of them), or -1 when
 * the bytes stop before it ends.
 * @param {Buffer} data
 * @param {number} i
 * @returns {number}
 */
function valueEnd(data, i) {
  if (i >= data.length) return -1;
  const lineEnd = data.indexOf(10, i);
  if (lineEnd < 0) return -1;
  const type = data[i];
  if (type !== 36 && type !== 42) return lineEnd + 1; // + - : and the rest: one line
  const n = Number(data.toString("latin1", i + 1, lineEnd - 1));
  if (type === 36) {
    const end = n < 0 ? lineEnd + 1 : lineEnd + 1 + n + 2;
    return end > data.length ? -1 : end;
  }
  let j = lineEnd + 1;
  for (let k = 0; k < n && j >= 0; k++) j = valueEnd(data, j);
  return j;
}

/** @type {Server[]} */
const due = [];
let flushScheduled = false;
function flushDue() {
  flushScheduled = false;
  for (const server of due) server.flush();
  due.length = 0;
}

class Server {
  /** @param {number} serverPort */
  constructor(serverPort) {
    /** @type {Socket[]} clients waiting for a reply, oldest first */
    this.waiting = [];
    this.head = 0;
    /** @type {Buffer[]} */
    this.out = [];
    this.outBytes = 0;
    /** @type {Buffer | null} */
    this.partial = null;
    this.socket = connect({
      port: serverPort,
      host: "127.0.0.1",
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n) => this.onRead(n) },
    });
  }

  /** @param {Socket} client @param {Buffer} chunk */
  send(client, chunk) {
    for (let i = 0; i < chunk.length;) {
      const end = valueEnd(chunk, i);
      if (end < 0) break;
      this.waiting.push(client);
      i = end;
    }
    if (this.out.length === 0) {
      due.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushDue);
      }
    }
    this.out.push(chunk);
    this.outBytes += chunk.length;
  }

  flush() {
    this.socket.write(this.out.length === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes));
    this.out = [];
    this.outBytes = 0;
  }

  /** @param {number} n */
  onRead(n) {
    let data = Buffer.allocUnsafe(n);
    data.set(READ_BUFFER.subarray(0, n));
    if (this.partial !== null) {
      data = Buffer.concat([this.partial, data]);
      this.partial = null;
    }
    let i = 0;
    while (i < data.length) {
      const end = valueEnd(data, i);
      if (end < 0) break;
      const client = this.waiting[this.head];
      this.waiting[this.head++] = /** @type {any} */ (undefined);
      if (this.head > 4096) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      if (client !== undefined) {
        const replies = replyBatch.get(client);
        if (replies === undefined) replyBatch.set(client, [data.subarray(i, end)]);
        else replies.push(data.subarray(i, end));
      }
      i = end;
    }
    // One write per client per read, as the worker writes a client's replies once per turn.
    for (const [client, replies] of replyBatch)
      client.write(replies.length === 1 ? replies[0] : Buffer.concat(replies));
    replyBatch.clear();
    if (i < data.length) this.partial = data.subarray(i);
    return true;
  }
}

/** @type {Map<Socket, Buffer[]>} replies found in the current read, per client */
const replyBatch = new Map();
const servers = serverPorts.map((p) => new Server(p));
let accepted = 0;
createServer((socket) => {
  // As src/proxy/io.ts readAccepted: net.Server takes no `onread`, so the handle moves to a socket made with one.
  const handle = /** @type {any} */ (socket)._handle;
  /** @type {any} */ (socket)._handle = null;
  const server = servers[accepted++ % servers.length];
  /** @type {Socket} */
  const client = new Socket(
    /** @type {any} */ ({
      handle,
      readable: true,
      writable: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (/** @type {number} */ n) => {
          const chunk = Buffer.allocUnsafe(n);
          chunk.set(READ_BUFFER.subarray(0, n));
          server?.send(client, chunk);
          return true;
        },
      },
    }),
  );
  client.setNoDelay(true);
  client.on("error", () => {});
  client.on("close", () => socket.destroy());
}).listen(port, "127.0.0.1");
