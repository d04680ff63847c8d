// @ts-check
/**
 * The least a Node relay can do per request: what `bench/syscalls.ts --floor` measures beside the
 * worker and twemproxy, to tell Node's own cost per request (a read callback, a write, an event-loop
 * turn) from the proxy's.
 *
 *   node bench/lib/node-floor.mjs PORT SERVER_PORT [SERVER_PORT...]
 *
 * It does what the worker's I/O does and little else: plain sockets read with `onread` into one
 * reused buffer and copied out (src/proxy/io.ts), each request sent to the server its key picks
 * (a byte sum, so requests spread over the servers as the worker's spread over shards: a floor
 * that pinned each client to one server would make bigger server batches than any key-routed proxy
 * can), one write per server per event-loop turn (setImmediate), and the client's replies put back
 * in its order and written once per server read. No command table, no hash slots, no limits.
 * Plain JavaScript so that no loader runs beside it. Not a proxy: it trusts every frame (a RESP
 * array per request, one reply per request).
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

/**
 * The bytes of a read (`n` in READ_BUFFER), after what the previous read left unfinished: each
 * whole RESP value goes to `onValue(data, start, end)`; returns the unfinished tail, or null.
 * @param {Buffer | null} partial
 * @param {number} n
 * @param {(data: Buffer, start: number, end: number) => void} onValue
 * @returns {Buffer | null}
 */
function eachValue(partial, n, onValue) {
  let data = Buffer.allocUnsafe(n);
  data.set(READ_BUFFER.subarray(0, n));
  if (partial !== null) data = Buffer.concat([partial, data]);
  let i = 0;
  for (let end = valueEnd(data, i); end >= 0; end = valueEnd(data, i)) {
    onValue(data, i, end);
    i = end;
  }
  return i < data.length ? data.subarray(i) : null;
}

/** @type {Server[]} */
const due = [];
let flushScheduled = false;
function flushDue() {
  flushScheduled = false;
  for (const server of due) server.flush();
  due.length = 0;
}

/** A request on its way: its reply, once it came. */
class Slot {
  /** @param {Client} client */
  constructor(client) {
    this.client = client;
    /** @type {Buffer | null} */
    this.reply = null;
  }
}

class Client {
  /** @param {Socket} socket */
  constructor(socket) {
    this.socket = socket;
    /** @type {Slot[]} requests in the client's order, oldest first */
    this.queue = [];
    this.head = 0;
    /** @type {Buffer | null} */
    this.partial = null;
  }

  /** Writes the replies now due, in order, with one write. */
  flush() {
    /** @type {Buffer[]} */
    const out = [];
    while (this.head < this.queue.length) {
      const reply = this.queue[this.head]?.reply;
      if (reply == null) break;
      out.push(reply);
      this.head++;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    if (out.length > 0) this.socket.write(out.length === 1 ? out[0] : Buffer.concat(out));
  }
}

class Server {
  /** @param {number} serverPort */
  constructor(serverPort) {
    /** @type {Slot[]} requests waiting for a reply, oldest first */
    this.waiting = [];
    this.head = 0;
    /** @type {Buffer[]} */
    this.out = [];
    this.outBytes = 0;
    /** @type {Buffer | null} */
    this.partial = null;
    /** Each reply found in a read: made once, not per read. @param {Buffer} data @param {number} start @param {number} end */
    this.onReply = (data, start, end) => {
      const slot = this.waiting[this.head];
      this.waiting[this.head++] = /** @type {any} */ (undefined);
      if (this.head > 4096) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      if (slot !== undefined) {
        slot.reply = data.subarray(start, end);
        touched.add(slot.client);
      }
    };
    this.socket = connect({
      port: serverPort,
      host: "127.0.0.1",
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n) => this.onRead(n) },
    });
  }

  /** @param {Slot} slot @param {Buffer} frame */
  send(slot, frame) {
    this.waiting.push(slot);
    if (this.out.length === 0) {
      due.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushDue);
      }
    }
    this.out.push(frame);
    this.outBytes += frame.length;
  }

  flush() {
    this.socket.write(this.out.length === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes));
    this.out = [];
    this.outBytes = 0;
  }

  /** @param {number} n */
  onRead(n) {
    this.partial = eachValue(this.partial, n, this.onReply);
    // One write per client per server read, of the replies now due in its order.
    for (const client of touched) client.flush();
    touched.clear();
    return true;
  }
}

/** @type {Set<Client>} clients given a reply in the current server read */
const touched = new Set();
const servers = serverPorts.map((p) => new Server(p));

/**
 * The server of the request at data[i..end): by the byte sum of its second element (the key, for
 * GET and SET), the first server for a request with one element.
 * @param {Buffer} data @param {number} i @param {number} end
 */
function serverFor(data, i, end) {
  let j = data.indexOf(10, i) + 1; // past "*n\r\n"
  j = data.indexOf(10, j) + 1; // past the name's "$len\r\n"
  j = data.indexOf(10, j) + 1; // past the name
  if (j <= 0 || j >= end) return servers[0];
  const keyStart = data.indexOf(10, j) + 1;
  const keyEnd = data.indexOf(13, keyStart);
  let sum = 0;
  for (let k = keyStart; k < keyEnd; k++) sum += data[k];
  return servers[sum % servers.length];
}

createServer((accepted) => {
  // As src/proxy/io.ts readAccepted: net.Server takes no `onread`, so the handle moves to a socket made with one.
  const handle = /** @type {any} */ (accepted)._handle;
  /** @type {any} */ (accepted)._handle = null;
  /** @type {Client} */
  let client;
  const socket = new Socket(
    /** @type {any} */ ({
      handle,
      readable: true,
      writable: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (/** @type {number} */ n) => {
          // A request split across reads waits in client.partial for the rest.
          client.partial = eachValue(client.partial, n, onRequest);
          return true;
        },
      },
    }),
  );
  client = new Client(socket);
  /** @param {Buffer} data @param {number} start @param {number} end */
  const onRequest = (data, start, end) => {
    const slot = new Slot(client);
    client.queue.push(slot);
    serverFor(data, start, end)?.send(slot, data.subarray(start, end));
  };
  socket.setNoDelay(true);
  socket.on("error", () => {});
  socket.on("close", () => accepted.destroy());
}).listen(port, "127.0.0.1");
