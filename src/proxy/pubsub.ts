/**
 * A client's Pub/Sub subscriptions through the proxy, placed so that the cluster counts and
 * delivers as one Redis would.
 *
 * - A channel lives on the master of its name's slot, on a connection of this client's own there.
 *   PUBLISH is routed by the same slot (./commands.ts), so the node that runs it holds exactly one
 *   subscription per subscribed client of the whole fleet (every worker of every host places them
 *   alike), and its count is the one a single Redis would give. Messages reach every node over the
 *   cluster bus; each channel's are taken from the one node it lives on.
 * - A pattern lives on every master, so whichever node a PUBLISH runs on counts its matches; its
 *   messages (which every node delivers) are taken from one of them, the session's first link.
 * - Keyspace channels (`__keyspace@...`, `__keyevent@...`) live on every master too: each master
 *   emits the events of its own keys and sends them over no bus, so every one is taken. Replicas
 *   are never subscribed to (they repeat their master's events for the writes they replay).
 * The confirmations are the proxy's own, with the counts Redis gives, sent once every node
 * involved confirmed (so a PUBLISH after them is heard and counted). When the masters change, the
 * worker's hub (./pubsub-hub.ts) has every session place its subscriptions again.
 *
 * SSUBSCRIBE needs one connection to the master of each shard channel's slot; those run in pipe
 * mode, every frame going straight to the client.
 */
import { keySlot } from "../cluster/key-slot.ts";
import { RedisErrors } from "../errors.ts";
import { decodeReply } from "../resp/decode.ts";
import { errorReply } from "../resp/encode.ts";
import { replyBuffer, type ReplyBytes } from "../resp/reply-scanner.ts";
import { encodeCommand } from "../resp/request-parser.ts";
import { ConnectionState, type BackendConnection } from "./backend.ts";
import type { CommandView } from "./command-view.ts";
import type { CommandHandler, CommandSpec, Session, SubscriptionCommands } from "./command-spec.ts";
import type { OrderedReplies, ReplySlot } from "./ordered-replies.ts";
import { Monitor } from "./monitor.ts";
import { isKeyspaceChannel } from "./pubsub-counts.ts";
import { hubFor, type HubMember, type PubSubHub } from "./pubsub-hub.ts";
import { Request } from "./request.ts";

/** Redis's client-output-buffer-limit for pubsub clients (hard limit): a slower subscriber is dropped. */
export const PUBSUB_OUTPUT_LIMIT = 32 * 1024 * 1024;

const CROSSSLOT = errorReply(RedisErrors.crossSlot);

/** How long a former master's unsubscribe confirmation is awaited (requests to its heir wait as long). */
const RETIRE_WAIT_MS = 1000;

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

/** Whether a session is in subscribed mode (it has a channel, a pattern or a shard channel). */
export const enum SubscriptionState {
  None,
  Subscribed,
}

function channelSlot(name: string): number {
  const bytes = Buffer.from(name, "latin1");
  return keySlot(bytes, 0, bytes.length);
}

/** A confirmation as Redis writes it: kind, name (or nil), the client's subscription count. */
function confirmation(kind: string, name: string | null, count: number, protocol: 2 | 3): Buffer {
  const head = `${protocol === 3 ? ">" : "*"}3\r\n$${kind.length}\r\n${kind}\r\n`;
  const body =
    name === null
      ? protocol === 3
        ? "_\r\n"
        : "$-1\r\n"
      : `$${Buffer.byteLength(name, "latin1")}\r\n${name}\r\n`;
  return Buffer.from(`${head}${body}:${count}\r\n`, "latin1");
}

/** Confirmations still due from nodes for one change; `then` runs once they all came (or their nodes went). */
class Change {
  private left = 0;
  private sealed = false;
  constructor(private readonly then: () => void) {}
  expect(n: number): void {
    this.left += n;
  }
  confirmed(n: number): void {
    this.left -= n;
    if (this.sealed && this.left === 0) this.then();
  }
  /** Every request of the change is sent. */
  seal(): void {
    this.sealed = true;
    if (this.left === 0) this.then();
  }
}

/** A session's connection to one master for SUBSCRIBE and PSUBSCRIBE. */
class NodeLink {
  /** Channels and patterns subscribed (or being subscribed) there. */
  readonly channels = new Set<string>();
  readonly patterns = new Set<string>();
  /** Confirmations expected, in the order the node sends them: [change, how many]. */
  private readonly expected: [Change, number][] = [];
  /** Leaving: its node is no longer a master, or nothing is subscribed there any more. */
  retiring = false;
  /** Stops a retirement whose UNSUBSCRIBE is not sent yet (the node is a master again). */
  stay: (() => void) | null = null;
  /** It stayed: what the client subscribed to meanwhile went to the masters only, not here. */
  stayed = false;

  constructor(
    readonly address: string,
    readonly connection: BackendConnection,
  ) {}

  get empty(): boolean {
    return this.channels.size === 0 && this.patterns.size === 0;
  }

  send(command: string, names: string[], change: Change): void {
    if (names.length === 0) return;
    const set = command.startsWith("p") ? this.patterns : this.channels;
    for (const name of names) {
      if (command.includes("un")) set.delete(name);
      else set.add(name);
    }
    this.connection.sendRaw(encodeCommand([command, ...names.map((n) => Buffer.from(n, "latin1"))]));
    this.expected.push([change, names.length]);
    change.expect(names.length);
  }

  /** One confirmation frame came. */
  confirmed(): void {
    const head = this.expected[0];
    if (head === undefined) return;
    if (--head[1] === 0) this.expected.shift();
    head[0].confirmed(1);
  }

  /** The connection is gone: its confirmations will never come. */
  lost(): void {
    for (const [change, n] of this.expected.splice(0)) change.confirmed(n);
  }
}

/** The shard channel connections of one session (SSUBSCRIBE), in pipe mode. */
class ShardSubscriptions {
  readonly connections = new Map<string, BackendConnection>();
  /** Shard channel counts as Redis last reported them, by node. */
  private readonly counts = new Map<string, number>();

  get active(): boolean {
    for (const n of this.counts.values()) if (n > 0) return true;
    return false;
  }

  /** Updates the count from a confirmation frame (s(un)subscribe replies end with the new count). */
  observe(connection: BackendConnection, reply: ReplyBytes): void {
    const bytes = replyBuffer(reply);
    const head = bytes.toString("latin1", 0, 24).toLowerCase();
    if (!/^[*>]3\r\n\$\d+\r\ns(un)?subscribe\r\n/.test(head)) return;
    const match = /:(\d+)\r\n$/.exec(bytes.toString("latin1", Math.max(0, bytes.length - 24)));
    if (match) this.counts.set(connection.address, Number(match[1]));
  }

  closeAll(): void {
    for (const connection of this.connections.values()) {
      connection.pipe = null;
      connection.close();
    }
    this.connections.clear();
    this.counts.clear();
  }
}

/** One session's subscriptions: the commands that change them, and the frames their connections bring. */
export class SessionPubSub implements SubscriptionCommands, HubMember {
  state = SubscriptionState.None;
  /** Pub/Sub frames held until the replies due before them are written (RESP2 ordering). */
  heldFrames: ReplyBytes[] = [];
  /** The client's channels and patterns (latin1 strings: binary-safe), in subscription order. */
  private readonly channels = new Set<string>();
  private readonly patterns = new Set<string>();
  /** Channels and patterns that must live on every master (keyspace channels, patterns). */
  private everywhereCount = 0;
  private readonly links = new Map<string, NodeLink>();
  /** Each (non-keyspace) channel's node: its messages are taken from there only. */
  private readonly home = new Map<string, string>();
  /** Subscription commands whose confirmations are not written yet: messages wait behind them. */
  private unconfirmed = 0;
  private shard: ShardSubscriptions | null = null;
  private monitorStream: Monitor | null = null;
  private hub: PubSubHub | null = null;
  /** Counts RESETs: a change confirmed after one belongs to subscriptions that are gone. */
  private epoch = 0;

  constructor(
    private readonly session: Session,
    private readonly replies: OrderedReplies<ReplySlot>,
  ) {}

  get active(): boolean {
    return this.state === SubscriptionState.Subscribed;
  }

  /** SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs. */
  subscription(view: CommandView, spec: CommandSpec): void {
    const names: string[] = [];
    for (let i = 1; i < view.argc; i++)
      names.push(view.buf.toString("latin1", view.argStart(i), view.argEnd(i)));
    switch (spec.name) {
      case "subscribe":
        return this.subscribe(names, false);
      case "psubscribe":
        return this.subscribe(names, true);
      case "unsubscribe":
        return this.unsubscribe(names, false);
      case "punsubscribe":
        return this.unsubscribe(names, true);
      default:
        return this.shardSubscription(view, spec);
    }
  }

  /** A subscribed RESP2 client's PING: answered in the subscriber format, as Redis does. */
  ping(view: CommandView): void {
    const arg = view.argc > 1 ? view.buf.subarray(view.argStart(1), view.argEnd(1)) : Buffer.alloc(0);
    this.session.reply(
      Buffer.concat([Buffer.from(`*2\r\n$4\r\npong\r\n$${arg.length}\r\n`), arg, Buffer.from("\r\n")]),
    );
  }

  /** Writes the frames held for the replies that were due before them (none are due any more). */
  emitHeld(): void {
    if (this.unconfirmed > 0) return;
    const held = this.heldFrames;
    this.heldFrames = [];
    for (const frame of held) this.replies.emit(frame);
  }

  /** Drops every subscription (client gone, or RESET). */
  end(): void {
    for (const link of this.links.values()) this.close(link);
    this.links.clear();
    this.channels.clear();
    this.patterns.clear();
    this.home.clear();
    this.setEverywhere(0);
    this.shard?.closeAll();
    this.shard = null;
    this.monitorStream?.end();
    this.monitorStream = null;
    this.hub?.leave(this);
    this.hub = null;
    this.unconfirmed = 0;
    this.epoch++;
    this.setState();
    this.heldFrames = [];
  }

  private subscribe(names: string[], pattern: boolean): void {
    const set = pattern ? this.patterns : this.channels;
    const kind = pattern ? "psubscribe" : "subscribe";
    const hub = this.joinHub();
    const frames: Buffer[] = [];
    const byNode = new Map<string, string[]>();
    const add = (address: string, name: string) => {
      const list = byNode.get(address);
      if (list === undefined) byNode.set(address, [name]);
      else list.push(name);
    };
    for (const name of names) {
      if (!set.has(name)) {
        set.add(name);
        if (pattern || isKeyspaceChannel(name)) {
          this.setEverywhere(this.everywhereCount + 1);
          for (const address of hub.masters) add(address, name);
        } else {
          const address = this.ownerOf(name);
          this.home.set(name, address);
          add(address, name);
        }
      }
      frames.push(confirmation(kind, name, this.count, this.session.protocol));
    }
    this.setState();
    this.change(Buffer.concat(frames), (change) => {
      for (const [address, list] of byNode) this.link(address).send(kind, list, change);
    });
  }

  private unsubscribe(names: string[], pattern: boolean): void {
    const set = pattern ? this.patterns : this.channels;
    const kind = pattern ? "punsubscribe" : "unsubscribe";
    if (names.length === 0) {
      if (set.size === 0) {
        this.session.reply(confirmation(kind, null, this.count, this.session.protocol));
        return;
      }
      names = [...set];
    }
    const frames: Buffer[] = [];
    const removed: string[] = [];
    for (const name of names) {
      if (set.delete(name)) {
        removed.push(name);
        this.home.delete(name);
        if (pattern || isKeyspaceChannel(name)) this.setEverywhere(this.everywhereCount - 1);
      }
      frames.push(confirmation(kind, name, this.count, this.session.protocol));
    }
    this.setState();
    this.change(Buffer.concat(frames), (change) => {
      for (const link of this.links.values()) {
        const there = pattern ? link.patterns : link.channels;
        link.send(
          kind,
          removed.filter((name) => there.has(name)),
          change,
        );
      }
    });
  }

  /**
   * Runs a change's requests and answers the client once the nodes confirmed them (so a PUBLISH
   * sent after the answer is heard and counted); messages wait behind the answer.
   */
  private change(reply: Buffer, send: (change: Change) => void): void {
    const answer = this.later();
    const change = new Change(() => answer(reply));
    send(change);
    change.seal();
  }

  /** A place in the client's reply order for an answer that comes later; messages wait behind it. */
  private later(): (reply: Buffer) => void {
    const slot = new Request(null);
    this.replies.queue.push(slot);
    this.unconfirmed++;
    const epoch = this.epoch;
    return (reply) => {
      if (epoch !== this.epoch) return;
      this.unconfirmed--;
      slot.reply = reply;
      slot.done = true;
      this.closeEmptyLinks();
      if (this.replies.release(slot) && this.replies.queue.length === 0) {
        this.emitHeld();
        this.session.repliesDrained();
      }
    };
  }

  /** MONITOR: every master's stream, merged (./monitor.ts); a second MONITOR is ignored, as Redis does. */
  monitor(): void {
    if (this.monitorStream !== null) return;
    const answer = this.later();
    this.monitorStream = new Monitor(
      hubFor(this.session.context.router),
      (line) => this.deliver(line),
      answer,
    );
  }

  /** Places the subscriptions again after the masters or the slot map changed. */
  reconcile(): void {
    const hub = this.hub;
    if (hub === null) return;
    const router = hub.router;
    for (const link of this.links.values()) {
      if (hub.masters.has(link.address)) {
        // A master again before it was left (the map that demoted it was stale): still subscribed.
        link.stay?.();
        continue;
      }
      if (link.retiring) continue;
      // No longer a master (failed over, or left): its events from now on repeat another's.
      link.retiring = true;
      const settled = hub.begin();
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        clearTimeout(timer);
        settled();
        this.close(link);
      };
      const stay = () => {
        link.stay = null;
        link.retiring = false;
        link.stayed = true;
        settled();
      };
      link.stay = stay;
      // Not before this worker's writes to it are answered (see afterInFlight); then its last own
      // events come before the confirmation; a node that cannot answer has none to send.
      hub.afterInFlight(
        link.address,
        () => {
          if (link.stay !== stay) return; // it stayed (and may be retiring again, under a later call)
          link.stay = null;
          if (link.connection.state === ConnectionState.Closed) return leave();
          timer = setTimeout(leave, RETIRE_WAIT_MS).unref();
          const change = new Change(leave);
          link.send("unsubscribe", [...link.channels], change);
          link.send("punsubscribe", [...link.patterns], change);
          change.seal();
        },
        RETIRE_WAIT_MS,
      );
    }
    if (this.everywhereCount > 0) {
      const channels = [...this.channels].filter(isKeyspaceChannel);
      const patterns = [...this.patterns];
      for (const address of hub.masters) {
        const link = this.links.get(address);
        const live = link !== undefined && !link.retiring;
        if (live ? !link.stayed : !hub.mayConnect(address)) continue;
        // A link that stayed may lack what the client subscribed to while it was retiring.
        if (live) link.stayed = false;
        const wanted = live ? channels.filter((c) => !link.channels.has(c)) : channels;
        const wantedPatterns = live ? patterns.filter((p) => !link.patterns.has(p)) : patterns;
        if (wanted.length === 0 && wantedPatterns.length === 0) continue;
        const change = new Change(hub.beginFor(address));
        const there = this.link(address);
        there.send("subscribe", wanted, change);
        there.send("psubscribe", wantedPatterns, change);
        change.seal();
      }
    }
    for (const [name, address] of this.home) {
      const owner = router.masterFor(channelSlot(name));
      if (owner === undefined || !hub.masters.has(owner) || !hub.mayConnect(owner)) continue;
      const there = this.links.get(owner);
      if (there !== undefined && !there.retiring && there.channels.has(name)) continue; // there, or on its way
      // The slot moved (or its node's connection was lost): subscribe where it lives now, then
      // take its messages from there and leave the old node.
      const change = new Change(() => {
        if (this.home.get(name) !== address || !this.links.has(owner)) return;
        this.home.set(name, owner);
        const old = this.links.get(address);
        if (address !== owner && old !== undefined && old.channels.has(name)) {
          const leave = new Change(() => this.closeEmptyLinks());
          old.send("unsubscribe", [name], leave);
          leave.seal();
        }
      });
      this.link(owner).send("subscribe", [name], change);
      change.seal();
    }
  }

  /** Takes a frame from a node: a confirmation counts towards its change, a message goes to the client if it is this node's to deliver. */
  private onLinkFrame(link: NodeLink, reply: ReplyBytes): void {
    const value = decodeReply(reply);
    if (!Array.isArray(value) || !Buffer.isBuffer(value[0])) return;
    const kind = value[0].toString("latin1");
    switch (kind) {
      case "subscribe":
      case "unsubscribe":
      case "psubscribe":
      case "punsubscribe":
        return link.confirmed();
      case "message": {
        const channel = (value[1] as Buffer).toString("latin1");
        if (!this.channels.has(channel)) return;
        if (!isKeyspaceChannel(channel) && this.home.get(channel) !== link.address) return;
        return this.deliver(reply);
      }
      case "pmessage": {
        const pattern = (value[1] as Buffer).toString("latin1");
        if (!this.patterns.has(pattern)) return;
        if (!isKeyspaceChannel((value[2] as Buffer).toString("latin1")) && this.patternHome() !== link)
          return;
        return this.deliver(reply);
      }
    }
  }

  /** The link whose copies of pattern messages (every master delivers them) the client gets. */
  private patternHome(): NodeLink | undefined {
    for (const link of this.links.values()) if (!link.retiring && link.patterns.size > 0) return link;
    return undefined;
  }

  private deliver(frame: ReplyBytes): void {
    // RESP3 pushes are out of band; RESP2 frames wait for the replies due before them.
    if (this.unconfirmed === 0 && (this.session.protocol === 3 || this.replies.queue.length === 0))
      this.replies.emit(frame);
    else this.heldFrames.push(frame);
  }

  private link(address: string): NodeLink {
    const existing = this.links.get(address);
    if (existing !== undefined && !existing.retiring) return existing;
    const connection = this.joinHub().router.openSessionConnection(address, this.session.protocol);
    const link = new NodeLink(address, connection);
    connection.pipe = (reply) => this.onLinkFrame(link, reply);
    // A node lost (failover, network) is placed again at the next slot map; its confirmations are void.
    connection.onClosed = () => {
      link.lost();
      if (this.links.get(address) !== link) return;
      this.links.delete(address);
      this.hub?.lost(address);
    };
    this.links.set(address, link);
    return link;
  }

  private close(link: NodeLink): void {
    if (this.links.get(link.address) === link) this.links.delete(link.address);
    link.connection.pipe = null;
    link.connection.close();
  }

  /** Links with nothing subscribed and nothing awaited cost a connection each: closed. */
  private closeEmptyLinks(): void {
    if (this.unconfirmed > 0) return;
    for (const link of this.links.values()) if (link.empty && !link.retiring) this.close(link);
  }

  private ownerOf(name: string): string {
    const { router, config } = this.session.context;
    return router.masterFor(channelSlot(name)) ?? config.seeds[0]!;
  }

  private joinHub(): PubSubHub {
    if (this.hub === null) {
      this.hub = hubFor(this.session.context.router);
      this.hub.join(this);
    }
    return this.hub;
  }

  private setEverywhere(count: number): void {
    this.everywhereCount = count;
    this.hub?.setEverywhere(this, count > 0);
  }

  /** The client's subscription count, as Redis reports it (channels and patterns). */
  private get count(): number {
    return this.channels.size + this.patterns.size;
  }

  private shardSubscription(view: CommandView, spec: CommandSpec): void {
    // Shard channels live in the slot of their name; all of one command's must share it.
    let slot = -1;
    for (let i = 1; i < view.argc; i++) {
      const s = keySlot(view.buf, view.argStart(i), view.argEnd(i));
      if (slot >= 0 && s !== slot) return this.session.reply(CROSSSLOT);
      slot = s;
    }
    const shard = (this.shard ??= new ShardSubscriptions());
    if (spec.name === "sunsubscribe" && slot < 0 && shard.connections.size > 0) {
      for (const connection of shard.connections.values()) connection.sendRaw(view.frame());
      return;
    }
    this.shardConnection(shard, slot).sendRaw(view.frame());
  }

  private shardConnection(shard: ShardSubscriptions, slot: number): BackendConnection {
    const { router, config } = this.session.context;
    const address = router.masterFor(slot, this.session.id);
    if (address !== undefined && shard.connections.has(address)) return shard.connections.get(address)!;
    const connection = router.openSessionConnection(address ?? config.seeds[0]!, this.session.protocol);
    connection.pipe = (reply) => this.onShardFrame(shard, connection, reply);
    // Losing a shard channel connection must not go unnoticed: the client reconnects and resubscribes.
    connection.onClosed = () => connection.pipe !== null && this.session.destroy();
    shard.connections.set(connection.address, connection);
    return connection;
  }

  private onShardFrame(shard: ShardSubscriptions, connection: BackendConnection, reply: ReplyBytes): void {
    if (this.shard === shard) {
      shard.observe(connection, reply);
      this.setState();
    }
    this.deliver(reply);
  }

  private setState(): void {
    const subscribed = this.count > 0 || (this.shard?.active ?? false);
    this.state = subscribed ? SubscriptionState.Subscribed : SubscriptionState.None;
    // A subscriber that does not keep up is dropped, as Redis's pubsub output buffer limit does.
    this.replies.hardLimit = subscribed ? PUBSUB_OUTPUT_LIMIT : Infinity;
  }
}
