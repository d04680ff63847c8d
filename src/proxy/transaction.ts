/**
 * A MULTI ... EXEC transaction as the proxy runs it.
 *
 * Commands are checked and queued in the proxy (the client gets +QUEUED at once, or the error
 * Redis would give, which dooms the transaction as in Redis). EXEC sends MULTI, the queued
 * commands and EXEC as one contiguous block to the master of their slot. On a multiplexed
 * connection nothing can come between the parts of a block, so a transaction without WATCH needs
 * no connection of its own; a WATCHed one runs on the connection that holds the watch.
 */
import { encodeCommand } from "../resp/request-parser.ts";

const MULTI = encodeCommand(["MULTI"]);
const EXEC = encodeCommand(["EXEC"]);

export class Transaction {
  private frames: Buffer[] = [MULTI];
  private bytes = MULTI.length;
  /** Slot of the queued commands' keys; -1 while only keyless commands are queued. */
  slot = -1;
  /** A queued command was refused: EXEC answers EXECABORT. */
  aborted = false;

  get size(): number {
    return this.frames.length - 1;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /** Queues a command; false when its slot differs from the transaction's (CROSSSLOT). */
  add(frame: Buffer, slot: number): boolean {
    if (slot >= 0) {
      if (this.slot >= 0 && slot !== this.slot) return false;
      this.slot = slot;
    }
    this.frames.push(frame);
    this.bytes += frame.length;
    return true;
  }

  /** The block to send at EXEC, and how many replies it brings (MULTI, each command, EXEC). */
  block(): { frame: Buffer; parts: number } {
    return {
      frame: Buffer.concat([...this.frames, EXEC], this.bytes + EXEC.length),
      parts: this.frames.length + 1,
    };
  }
}
