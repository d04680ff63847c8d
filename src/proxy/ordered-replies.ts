/**
 * The ordered-reply writer both connection types share (client sessions, ./client.ts, and the busy
 * proxy's worker connections, ./busy/connection.ts): each command takes its place in a queue when
 * it comes, its reply fills that place whenever it finishes, and replies leave strictly in queue
 * order, gathered into one write per event-loop turn. It also carries the connection's life cycle
 * (closing once the replies due are written) and the hooks its owner's backpressure hangs on.
 *
 * Per command it allocates nothing: the queue holds the owner's own objects (`ReplySlot`), and
 * the owner's hooks are methods called on the owner itself.
 */
import type { Socket } from "node:net";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { Deque } from "./deque.ts";
import { pauseReading, resumeReading, writeBatch, type FlushScheduler } from "./io.ts";

/** A command's place in the reply order; its reply is set, and `done`, once it finished. */
export interface ReplySlot {
  done: boolean;
  reply: ReplyBytes | null;
  /** The reply is dropped when its turn comes (CLIENT REPLY OFF / SKIP). */
  readonly silent?: boolean;
}

/** What the writer tells its owner. */
export interface ReplyWriterOwner<S extends ReplySlot> {
  /** `slot` left the queue, its reply now in the output (to settle the owner's own counts). */
  released(slot: S): void;
  /** The unwritten output grew past OUTPUT_CHECK_BYTES: time to re-check the owner's limits. */
  checkBackpressure(): void;
  /** The unwritten output passed the writer's `hardLimit`. */
  overHardLimit(): void;
}

/** A connection's life cycle. */
export const enum ConnectionState {
  Open,
  /** Replies still due go out, then the connection closes (QUIT, protocol error, draining). */
  ClosingAfterReply,
  Closed,
}

/** Whether the connection reads (backpressure pauses it). */
export const enum ReadState {
  Reading,
  Paused,
}

const enum FlushState {
  Idle,
  /** A flush is scheduled for this turn. */
  Queued,
  /** A flush is scheduled again, after waiting one turn for more replies. */
  Deferred,
}

/** Unwritten reply bytes past which each new reply re-checks the owner's limits. */
export const OUTPUT_CHECK_BYTES = 1024 * 1024;

export class OrderedReplies<S extends ReplySlot> {
  state = ConnectionState.Open;
  readState = ReadState.Reading;
  /** Commands in reply order, from the oldest whose reply is still due. */
  readonly queue = new Deque<S>();
  /**
   * Unwritten bytes (socket buffer and output) past which every new reply calls
   * `owner.overHardLimit` (a subscriber's output buffer limit); unlimited by default.
   */
  hardLimit = Infinity;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushState = FlushState.Idle;

  /**
   * @param deferMaxBytes Output below this may wait one turn for replies still due (0: never
   *   waits); see `flush`.
   */
  constructor(
    private readonly socket: Socket,
    private readonly flusher: FlushScheduler,
    private readonly owner: ReplyWriterOwner<S>,
    private readonly deferMaxBytes: number,
  ) {}

  // State tests for the owners' hot paths: an enum compared in its own file costs no lookup.
  get open(): boolean {
    return this.state === ConnectionState.Open;
  }

  get closed(): boolean {
    return this.state === ConnectionState.Closed;
  }

  get readPaused(): boolean {
    return this.readState === ReadState.Paused;
  }

  /** Reply bytes queued and not yet handed to the socket. */
  get outputBytes(): number {
    return this.outBytes;
  }

  /** Reply bytes the client has not read yet: the socket's buffer and the output. */
  get unwrittenBytes(): number {
    return this.socket.writableLength + this.outBytes;
  }

  /** Nothing due and nothing unwritten. */
  get idle(): boolean {
    return this.queue.length === 0 && this.out.length === 0;
  }

  /**
   * Moves the replies now due (the queue's run of finished heads) to the output. False, moving
   * nothing, when `slot` is not the head: an earlier reply is still due.
   */
  release(slot: S): boolean {
    if (this.queue.peek() !== slot) return false;
    for (let head = this.queue.peek(); head !== undefined && head.done; head = this.queue.peek()) {
      this.queue.shift();
      this.owner.released(head);
      if (head.silent !== true) this.emit(head.reply!);
    }
    return true;
  }

  /** Appends a reply to the output (the caller keeps the order) and schedules a flush. */
  emit(reply: ReplyBytes): void {
    if (Buffer.isBuffer(reply)) {
      this.out.push(reply);
      this.outBytes += reply.length;
    } else {
      for (const piece of reply) {
        this.out.push(piece);
        this.outBytes += piece.length;
      }
    }
    if (this.flushState === FlushState.Idle) {
      this.flushState = FlushState.Queued;
      this.flusher.add(this);
    }
    if (this.outBytes > OUTPUT_CHECK_BYTES) this.owner.checkBackpressure();
    if (this.hardLimit < Infinity && this.socket.writableLength + this.outBytes > this.hardLimit)
      this.owner.overHardLimit();
  }

  flush(): void {
    const state = this.flushState;
    this.flushState = FlushState.Idle;
    if (this.state === ConnectionState.Closed || this.out.length === 0) return;
    // Replies still due (a pipeline spread over several shards, whose replies arrive in successive
    // turns) may wait one turn to share this write: measured at pipeline 16 over three shards,
    // writes per request fell from 0.107-0.116 to 0.088-0.113 and throughput rose 2-10%. One
    // turn at most, so a reply never waits behind a slow or blocking command.
    if (this.queue.length > 0 && state !== FlushState.Deferred && this.outBytes < this.deferMaxBytes) {
      this.flushState = FlushState.Deferred;
      this.flusher.add(this);
      return;
    }
    writeBatch(this.socket, this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (this.socket.writableLength > OUTPUT_CHECK_BYTES) this.owner.checkBackpressure();
    if (this.state === ConnectionState.ClosingAfterReply && this.queue.length === 0) this.closeNow();
  }

  pauseReading(): void {
    this.readState = ReadState.Paused;
    pauseReading(this.socket);
  }

  resumeReading(): void {
    this.readState = ReadState.Reading;
    resumeReading(this.socket);
  }

  /** Takes no more commands; closes once the replies still due are written. */
  closeAfterReply(): void {
    this.state = ConnectionState.ClosingAfterReply;
    pauseReading(this.socket);
    if (this.idle) this.closeNow();
  }

  /**
   * Closes the connection once what is written has gone out, as Redis frees a client after its
   * last reply. A half-close (end() alone) is not enough: reading is paused here, so the client's
   * own close is never seen and the session stayed open for good (QUIT, a protocol error, a drain).
   */
  private closeNow(): void {
    this.socket.destroySoon();
  }

  /** The socket closed: nothing more is written. */
  socketClosed(): void {
    this.state = ConnectionState.Closed;
    this.out = [];
  }
}
