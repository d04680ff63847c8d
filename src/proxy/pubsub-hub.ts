/**
 * The worker's view of where Pub/Sub subscriptions and MONITOR streams must live, shared by its
 * sessions (./pubsub.ts, ./monitor.ts).
 *
 * Keyspace notifications and MONITOR lines are emitted by each master for its own commands only,
 * so a subscriber to them needs a connection on every master, and on a master that appears (a
 * failover's promoted replica, a shard added, a migration's target) before any write reaches it:
 * until every member has confirmed its subscriptions there, the router holds this worker's
 * requests to that node (the gate), so no write of this worker can run there unheard.
 */
import type { SlotMap } from "../cluster/slot-map.ts";
import type { Protocol } from "../resp/encode.ts";
import type { BackendConnection } from "./backend.ts";

/** What the hub needs of the worker's router (./router.ts). */
export interface PubSubRouter {
  readonly map: SlotMap | null;
  masterFor(slot: number, affinity?: number): string | undefined;
  openSessionConnection(address: string, protocol: Protocol): BackendConnection;
  /** Calls `listener` with every slot map read, before requests held for a shard go again. */
  onMapChange(listener: (map: SlotMap) => void): void;
  /** A request to a node the gate refuses is held (within its retry budget) until `retryHeld`. */
  setGate(gate: (address: string) => boolean): void;
  retryHeld(): void;
  /** Re-reads the slot map. */
  refresh(): Promise<void>;
  /** Requests sent to a node and not yet answered (their events, if any, are still to come). */
  inFlight(address: string): number;
}

/** A session's subscriptions or MONITOR stream, placed again whenever the masters change. */
export interface HubMember {
  /** Opens, moves and closes its node connections to match the hub's masters and the slot map. */
  reconcile(): void;
}

/**
 * How long after losing a connection to a master (still a master in the map) before members
 * connect to it again: a dead master stays in the map until its failover, and every lost
 * connection asks for a new map, so reconnecting at once would spin.
 */
const RELINK_AFTER_MS = 1000;

export class PubSubHub {
  /** The masters every-master subscriptions live on: the slot map's, and redirect targets not in it yet. */
  readonly masters = new Set<string>();
  /** Redirect targets (a migration's new shard before it owns a slot) not yet in the map's masters. */
  private readonly adopted = new Set<string>();
  /** Masters new since the members last settled: requests to them wait for the members. */
  private readonly unsettled = new Set<string>();
  private readonly members = new Set<HubMember>();
  /** Members with a subscription on every master (keyspace channels, patterns, MONITOR). */
  private readonly everywhere = new Set<HubMember>();
  /** Placement changes (subscribe on a new master, unsubscribe on a former one) not yet confirmed. */
  private pending = 0;
  /** When a member last lost its connection to each node. */
  private readonly lostAt = new Map<string, number>();
  /** Waiters for the requests in flight to a node to be answered (afterInFlight), by node. */
  private readonly draining = new Map<string, { then: () => void; until: number }[]>();
  /** Settles when the next slot map has been placed (a redirect to an unknown node asked for one). */
  private awaitingMap: (() => void) | null = null;

  constructor(readonly router: PubSubRouter) {
    if (router.map !== null) for (const address of router.map.masters) this.masters.add(address);
    router.onMapChange((map) => this.onMap(map));
    router.setGate((address) => this.allows(address));
  }

  join(member: HubMember): void {
    this.members.add(member);
  }

  leave(member: HubMember): void {
    this.members.delete(member);
    this.everywhere.delete(member);
  }

  /** Whether the member has subscriptions every master must carry (it then gates new masters). */
  setEverywhere(member: HubMember, yes: boolean): void {
    if (yes) this.everywhere.add(member);
    else this.everywhere.delete(member);
  }

  /** A placement change began; `settled` must be called once when it is confirmed (or its node is gone). */
  begin(): () => void {
    this.pending++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.pending === 0 && this.unsettled.size > 0) {
        this.unsettled.clear();
        this.router.retryHeld();
      }
    };
  }

  /** `begin` for subscribing on `address` if requests to it wait for that (a new master), else a no-op. */
  beginFor(address: string): () => void {
    return this.unsettled.has(address) ? this.begin() : () => {};
  }

  /** A member's connection to `address` closed without being asked to. */
  lost(address: string): void {
    this.lostAt.set(address, Date.now());
  }

  /** Whether members may open a connection to `address` now (not just lost while still listed). */
  mayConnect(address: string): boolean {
    const at = this.lostAt.get(address);
    if (at === undefined) return true;
    if (Date.now() - at < RELINK_AFTER_MS) return false;
    this.lostAt.delete(address);
    return true;
  }

  /**
   * Calls `then` once no request of this worker is in flight to `address` (every write it sent
   * there has run, and its events are on their way to the subscribers there), checking every
   * millisecond, or after `limitMs` at the latest (a node that does not answer).
   *
   * A member leaving a node unsubscribes only then: a map that no longer lists a node as a master
   * may be stale (read from a node that has not learnt of a failover yet), and this worker's
   * writes still on their way to it then run there after the UNSUBSCRIBE, unheard.
   */
  afterInFlight(address: string, then: () => void, limitMs: number): void {
    if (this.router.inFlight(address) === 0) return then();
    // One check per node for all its waiters: a failover retires every subscriber's link at once.
    let waiters = this.draining.get(address);
    if (waiters === undefined) {
      this.draining.set(address, (waiters = []));
      setTimeout(() => this.checkDrained(address), 1).unref();
    }
    waiters.push({ then, until: Date.now() + limitMs });
  }

  private checkDrained(address: string): void {
    const waiters = this.draining.get(address)!;
    const drained = this.router.inFlight(address) === 0;
    const now = Date.now();
    const due: (() => void)[] = [];
    const left: typeof waiters = [];
    for (const waiter of waiters) {
      if (drained || now >= waiter.until) due.push(waiter.then);
      else left.push(waiter);
    }
    if (left.length > 0) {
      this.draining.set(address, left);
      setTimeout(() => this.checkDrained(address), 1).unref();
    } else this.draining.delete(address);
    for (const then of due) then();
  }

  private allows(address: string): boolean {
    if (this.everywhere.size === 0) return true;
    if (!this.masters.has(address)) {
      // A redirect to a node the map does not list as a master yet: subscribe there first.
      // The node it moved from may be a replica now, repeating the new master's events: the gate
      // stays closed until a fresh map has retired it too.
      this.adopted.add(address);
      this.awaitingMap ??= this.begin();
      this.addMasters([address]);
      void this.router.refresh();
      return false;
    }
    return this.pending === 0 || !this.unsettled.has(address);
  }

  private onMap(map: SlotMap): void {
    const replicas = new Set(map.nodes.filter((n) => n.role === "replica").map((n) => n.address));
    for (const address of this.adopted)
      if (map.masters.includes(address) || replicas.has(address)) this.adopted.delete(address);
    const current = new Set([...map.masters, ...this.adopted]);
    let changed = false;
    for (const address of this.masters)
      if (!current.has(address)) {
        this.masters.delete(address);
        changed = true;
      }
    const added = [...current].filter((address) => !this.masters.has(address));
    if (added.length > 0 || changed) this.addMasters(added);
    else for (const member of this.members) member.reconcile(); // channel slots may have moved
    const placed = this.awaitingMap;
    this.awaitingMap = null;
    placed?.();
  }

  private addMasters(added: string[]): void {
    for (const address of added) {
      this.masters.add(address);
      if (this.everywhere.size > 0) this.unsettled.add(address);
    }
    const gate = this.begin(); // members' changes begun below keep the gate closed until they settle
    for (const member of this.members) member.reconcile();
    gate();
  }
}

const hubs = new WeakMap<PubSubRouter, PubSubHub>();

/** The hub of a worker's router (made at the first subscription or MONITOR). */
export function hubFor(router: PubSubRouter): PubSubHub {
  let hub = hubs.get(router);
  if (hub === undefined) {
    hub = new PubSubHub(router);
    hubs.set(router, hub);
  }
  return hub;
}
