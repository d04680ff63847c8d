/**
 * The socket I/O every connection shares: reads into one reused buffer, and per-turn write
 * batching (one flush per event-loop turn, one syscall per batch of replies or requests).
 */
import { createRequire } from "node:module";
import {
  createConnection,
  Socket as NetSocket,
  type NetConnectOpts,
  type OnReadOpts,
  type Socket,
  type SocketConstructorOpts,
} from "node:net";
import { constants as osConstants } from "node:os";
import { fileURLToPath } from "node:url";
import { getSystemErrorName } from "node:util";

/**
 * Runs every pending flush once per event-loop turn (setImmediate). Measured on our machines:
 * flushing per turn across all clients is what lets one backend write carry many clients'
 * requests; nextTick or microtasks flush after each read and lose that batching.
 *
 * Backend connections flush a turn later still (`addNextTurn`) while their batch is short (see
 * BATCH_NOW in ./backend.ts): the requests read in one turn wait for the next turn's reads, whose
 * poll does not block while a flush is pending, and go out with them, as twemproxy's do (it writes
 * a server when its EPOLLOUT event comes, in the next epoll_wait). At pipeline 1, 50 clients, one
 * worker (bench/README.md, "Backend writes a turn later"): fewer writes per request (1.23-1.32
 * against 1.39-1.45), less Redis and worker CPU per request, more requests per second; one
 * client's latency is unchanged (the extra turn finds nothing to wait for).
 */
export class FlushScheduler {
  private queue: { flush(): void }[] = [];
  /** Added in this turn by addNextTurn: flushed at the end of the next turn. */
  private nextTurn: { flush(): void }[] = [];
  /** Added in the turn before: flushed at the end of this one. */
  private thisTurn: { flush(): void }[] = [];
  private scheduled = false;

  add(target: { flush(): void }): void {
    this.queue.push(target);
    this.schedule();
  }

  /** Flushes `target` at the end of the next turn (flush() must then find nothing, or the rest). */
  addNextTurn(target: { flush(): void }): void {
    this.nextTurn.push(target);
    this.schedule();
  }

  private schedule(): void {
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
    const due = this.thisTurn;
    this.thisTurn = this.nextTurn;
    this.nextTurn = [];
    for (const target of due) target.flush();
    // (An immediate set up while immediates run waits for the next turn, after its poll.)
    if (this.thisTurn.length > 0) this.schedule();
  };
}

/** Writes a list of buffers with one syscall where possible: small batches are joined, large ones written vectored. */
export function writeBatch(socket: Socket, chunks: Buffer[], bytes: number): void {
  const watched = (socket as WatchedSocket)[WATCH];
  if (watched !== undefined && socket.writableLength === 0 && socket.writable) {
    writeNative(socket, watched, chunks, bytes);
    return;
  }
  writeStream(socket, chunks, bytes);
}

function writeStream(socket: Socket, chunks: Buffer[], bytes: number): void {
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

// ---- Native socket I/O (native/io.c) ------------------------------------------------------------

/** native/io.c's exports. */
interface NativeIo {
  init(buffer: Buffer, events: Int32Array, onReads: (count: number) => void): void;
  watch(fd: number): number;
  unwatch(id: number): void;
  pause(id: number, paused: boolean): void;
  write(fd: number, data: Buffer): number;
  writev(fd: number, data: Buffer[]): number;
}

const EAGAIN = -osConstants.errno.EAGAIN;
const WATCH = Symbol("dredis.nativeRead");
/** A socket read by native/io.c: its id there and where its reads go. */
interface Watched {
  id: number;
  fd: number;
  onChunk: (chunk: Buffer) => void;
}
type WatchedSocket = Socket & { [WATCH]?: Watched; _unrefTimer?: () => void; _read: (n: number) => void };

/** Where the native reads of one turn land (each copied out, as copyOut does). */
const NATIVE_BUFFER = Buffer.allocUnsafe(256 * 1024);
/** Per read: the socket's id, the read's offset in NATIVE_BUFFER, its length (0: EOF; < 0: -errno). */
const NATIVE_EVENTS = new Int32Array(3 * 4096);
const watchedSockets: (WatchedSocket | undefined)[] = [];

/** Whether the proxy's plain sockets read and write through native/io.c, and if not, why not. */
let native: NativeIo | undefined;
export const socketIo: { readonly native: boolean; readonly reason: string } = loadNative();

function loadNative(): { native: boolean; reason: string } {
  if (process.env.DREDIS_NATIVE_IO === "0") return { native: false, reason: "DREDIS_NATIVE_IO=0" };
  // Two folders below the package root, from src/proxy/ as from the bundle's dist/cli/.
  const path = fileURLToPath(new URL("../../native/build/dredis-io.node", import.meta.url));
  try {
    native = createRequire(import.meta.url)(path) as NativeIo;
    native.init(NATIVE_BUFFER, NATIVE_EVENTS, onNativeReads);
    return { native: true, reason: path };
  } catch (err) {
    native = undefined;
    return { native: false, reason: `${path}: ${(err as Error).message.split("\n")[0]}` };
  }
}

/** The reads of one event-loop turn, all sockets at once (native/io.c calls it after the poll phase). */
function onNativeReads(count: number): void {
  let failure: unknown;
  for (let e = 0; e < count * 3; e += 3) {
    const socket = watchedSockets[NATIVE_EVENTS[e]!];
    if (socket === undefined) continue; // closed since the read
    const length = NATIVE_EVENTS[e + 2]!;
    try {
      if (length > 0) {
        const offset = NATIVE_EVENTS[e + 1]!;
        const chunk = Buffer.allocUnsafe(length);
        chunk.set(NATIVE_BUFFER.subarray(offset, offset + length));
        if (socket.timeout) socket._unrefTimer?.(); // what Node's own reads do for setTimeout
        socket[WATCH]!.onChunk(chunk);
      } else if (length === 0) {
        // EOF, as Node handles it with allowHalfOpen false: what is queued is written, then the
        // connection closes.
        socket.destroySoon();
      } else {
        const code = getSystemErrorName(length);
        socket.destroy(Object.assign(new Error(`read ${code}`), { code, errno: length, syscall: "read" }));
      }
    } catch (err) {
      // The other sockets' reads of this turn are still handed on; the first failure is thrown after.
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
}

/**
 * Reads `socket` through native/io.c from now on, its data to `onChunk`. False (nothing changed)
 * where it cannot: no native module, no descriptor (a TLS socket's is its inner socket's), or
 * Node has already read into the stream.
 */
function watchNative(socket: Socket, onChunk: (chunk: Buffer) => void): boolean {
  const own = socket as WatchedSocket;
  const handle = (
    socket as unknown as { _handle?: { fd?: number; reading?: boolean; readStop?: () => number } }
  )._handle;
  if (native === undefined || handle == null || typeof handle.fd !== "number" || handle.fd < 0) return false;
  if (socket.readableLength > 0 || Object.getPrototypeOf(socket) !== NetSocket.prototype) return false;
  if (handle.reading === true) {
    // A socket accepted without pauseOnConnect: libuv has not read yet (this runs in the
    // connection callback), and must not.
    handle.readStop?.();
    handle.reading = false;
  }
  const id = native.watch(handle.fd);
  if (id < 0) return false;
  // Node's stream must never start reading this socket (resume(), a 'data' listener): the reads
  // are native/io.c's.
  own._read = () => {};
  own[WATCH] = { id, fd: handle.fd, onChunk };
  watchedSockets[id] = own;
  // Released with the socket's own descriptor (destroy() closes that at once), not at 'close' a
  // turn later: until the dup is closed the connection stays open.
  const destroy = own._destroy;
  own._destroy = function (this: WatchedSocket, err, callback) {
    if (own[WATCH] !== undefined) {
      watchedSockets[id] = undefined;
      own[WATCH] = undefined;
      native!.unwatch(id);
    }
    destroy.call(this, err, callback);
  };
  return true;
}

/**
 * Writes `chunks` with one write(2) or writev(2); what the kernel did not take goes to the
 * socket's stream, which writes it when the socket drains (and counts it in writableLength, which
 * the client's output limits read). Only called with nothing queued in the stream, so the order
 * holds.
 */
function writeNative(socket: Socket, watched: Watched, chunks: Buffer[], bytes: number): void {
  const n = chunks.length === 1 ? native!.write(watched.fd, chunks[0]!) : native!.writev(watched.fd, chunks);
  if ((socket as WatchedSocket).timeout) (socket as WatchedSocket)._unrefTimer?.();
  if (n === bytes) return;
  if (n < 0 && n !== EAGAIN) {
    // The stream meets the same error and handles it as it does its own (an 'error', a close).
    writeStream(socket, chunks, bytes);
    return;
  }
  let skip = Math.max(n, 0);
  let i = 0;
  while (skip >= chunks[i]!.length) skip -= chunks[i++]!.length;
  const rest = chunks.slice(i);
  if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  writeStream(socket, rest, bytes - Math.max(n, 0));
}

/** Stops reading a client's socket (backpressure, or a connection closing after its replies). */
export function pauseReading(socket: Socket): void {
  const watched = (socket as WatchedSocket)[WATCH];
  if (watched !== undefined) native!.pause(watched.id, true);
  else socket.pause();
}

/** Reads a client's socket again after pauseReading. */
export function resumeReading(socket: Socket): void {
  const watched = (socket as WatchedSocket)[WATCH];
  if (watched !== undefined) native!.pause(watched.id, false);
  else socket.resume();
}

/**
 * A plain connection (TCP or a unix socket) whose reads go to `onChunk`: through native/io.c once
 * connected where it is built, else `onread` into READ_BUFFER (copyOut).
 */
export function connectPlain(options: NetConnectOpts, onChunk: (chunk: Buffer) => void): Socket {
  if (native === undefined) return createConnection({ ...options, onread: readOption(onChunk) });
  const socket = createConnection(options);
  // Node starts reading at the connect unless the stream is paused; it is resumed only if the
  // native watch cannot be had.
  socket.pause();
  socket.once("connect", () => {
    if (!watchNative(socket, onChunk)) {
      socket.on("data", onChunk);
      socket.resume();
    }
  });
  return socket;
}

/** The fields of an accepted net.Socket that tie it to its net.Server (Node's lib/net.js, not typed). */
interface AcceptedFields {
  _handle?: object | null;
  encrypted?: boolean;
  server?: unknown;
  _server?: { _connections?: unknown } | null;
}

/**
 * Reads an accepted socket through `onChunk`, and returns the socket to use from then on: the
 * same socket, read by native/io.c, where that is built (see watchNative); otherwise:
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
  if (watchNative(socket, onChunk)) return socket;
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
