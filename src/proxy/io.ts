/**
 * The socket I/O every connection shares: reads into one reused buffer, and per-turn write
 * batching (one flush per event-loop turn, one syscall per batch of replies or requests).
 */
import { Socket as NetSocket, type OnReadOpts, type Socket, type SocketConstructorOpts } from "node:net";

/**
 * Runs every pending flush once per event-loop turn (setImmediate). Measured on our machines:
 * flushing per turn across all clients is what lets one backend write carry many clients'
 * requests; nextTick or microtasks flush after each read and lose that batching.
 */
export class FlushScheduler {
  private queue: { flush(): void }[] = [];
  private scheduled = false;

  add(target: { flush(): void }): void {
    this.queue.push(target);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private run = (): void => {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (const target of queue) target.flush();
  };
}

/** Writes a list of buffers with one syscall where possible: small batches are joined, large ones written vectored. */
export function writeBatch(socket: Socket, chunks: Buffer[], bytes: number): void {
  if (chunks.length === 1) {
    socket.write(chunks[0]!);
  } else if (bytes <= 64 * 1024) {
    socket.write(Buffer.concat(chunks, bytes));
  } else {
    socket.cork();
    for (const chunk of chunks) socket.write(chunk);
    socket.uncork();
  }
}

/**
 * The one buffer every plain socket of this process reads into (`onread`): a read's bytes are
 * copied out of it before the next read can land there, so one buffer serves every socket.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * Hand-written, and on the hot path: Node's stream reads allocate a 64 KB ArrayBuffer per read
 * (shrunk to the bytes read) and push it through the Readable machinery; reading into
 * READ_BUFFER and copying the bytes read into a Buffer pool slice (Buffer.allocUnsafe pools
 * below 4 KB) costs a memcpy of the request instead. The copy is what makes the views that
 * outlive the read safe: request frames (resent on MOVED, ASK and retries), reply slices waiting
 * for the per-turn flush, and the Pub/Sub, MONITOR and tracking paths all point into it. A view
 * kept long (a blocked command's frame) keeps its 8 KB pool slab, shared with other reads, where
 * it used to keep an ArrayBuffer the size of its read.
 */
function copyOut(onChunk: (chunk: Buffer) => void): (bytes: number, buffer: Uint8Array) => boolean {
  return (bytes, buffer) => {
    const chunk = Buffer.allocUnsafe(bytes);
    chunk.set(bytes === buffer.length ? buffer : buffer.subarray(0, bytes));
    onChunk(chunk);
    return true; // false would stop reading; backpressure pauses the socket itself
  };
}

/** `net.connect`'s `onread` option for a connection whose reads go to `onChunk` (see copyOut). */
export function readOption(onChunk: (chunk: Buffer) => void): OnReadOpts {
  return { buffer: READ_BUFFER, callback: copyOut(onChunk) };
}

/** The fields of an accepted net.Socket that tie it to its net.Server (Node's lib/net.js, not typed). */
interface AcceptedFields {
  _handle?: object | null;
  encrypted?: boolean;
  server?: unknown;
  _server?: { _connections?: unknown } | null;
}

/**
 * Reads an accepted socket through `onChunk`, and returns the socket to use from then on.
 *
 * net.Server takes no `onread` option, so a plain socket's handle is moved into a new
 * net.Socket made with one (the constructor's `handle` option, as net.Server makes its own). The
 * server's bookkeeping moves with it: Node's `onconnection` counts the connection
 * (`server._connections++`) and sets `server` / `_server` on the accepted socket, whose `_destroy`
 * takes the count back down and lets `server.close()` finish (`_emitCloseIfDrained`). The new
 * socket takes both fields, so its own close does that, and the accepted one, cleared of them and
 * of its handle, is destroyed at once (no count, no close on the server) and collected: it used to
 * stay until the connection closed, about 1 KB of heap per client. Should Node's fields not be
 * there as expected, the accepted socket is kept and destroyed when the new one closes (its
 * `_destroy` still counts the connection out). TLS sockets (and anything not a plain net.Socket
 * with a handle) keep stream reads: TLS decrypts in its own stream, `onread` does not apply there.
 * The accepted socket must not be used after this call.
 */
export function readAccepted(socket: Socket, onChunk: (chunk: Buffer) => void): Socket {
  // `_handle`, `server` and `_server` are net.Socket's own (undocumented, no warning).
  const accepted = socket as unknown as AcceptedFields;
  const handle = accepted._handle;
  if (
    accepted.encrypted === true ||
    handle == null ||
    Object.getPrototypeOf(socket) !== NetSocket.prototype
  ) {
    socket.on("data", onChunk);
    return socket;
  }
  accepted._handle = null;
  const options = { handle, readable: true, writable: true, onread: readOption(onChunk) };
  const own = new NetSocket(options as SocketConstructorOpts);
  const twin = own as unknown as AcceptedFields;
  const server = accepted._server;
  // The constructor reserves both fields as null; a server counting connections has a number.
  if (
    server != null &&
    typeof server._connections === "number" &&
    accepted.server === server &&
    twin._server === null &&
    twin.server === null
  ) {
    twin.server = server;
    twin._server = server;
    accepted.server = null;
    accepted._server = null;
    socket.destroy();
  } else {
    own.once("close", () => socket.destroy());
  }
  return own;
}
