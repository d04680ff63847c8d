/**
 * Fake backend connections and a fake slot-map reader for routing unit tests: the router under
 * test is real, only the sockets are replaced (no Redis process, no fake Redis server).
 */
import { pino } from "pino";
import { SlotMap, type ShardInfo } from "../../../src/cluster/slot-map.ts";
import { ConnectionState, type BackendConnection, type BackendEvents } from "../../../src/proxy/backend.ts";
import { Request, type ReplySink } from "../../../src/proxy/request.ts";
import { ClusterRouter, type RouterOptions } from "../../../src/proxy/router.ts";
import type { Connect } from "../../../src/proxy/upstream/pools.ts";
import type { MapReader } from "../../../src/proxy/upstream/slot-map-source.ts";
import { until } from "../../support/redis.ts";

/** One fake connection: records what is sent, replies and fails when the test says so. */
export class FakeConnection implements BackendConnection {
  state = ConnectionState.Connecting;
  pipe = null;
  onClosed = null;
  /** Requests sent and not yet answered, oldest first. */
  readonly inflight: Request[] = [];
  /** Every send: the request and whether it went behind an ASKING. */
  readonly sends: { request: Request; asking: boolean }[] = [];
  /** Sent before the connection was up: not written yet, as a socket connection queues them. */
  private waiting: Request[] = [];

  constructor(
    readonly address: string,
    readonly protocol: 2 | 3,
    private readonly events: BackendEvents,
  ) {}

  get closed(): boolean {
    return this.state === ConnectionState.Closed;
  }

  get pending(): number {
    return this.inflight.length;
  }

  send(request: Request): void {
    this.sends.push({ request, asking: request.askTarget !== null });
    if (this.state === ConnectionState.Connecting) this.waiting.push(request);
    else this.inflight.push(request);
  }

  /** The connect succeeds: queued requests are written. */
  open(): void {
    this.state = ConnectionState.Ready;
    this.inflight.push(...this.waiting.splice(0));
    this.events.onReady(this);
  }

  sendRaw(): void {
    throw new Error("not used by these tests");
  }

  /** Answers the oldest request in flight with a raw RESP reply such as "-MOVED 5 b:1\r\n". */
  reply(text: string): void {
    const request = this.inflight.shift();
    if (request === undefined) throw new Error(`no request in flight on ${this.address}`);
    this.events.onReply(this, request, Buffer.from(text), text.charCodeAt(0));
  }

  /** The connection drops: what was in flight counts as sent (it may or may not have run). */
  fail(message = "connection reset"): void {
    if (this.closed) return;
    this.state = ConnectionState.Closed;
    this.events.onClose(this, this.inflight.splice(0), this.waiting.splice(0), new Error(message));
  }

  close(): void {
    this.fail("closed by the proxy");
  }
}

/** Hands out fake connections; a node marked down refuses them (the connect fails at once). */
export class FakeNetwork {
  readonly connections: FakeConnection[] = [];
  readonly down = new Set<string>();

  readonly connect: Connect = (address, protocol, events) => {
    const connection = new FakeConnection(address, protocol, events);
    this.connections.push(connection);
    queueMicrotask(() => {
      if (this.down.has(address)) connection.fail("connect ECONNREFUSED");
      else connection.open();
    });
    return connection;
  };

  /** Live connections to a node, oldest first. */
  to(address: string): FakeConnection[] {
    return this.connections.filter((c) => c.address === address && !c.closed);
  }

  /** Every request sent to a node so far, over any of its connections. */
  sentTo(address: string): Request[] {
    return this.connections
      .filter((c) => c.address === address)
      .flatMap((c) => c.sends.map((s) => s.request));
  }
}

/** A slot map from ranges and their masters; a null master leaves the range unserved. */
export function slotMap(ranges: [first: number, last: number, master: string | null][]): SlotMap {
  const shards: ShardInfo[] = ranges.map(([first, last, master], i) => ({
    ranges: [[first, last]],
    master:
      master === null ? undefined : { id: `node-${i}`, address: master, role: "master", health: "online" },
    replicas: [],
  }));
  return new SlotMap(shards);
}

/** A reader that returns whatever map the test sets. */
export class FakeReader implements MapReader {
  reads = 0;
  constructor(
    public map: SlotMap,
    public nodeTimeoutMs: number | undefined = 1000,
  ) {}

  async read(_address: string, withVersion: boolean) {
    this.reads++;
    return { map: this.map, nodeTimeoutMs: this.nodeTimeoutMs, version: withVersion ? "7.2.4" : undefined };
  }

  close(): void {}
}

/** Collects replies by request. */
export class Sink implements ReplySink {
  readonly replies = new Map<Request, string>();
  complete(request: Request, reply: Buffer | unknown): void {
    this.replies.set(request, String(reply));
  }
  async replyTo(request: Request): Promise<string> {
    await until(() => this.replies.has(request), 5000, "the request's reply");
    return this.replies.get(request)!;
  }
}

export function request(sink: ReplySink, slot: number, options: Partial<Request> = {}): Request {
  const r = new Request(sink);
  r.frame = Buffer.from(`*2\r\n$3\r\nGET\r\n$4\r\nk${String(slot).padStart(3, "0")}\r\n`);
  r.slot = slot;
  Object.assign(r, options);
  return r;
}

export const silent = pino({ level: "silent" });

/** Lets new fake connections open (they connect on a microtask, as sockets do later). */
export const connected = () => new Promise((resolve) => setImmediate(resolve));

/** A started router over the fake network and reader, closed after the test. */
export async function fakeRouter(
  t: { after(fn: () => unknown): void },
  net: FakeNetwork,
  reader: FakeReader,
  options: Partial<RouterOptions> = {},
): Promise<ClusterRouter> {
  const router = new ClusterRouter({
    seeds: ["seed:1"],
    connectionsPerShard: 1,
    refreshIntervalMs: 60_000,
    retryBudgetMs: 300,
    connect: net.connect,
    reader,
    log: silent,
    ...options,
  });
  t.after(() => router.close());
  await router.start();
  return router;
}
