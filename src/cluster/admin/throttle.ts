/**
 * Keeps a migration under a keys-per-second budget (`--max-keys-per-second`), so moving slots
 * never takes more of the shards than the operator allowed.
 */
export class Throttle {
  private nextAt = 0;

  /** @param keysPerSecond undefined or 0: unlimited. */
  constructor(private readonly keysPerSecond: number | undefined) {}

  /** Keys to ask for at once: small enough that the budget is spent smoothly (10 steps a second). */
  batchLimit(wanted: number): number {
    if (!this.keysPerSecond) return wanted;
    return Math.max(1, Math.min(wanted, Math.floor(this.keysPerSecond / 10)));
  }

  /** Waits until `keys` more keys fit in the budget (shared by every concurrent batch). */
  async take(keys: number, signal?: AbortSignal): Promise<void> {
    if (!this.keysPerSecond) return;
    const now = Date.now();
    const startAt = Math.max(this.nextAt, now);
    this.nextAt = startAt + (keys / this.keysPerSecond) * 1000;
    if (startAt > now) await new Promise((resolve) => setTimeout(resolve, startAt - now));
    signal?.throwIfAborted();
  }
}
