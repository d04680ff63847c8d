/**
 * Client-side caching through the proxy (CLIENT TRACKING): the worker's side, shared by its
 * tracking clients (./session.ts holds each client's side and the commands).
 *
 * How a worker learns of every write, wherever it is made (another worker, another proxy host, a
 * client connected to a shard): the shards tell it, as Redis tells any tracking client.
 *
 * - Per master, the worker keeps one invalidation connection (RESP3, so invalidations arrive as
 *   `>2 invalidate` pushes in pipe mode), opened when the first tracking client of the worker
 *   appears.
 * - Tracking clients' commands ride tracked data connections of their own
 *   (`connectionsPerShard` per master and protocol), each in `CLIENT TRACKING on REDIRECT <id of
 *   the invalidation connection>` (default mode): the shard remembers every key read on them and
 *   sends the invalidation to the worker. Non-tracking clients keep the shared pools, untouched:
 *   their only cost is the `tracked` flag the router tests per request. All of a tracking
 *   client's commands (writes too) take the tracked connections, so its own commands keep their
 *   order on one connection per shard, as before.
 *   Why not OPTIN on the shared pools with `CLIENT CACHING yes` before each tracked read: an ASK
 *   redirect needs ASKING right before the command, and CACHING's flag only lasts one command, so
 *   a read during a migration could not be both; and every shared connection would carry the
 *   extra +OK. Separate connections cost `connectionsPerShard` more connections per master and
 *   protocol in a worker that has tracking clients, and nothing otherwise.
 * - The worker keeps, per key read by its tracking clients, which of them read it (the shard
 *   tracks the worker's connection, not the client), and forwards each invalidation to exactly
 *   those. OPTIN/OPTOUT are the proxy's filter on which reads it records (the shard tracks all
 *   reads on a tracked connection, so a few extra invalidations reach the worker, none a client).
 * - BCAST: the invalidation connections turn on `CLIENT TRACKING on BCAST PREFIX ...` with the
 *   union of the worker's BCAST clients' prefixes, so only writes under those prefixes travel. The
 *   alternative, BCAST over all keys on every invalidation connection, would send every write of
 *   the cluster to every worker: at 100 shards x 20 hosts x 8 workers, each write becomes 160
 *   pushes (1M writes/s -> 160M pushes/s fleet-wide, ~1.6M/s into each worker) before any client
 *   asked for one. Here a worker hears only of keys its clients read (default mode) or of the
 *   prefixes they asked for.
 *
 * When tracking state can be lost, the clients are told, so none keeps a stale value:
 * - a slot changes owner (migration, failover: the new owner has no tracking state for us): the
 *   keys of the moved slots are invalidated (a migration's MIGRATE already deleted them on the
 *   source, which invalidates them there too);
 * - an invalidation or tracked data connection breaks, or a data connection's tracking setup is
 *   refused: every tracking client of the worker gets the flush (the null invalidation Redis sends
 *   on FLUSHALL);
 * - a new master appears while BCAST clients exist: they get the flush once BCAST is on there.
 * - The read/invalidate race: the invalidation of a key can reach the worker (on its invalidation
 *   connection) before the reply of a read of that key made just before the write (on a data
 *   connection). So every invalidation a client gets while it has replies due is sent again once
 *   they are all written (./session.ts): a stale reply is always followed by its invalidation.
 *
 * When the worker's last tracking client leaves, its invalidation and tracked data connections
 * close after `IDLE_CLOSE_MS` (a client reconnecting at once finds them still open, so no churn),
 * and open again on demand, as they did the first time.
 *
 * Known limits: a client that turns tracking on while earlier commands of its pipeline are still
 * in flight on the shared pools may see a later command (now on a tracked connection) overtake
 * them; clients turn tracking on right after connecting, so this is left.
 *
 * NOLOOP cannot be exact: a tracked connection carries several clients' writes, and the shard
 * does not say whose write caused an invalidation. A NOLOOP client therefore also gets the
 * invalidations of its own writes (an extra invalidation is safe; a missing one would not be).
 */
import type { SlotMap } from "../../cluster/slot-map.ts";
import { keySlot } from "../../cluster/key-slot.ts";
import { decodeReply } from "../../resp/decode.ts";
import { replyBuffer, type ReplyBytes } from "../../resp/reply-scanner.ts";
import { encodeCommand } from "../../resp/request-parser.ts";
import { ConnectionState, type BackendConnection } from "../backend.ts";
import { Request, type ReplySink } from "../request.ts";

/** What the hub needs of the worker's router (./router.ts). */
export interface TrackingRouter {
  readonly map: SlotMap | null;
  openSessionConnection(address: string, protocol: 2 | 3): BackendConnection;
  /** A connection whose lost requests the router handles as a shared one's (reads resent). */
  openTrackedConnection(address: string, protocol: 2 | 3): BackendConnection;
  onMapChange(listener: (map: SlotMap) => void): void;
  /** Tracked requests take the connection `route` gives (null: held until `retryHeld`). */
  setTracked(route: (address: string, protocol: 2 | 3, affinity: number) => BackendConnection | null): void;
  retryHeld(): void;
}

/** A tracking client as the hub sees it (./session.ts). */
export interface TrackingMember {
  /** The client's BCAST prefixes (latin1), or null when not in BCAST mode. */
  readonly bcastPrefixes: readonly string[] | null;
  /** Tells the client these keys changed (null: all of them, the flush). */
  invalidate(keys: readonly Buffer[] | null): void;
  /** The keys it read that the hub remembers for it (the hub removes them as they are invalidated). */
  readonly keys: Set<string>;
}

/**
 * Keys the worker remembers for its tracking clients at most; past it the oldest are invalidated
 * and forgotten (Redis's tracking-table-max-keys, whose default this is, does the same).
 */
export const MAX_TRACKED_KEYS = 1_000_000;
/** How long after losing a node's invalidation connection before it is opened again. */
const RECONNECT_AFTER_MS = 1000;
/** How long the connections stay open after the worker's last tracking client left. */
export const IDLE_CLOSE_MS = 2000;
/** How long a retired node's data connections may finish their replies before they close. */
const RETIRE_CLOSE_MS = 5000;
const SLOTS = 16384;
const PUSH = 62;
const COLON = 58;

/** The worker's tracking state at one master: its invalidation connection and tracked data connections. */
class NodeTracking implements ReplySink {
  /** The invalidation connection's client id on the node; 0 until known. */
  id = 0;
  readonly data: Record<2 | 3, (BackendConnection | null)[]> = { 2: [], 3: [] };
  /** Handlers for the invalidation connection's replies (not pushes), in the order they are due. */
  private readonly expected: ((reply: ReplyBytes, firstByte: number) => void)[] = [];
  /** The BCAST prefixes in force on the invalidation connection (null: BCAST off). */
  bcast: string[] | null = null;
  retired = false;

  constructor(
    readonly address: string,
    readonly inv: BackendConnection,
    private readonly hub: TrackingHub,
  ) {
    inv.pipe = (reply, firstByte) => this.onFrame(reply, firstByte);
    inv.onClosed = () => hub.nodeLost(this);
    this.command(["CLIENT", "ID"], (reply, firstByte) => {
      if (firstByte !== COLON) return inv.close();
      this.id = Number(replyBuffer(reply).toString("latin1", 1).trim());
      hub.nodeReady(this);
    });
  }

  get ready(): boolean {
    return this.id > 0 && !this.retired;
  }

  command(args: string[], then: (reply: ReplyBytes, firstByte: number) => void): void {
    this.expected.push(then);
    this.inv.sendRaw(encodeCommand(args));
  }

  private onFrame(reply: ReplyBytes, firstByte: number): void {
    if (firstByte === PUSH) {
      const value = decodeReply(reply);
      if (!Array.isArray(value) || !Buffer.isBuffer(value[0])) return;
      if (value[0].toString("latin1") !== "invalidate") return;
      const keys = value[1];
      this.hub.invalidated(Array.isArray(keys) ? keys.filter((k): k is Buffer => Buffer.isBuffer(k)) : null);
      return;
    }
    this.expected.shift()?.(reply, firstByte);
  }

  /** A tracked data connection to this node for `protocol`, opened (with its tracking setup) if needed. */
  connection(protocol: 2 | 3, affinity: number, perNode: number, router: TrackingRouter): BackendConnection {
    const list = this.data[protocol];
    const index = affinity % perNode;
    const existing = list[index];
    if (existing !== undefined && existing !== null && existing.state !== ConnectionState.Closed)
      return existing;
    const connection = router.openTrackedConnection(this.address, protocol);
    list[index] = connection;
    // The first command on it, before any client's: reads on it are tracked, invalidations redirected.
    const setup = new Request(this);
    setup.frame = encodeCommand(["CLIENT", "TRACKING", "on", "REDIRECT", String(this.id)]);
    setup.protocol = protocol;
    connection.send(setup);
    connection.onClosed = () => {
      if (list[index] === connection) list[index] = null;
      if (!this.retired) this.hub.trackingLost();
    };
    return connection;
  }

  /** The reply to a data connection's tracking setup: a refusal leaves reads untracked, so it goes. */
  complete(request: Request, reply: ReplyBytes): void {
    if (replyBuffer(reply)[0] !== 45) return;
    for (const connection of [...this.data[2], ...this.data[3]])
      if (connection !== null && connection.state !== ConnectionState.Closed) connection.close();
    this.hub.trackingLost();
  }

  /** Closes everything (the node is no longer a master, or the last tracking client left). */
  retire(): void {
    this.retired = true;
    this.inv.pipe = null;
    this.inv.close();
    for (const connection of [...this.data[2], ...this.data[3]]) {
      if (connection === null) continue;
      if (connection.pending === 0) connection.close();
      else setTimeout(() => connection.close(), RETIRE_CLOSE_MS).unref();
    }
  }
}

export class TrackingHub {
  private readonly nodes = new Map<string, NodeTracking>();
  /** Which of the worker's tracking clients read each key (latin1), as the shards track it for us. */
  private readonly readers = new Map<string, Set<TrackingMember>>();
  private readonly members = new Set<TrackingMember>();
  private readonly bcastMembers = new Set<TrackingMember>();
  /** When each node's invalidation connection was last lost. */
  private readonly lostAt = new Map<string, number>();
  /** Slot owners as of the last map, to find the slots that moved. */
  private owners: (string | undefined)[] | null = null;
  /** BCAST setups waiting for their nodes' confirmations. */
  private waiting: { left: Set<string>; done: () => void }[] = [];
  /** Closes the connections once no tracking client is left for `idleCloseMs`; null while one is. */
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly router: TrackingRouter,
    private readonly perNode: number,
    private readonly maxKeys = MAX_TRACKED_KEYS,
    private readonly idleCloseMs = IDLE_CLOSE_MS,
  ) {
    router.setTracked((address, protocol, affinity) => this.route(address, protocol, affinity));
    router.onMapChange((map) => this.onMap(map));
    if (router.map !== null) this.owners = ownersOf(router.map);
  }

  join(member: TrackingMember, then: () => void): void {
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    this.members.add(member);
    if (member.bcastPrefixes === null) {
      this.bcastMembers.delete(member);
      then();
      return;
    }
    this.bcastMembers.add(member);
    this.applyBcast(then);
  }

  leave(member: TrackingMember): void {
    for (const key of member.keys) this.forget(key, member);
    member.keys.clear();
    this.members.delete(member);
    if (this.bcastMembers.delete(member)) this.applyBcast(() => {});
    if (this.members.size === 0 && this.idleTimer === null)
      this.idleTimer = setTimeout(() => this.closeIdle(), this.idleCloseMs).unref();
  }

  /**
   * No tracking client came back: closes every node's connections (replies still due on a data
   * connection get RETIRE_CLOSE_MS). Nothing is lost: no client is left to tell, and a tracked
   * request opens a node's connections again (`route`), as the first one did.
   */
  private closeIdle(): void {
    this.idleTimer = null;
    if (this.members.size > 0) return;
    const nodes = [...this.nodes.values()];
    this.nodes.clear();
    for (const node of nodes) node.retire();
    this.readers.clear();
    // A tracked request still held for a node being set up (its client turned tracking off since)
    // is routed again: it opens that node anew rather than wait for a node that is gone.
    this.router.retryHeld();
  }

  /** A tracking client read `key` (latin1): its invalidation goes to the client. */
  remember(key: string, member: TrackingMember): void {
    let set = this.readers.get(key);
    if (set === undefined) {
      if (this.readers.size >= this.maxKeys)
        this.invalidated([Buffer.from(this.readers.keys().next().value!, "latin1")]);
      this.readers.set(key, (set = new Set()));
    }
    set.add(member);
    member.keys.add(key);
  }

  private forget(key: string, member: TrackingMember): void {
    const set = this.readers.get(key);
    if (set === undefined) return;
    set.delete(member);
    if (set.size === 0) this.readers.delete(key);
  }

  /** The connection a tracked request takes to `address`, or null while the node's tracking is being set up. */
  private route(address: string, protocol: 2 | 3, affinity: number): BackendConnection | null {
    const node = this.node(address);
    if (node === null || !node.ready) return null;
    return node.connection(protocol, affinity, this.perNode, this.router);
  }

  private node(address: string): NodeTracking | null {
    const existing = this.nodes.get(address);
    if (existing !== undefined) return existing;
    const lost = this.lostAt.get(address);
    if (lost !== undefined && Date.now() - lost < RECONNECT_AFTER_MS) return null;
    const node = new NodeTracking(address, this.router.openSessionConnection(address, 3), this);
    this.nodes.set(address, node);
    return node;
  }

  nodeReady(node: NodeTracking): void {
    if (this.nodes.get(node.address) !== node) return;
    if (this.bcastMembers.size > 0) this.setBcast(node, true);
    this.router.retryHeld();
  }

  /** A node's invalidation connection closed: what it would have told us is lost. */
  nodeLost(node: NodeTracking): void {
    for (const w of this.waiting) this.confirmed(w, node.address);
    if (node.retired) return;
    this.lostAt.set(node.address, Date.now());
    if (this.nodes.get(node.address) === node) this.nodes.delete(node.address);
    node.retire();
    this.trackingLost();
  }

  /** Tracking state on a shard was lost (a connection broke): every client drops its whole cache. */
  trackingLost(): void {
    this.invalidated(null);
  }

  /** An invalidation from a shard: its keys go to the clients that read them or watch their prefix. */
  invalidated(keys: readonly Buffer[] | null): void {
    if (keys === null) {
      this.readers.clear();
      for (const member of this.members) {
        member.keys.clear();
        member.invalidate(null);
      }
      return;
    }
    const perMember = new Map<TrackingMember, Buffer[]>();
    const add = (member: TrackingMember, key: Buffer) => {
      const list = perMember.get(member);
      if (list === undefined) perMember.set(member, [key]);
      else list.push(key);
    };
    for (const key of keys) {
      const name = key.toString("latin1");
      const set = this.readers.get(name);
      if (set !== undefined) {
        this.readers.delete(name);
        for (const member of set) {
          member.keys.delete(name);
          add(member, key);
        }
      }
      for (const member of this.bcastMembers)
        if (member.bcastPrefixes!.some((p) => name.startsWith(p))) add(member, key);
    }
    for (const [member, list] of perMember) member.invalidate(list);
  }

  private onMap(map: SlotMap): void {
    const owners = ownersOf(map);
    const before = this.owners;
    this.owners = owners;
    const masters = new Set(map.masters);
    for (const node of [...this.nodes.values()])
      if (!masters.has(node.address)) {
        this.nodes.delete(node.address);
        node.retire();
      }
    if (this.bcastMembers.size > 0) for (const address of masters) this.node(address);
    if (before === null) return;
    const moved = new Set<number>();
    for (let slot = 0; slot < SLOTS; slot++) if (owners[slot] !== before[slot]) moved.add(slot);
    if (moved.size === 0 || this.readers.size === 0) return;
    const keys: Buffer[] = [];
    for (const name of this.readers.keys()) {
      const key = Buffer.from(name, "latin1");
      if (moved.has(keySlot(key))) keys.push(key);
    }
    if (keys.length > 0) this.invalidated(keys);
  }

  /** The union of the BCAST members' prefixes, without the ones a shorter one covers (Redis refuses overlaps). */
  private bcastPrefixes(): string[] | null {
    if (this.bcastMembers.size === 0) return null;
    const all = [...new Set([...this.bcastMembers].flatMap((m) => m.bcastPrefixes!))].sort(
      (a, b) => a.length - b.length,
    );
    const kept: string[] = [];
    for (const p of all) if (!kept.some((k) => p.startsWith(k))) kept.push(p);
    return kept;
  }

  /** Makes every master's invalidation connection carry the BCAST prefixes; `then` once all confirmed. */
  private applyBcast(then: () => void): void {
    const map = this.router.map;
    const wait = { left: new Set<string>(), done: then };
    this.waiting.push(wait);
    if (map !== null) for (const address of map.masters) this.node(address);
    for (const node of this.nodes.values()) {
      if (!node.ready) continue; // nodeReady sets it once the connection is up
      wait.left.add(node.address);
      this.setBcast(node, false, () => this.confirmed(wait, node.address));
    }
    this.confirmed(wait, "");
  }

  private confirmed(wait: { left: Set<string>; done: () => void }, address: string): void {
    wait.left.delete(address);
    if (wait.left.size > 0 || !this.waiting.includes(wait)) return;
    this.waiting = this.waiting.filter((w) => w !== wait);
    wait.done();
  }

  private setBcast(node: NodeTracking, fresh: boolean, then: () => void = () => {}): void {
    const prefixes = this.bcastPrefixes();
    const same =
      prefixes !== null &&
      node.bcast !== null &&
      prefixes.length === node.bcast.length &&
      prefixes.every((p, i) => p === node.bcast![i]);
    if (same) return then();
    // Off then on in one write: the node runs both before any other client's command.
    if (node.bcast !== null) node.command(["CLIENT", "TRACKING", "off"], () => {});
    node.bcast = prefixes;
    if (prefixes === null) return then();
    const args = ["CLIENT", "TRACKING", "on", "BCAST"];
    for (const p of prefixes) if (p !== "") args.push("PREFIX", p);
    if (prefixes.includes("")) args.length = 4;
    node.command(args, () => {
      then();
      // Writes there before BCAST was on were not reported: the BCAST clients drop their caches.
      if (fresh) for (const member of this.bcastMembers) member.invalidate(null);
    });
  }
}

function ownersOf(map: SlotMap): (string | undefined)[] {
  const owners: (string | undefined)[] = new Array(SLOTS);
  for (let slot = 0; slot < SLOTS; slot++) owners[slot] = map.masterFor(slot);
  return owners;
}

const hubs = new WeakMap<TrackingRouter, TrackingHub>();

/** The tracking hub of a worker's router (made at its first CLIENT TRACKING on). */
export function trackingHubFor(router: TrackingRouter, perNode: number): TrackingHub {
  let hub = hubs.get(router);
  if (hub === undefined) {
    hub = new TrackingHub(router, perNode);
    hubs.set(router, hub);
  }
  return hub;
}
