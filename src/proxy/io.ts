/**
 * The per-turn write batching every connection shares: one flush per event-loop turn, one
 * syscall per batch of replies or requests.
 */
import type { Socket } from "node:net";

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
