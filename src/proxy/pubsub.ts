/**
 * A client's Pub/Sub subscriptions through the proxy.
 *
 * In Redis Cluster a PUBLISH reaches every node over the cluster bus, so SUBSCRIBE and PSUBSCRIBE
 * need one connection to any master; SSUBSCRIBE needs one to the master of each shard channel's
 * slot. Those connections run in pipe mode: every frame they bring (confirmations, messages,
 * RESP3 pushes) goes straight to the client, and Redis itself enforces what a subscribed client
 * may send.
 */
import type { BackendConnection } from "./backend.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { replyBuffer } from "../resp/reply-scanner.ts";

/** Redis's client-output-buffer-limit for pubsub clients (hard limit): a slower subscriber is dropped. */
export const PUBSUB_OUTPUT_LIMIT = 32 * 1024 * 1024;

export class Subscriptions {
  /** Connection for SUBSCRIBE / PSUBSCRIBE. */
  classic: BackendConnection | null = null;
  /** Connections for SSUBSCRIBE, by node address. */
  readonly shard = new Map<string, BackendConnection>();
  /** Subscription counts as Redis last reported them (channels + patterns; shard channels). */
  private classicCount = 0;
  private shardCount = new Map<string, number>();

  /** The client is in subscribed mode: it has at least one subscription. */
  get active(): boolean {
    if (this.classicCount > 0) return true;
    for (const n of this.shardCount.values()) if (n > 0) return true;
    return false;
  }

  /** Updates the counts from a confirmation frame ((p|s)(un)subscribe replies end with the new count). */
  observe(connection: BackendConnection, reply: ReplyBytes): void {
    const bytes = replyBuffer(reply);
    // RESP2 "*3\r\n$9\r\nsubscribe..." or RESP3 ">3\r\n$9\r\nsubscribe...": kind name at offset 8 or 9.
    const head = bytes.toString("latin1", 0, 24).toLowerCase();
    if (!/^[*>]3\r\n\$\d+\r\n[ps]?(un)?subscribe\r\n/.test(head)) return;
    const tail = bytes.toString("latin1", Math.max(0, bytes.length - 24));
    const match = /:(\d+)\r\n$/.exec(tail);
    if (!match) return;
    const count = Number(match[1]);
    if (/^[*>]3\r\n\$\d+\r\ns(un)?subscribe/.test(head)) this.shardCount.set(connection.address, count);
    else this.classicCount = count;
  }

  all(): BackendConnection[] {
    return [...(this.classic ? [this.classic] : []), ...this.shard.values()];
  }

  closeAll(): void {
    for (const connection of this.all()) {
      connection.pipe = null;
      connection.close();
    }
    this.classic = null;
    this.shard.clear();
    this.classicCount = 0;
    this.shardCount.clear();
  }
}
