/**
 * A client's Pub/Sub subscriptions through the proxy.
 *
 * In Redis Cluster a PUBLISH reaches every node over the cluster bus, so SUBSCRIBE and PSUBSCRIBE
 * need one connection to any master; SSUBSCRIBE needs one to the master of each shard channel's
 * slot. Those connections run in pipe mode: every frame they bring (confirmations, messages,
 * RESP3 pushes) goes straight to the client, and Redis itself enforces what a subscribed client
 * may send.
 */
import { keySlot } from "../cluster/key-slot.ts";
import { RedisErrors } from "../errors.ts";
import { errorReply } from "../resp/encode.ts";
import { replyBuffer, type ReplyBytes } from "../resp/reply-scanner.ts";
import type { BackendConnection } from "./backend.ts";
import type { CommandView } from "./command-view.ts";
import type { CommandHandler, CommandSpec, Session, SubscriptionCommands } from "./command-spec.ts";
import type { OrderedReplies, ReplySlot } from "./ordered-replies.ts";

/** Redis's client-output-buffer-limit for pubsub clients (hard limit): a slower subscriber is dropped. */
export const PUBSUB_OUTPUT_LIMIT = 32 * 1024 * 1024;

const CROSSSLOT = errorReply(RedisErrors.crossSlot);

/** What a RESP2 client may send while subscribed (Redis enforces the rest on the pipe). */
export const SUBSCRIBED_ALLOWED: ReadonlySet<string> = new Set([
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
  "ping",
  "quit",
  "reset",
]);

const subscription: CommandHandler = (session, view, spec) => session.pubsub.subscription(view, spec);

/** The commands this file runs, each with its handler (the command table reads their mode from here). */
export const PUBSUB_COMMANDS = {
  subscribe: subscription,
  psubscribe: subscription,
  unsubscribe: subscription,
  punsubscribe: subscription,
  ssubscribe: subscription,
  sunsubscribe: subscription,
} satisfies Record<string, CommandHandler>;

/** Whether a session is in subscribed mode (as Redis last reported its subscription counts). */
export const enum SubscriptionState {
  None,
  Subscribed,
}

/** The subscription connections of one session. */
class Subscriptions {
  /** Connection for SUBSCRIBE / PSUBSCRIBE. */
  classic: BackendConnection | null = null;
  /** Connections for SSUBSCRIBE, by node address. */
  readonly shard = new Map<string, BackendConnection>();
  /** Subscription counts as Redis last reported them (channels + patterns; shard channels). */
  private classicCount = 0;
  private shardCount = new Map<string, number>();

  /** The client has at least one subscription. */
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

  closeAll(): void {
    for (const connection of [...(this.classic ? [this.classic] : []), ...this.shard.values()]) {
      connection.pipe = null;
      connection.close();
    }
  }
}

/** One session's subscriptions: the commands that change them, and the frames their connections bring. */
export class SessionPubSub implements SubscriptionCommands {
  state = SubscriptionState.None;
  /** Pub/Sub frames held until the replies due before them are written (RESP2 ordering). */
  heldFrames: ReplyBytes[] = [];
  /** Made at the first subscription command. */
  private subscriptions: Subscriptions | null = null;

  constructor(
    private readonly session: Session,
    private readonly replies: OrderedReplies<ReplySlot>,
  ) {}

  get active(): boolean {
    return this.state === SubscriptionState.Subscribed;
  }

  /** SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs: sent on the subscription connection. */
  subscription(view: CommandView, spec: CommandSpec): void {
    if (spec.name !== "ssubscribe" && spec.name !== "sunsubscribe") {
      // Any master hears every PUBLISH.
      return this.connection(spec.name, -1).sendRaw(view.frame());
    }
    // Shard channels live in the slot of their name; all of one command's must share it.
    let slot = -1;
    for (let i = 1; i < view.argc; i++) {
      const s = keySlot(view.buf, view.argStart(i), view.argEnd(i));
      if (slot >= 0 && s !== slot) return this.session.reply(CROSSSLOT);
      slot = s;
    }
    const subscriptions = this.subscriptions;
    if (spec.name === "sunsubscribe" && slot < 0 && subscriptions !== null && subscriptions.shard.size > 0) {
      for (const connection of subscriptions.shard.values()) connection.sendRaw(view.frame());
      return;
    }
    this.connection(spec.name, slot).sendRaw(view.frame());
  }

  /** A subscribed RESP2 client's PING is answered by Redis in the subscriber format. */
  ping(view: CommandView): void {
    this.connection("ping", -1).sendRaw(view.frame());
  }

  /** Writes the frames held for the replies that were due before them (none are due any more). */
  emitHeld(): void {
    const held = this.heldFrames;
    this.heldFrames = [];
    for (const frame of held) this.replies.emit(frame);
  }

  /** Drops every subscription (client gone, or RESET). */
  end(): void {
    this.subscriptions?.closeAll();
    this.subscriptions = null;
    this.setState(SubscriptionState.None);
    this.heldFrames = [];
  }

  /** The pipe-mode connection for a subscription command: shard channels by slot, others to any master. */
  private connection(name: string, slot: number): BackendConnection {
    const subscriptions = (this.subscriptions ??= new Subscriptions());
    const sharded = name === "ssubscribe" || name === "sunsubscribe";
    const { router, config } = this.session.context;
    const address = router.masterFor(slot, this.session.id);
    if (!sharded && subscriptions.classic !== null) return subscriptions.classic;
    if (sharded && address !== undefined && subscriptions.shard.has(address))
      return subscriptions.shard.get(address)!;
    const connection = router.openSessionConnection(address ?? config.seeds[0]!, this.session.protocol);
    connection.pipe = (reply) => this.onFrame(subscriptions, connection, reply);
    // Losing a subscription connection must not go unnoticed: the client reconnects and resubscribes.
    connection.onClosed = () => connection.pipe !== null && this.session.destroy();
    if (sharded) subscriptions.shard.set(connection.address, connection);
    else subscriptions.classic = connection;
    return connection;
  }

  private onFrame(subscriptions: Subscriptions, connection: BackendConnection, reply: ReplyBytes): void {
    if (this.subscriptions === subscriptions) {
      subscriptions.observe(connection, reply);
      this.setState(subscriptions.active ? SubscriptionState.Subscribed : SubscriptionState.None);
    }
    // RESP3 pushes are out of band; RESP2 frames wait for the replies due before them.
    if (this.session.protocol === 3 || this.replies.queue.length === 0) this.replies.emit(reply);
    else this.heldFrames.push(reply);
  }

  private setState(state: SubscriptionState): void {
    this.state = state;
    // A subscriber that does not keep up is dropped, as Redis's pubsub output buffer limit does.
    this.replies.hardLimit = state === SubscriptionState.Subscribed ? PUBSUB_OUTPUT_LIMIT : Infinity;
  }
}
