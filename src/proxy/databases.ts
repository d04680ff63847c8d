/**
 * Numbered databases (SELECT n) through the proxy, on Valkey 9 clusters started with
 * `cluster-databases` > 1. On Redis shards, or with one database, SELECT answers as a cluster
 * node does.
 *
 * A pipelined shard connection is in one database, so each database a client selects gets
 * connections of its own: a `ConnectionPools` per database, made at the first request in it,
 * whose every connection (shared, dedicated, a session's) sends `SELECT n` before anything else,
 * also after a reconnect. Requests carry their client's database (`Request.db`); database 0 keeps
 * the router's own pools, so a client that never selects costs nothing more. The busy proxy is
 * reached the same way: one link per database, whose connections select first, and the busy proxy
 * runs each connection's commands in the database it selected.
 */
import type { Logger } from "pino";
import { DatabaseErrors, RedisErrors } from "../errors.ts";
import { errorReply, OK } from "../resp/encode.ts";
import { encodeCommand, parseInteger } from "../resp/request-parser.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { SocketConnection, type BackendConnection, type BackendEvents } from "./backend.ts";
import { BusyLink } from "./busy-link.ts";
import type { CommandView } from "./command-view.ts";
import type { Session } from "./command-spec.ts";
import { Request, type FlushScheduler } from "./request.ts";
import type { ClusterRouter } from "./router.ts";
import type { ConnectionPools, Connect } from "./upstream/pools.ts";

const MINUS = 45;

/** SELECT: checked against the shards' database count (read with the slot map), then the session's. */
export function selectDatabase(session: Session, view: CommandView): void {
  const db = parseInteger(view.buf, view.argStart(1), view.argEnd(1));
  if (db === null) return session.reply(errorReply(RedisErrors.notInteger));
  const databases = session.context.router.databases;
  if (databases <= 1) return session.reply(db === 0 ? OK : errorReply(RedisErrors.selectInCluster));
  if (db < 0 || db >= databases) return session.reply(errorReply(DatabaseErrors.outOfRange));
  // A WATCH stays on its connection, which changes database with the client (as on one node).
  if (!session.transaction.selectOnWatch(view.frame(), db)) session.reply(OK);
  session.db = db;
}

/** The number of databases a node's `CONFIG GET ... cluster-databases` reply gives, if it names one. */
export function databasesFromConfig(reply: unknown): number | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    if (String(reply[i]) !== "cluster-databases") continue;
    const count = Number(reply[i + 1]);
    return Number.isInteger(count) && count >= 1 ? count : undefined;
  }
  return undefined;
}

/**
 * A `Connect` whose connections select `db` first. A refused SELECT (the node has fewer
 * databases than the map read said) closes the connection: its requests must not run in db 0.
 */
export function connectInDatabase(connect: Connect, db: number, log: Logger): Connect {
  const frame = encodeCommand(["SELECT", String(db)]);
  return (address, protocol, events) => {
    const connection = connect(address, protocol, events);
    const select = new Request(new SelectCheck(connection, db, log));
    select.frame = frame;
    select.protocol = protocol;
    select.db = db;
    connection.send(select);
    return connection;
  };
}

class SelectCheck {
  constructor(
    private readonly connection: BackendConnection,
    private readonly db: number,
    private readonly log: Logger,
  ) {}

  complete(_request: Request, reply: ReplyBytes): void {
    if (reply[0] !== MINUS) return;
    const error = reply.toString("latin1", 1, reply.length - 2);
    this.log.error({ node: this.connection.address, db: this.db, err: error }, "shard refused SELECT");
    this.connection.close();
  }
}

/** The router's events for a connection of one database's pools (they say which pools it is of). */
export interface DatabaseEvents {
  onReady(connection: BackendConnection, pools: ConnectionPools): void;
  onReply(
    connection: BackendConnection,
    request: Request,
    reply: ReplyBytes,
    firstByte: number,
    pools: ConnectionPools,
  ): void;
  onClose(
    connection: BackendConnection,
    sent: Request[],
    unsent: Request[],
    error: Error | undefined,
    pools: ConnectionPools,
  ): void;
}

/** The pools of databases 1..n-1, each made when a request first needs it. */
export class DatabasePools {
  private readonly byDb = new Map<number, ConnectionPools>();
  private masters: readonly string[] = [];
  private replicas: ReadonlySet<string> = new Set();

  constructor(
    private readonly open: (db: number, events: BackendEvents) => ConnectionPools,
    private readonly router: DatabaseEvents,
  ) {}

  of(db: number): ConnectionPools {
    const pools = this.byDb.get(db);
    if (pools !== undefined) return pools;
    const router = this.router;
    const events: BackendEvents = {
      onReady: (connection) => router.onReady(connection, made),
      onReply: (connection, request, reply, firstByte) =>
        router.onReply(connection, request, reply, firstByte, made),
      onClose: (connection, sent, unsent, error) => router.onClose(connection, sent, unsent, error, made),
    };
    const made = this.open(db, events);
    this.byDb.set(db, made);
    made.keepOnly(this.masters, this.replicas);
    return made;
  }

  /** Every database's pools follow the slot map, as database 0's do. */
  keepOnly(masters: readonly string[], replicas: ReadonlySet<string>): void {
    this.masters = masters;
    this.replicas = replicas;
    for (const pools of this.byDb.values()) pools.keepOnly(masters, replicas);
  }

  close(): void {
    for (const pools of this.byDb.values()) pools.close();
    this.byDb.clear();
  }
}

/**
 * The router as a busy-proxy connection in database `db` uses it: every request it dispatches
 * or sends again after a refusal (split parts, fan-outs, emulated steps) runs in that database.
 * Everything else is the router's own (its retries keep the request's database).
 */
export function routerInDatabase(router: ClusterRouter, db: number): ClusterRouter {
  if (db === 0) return router;
  const inDatabase = Object.create(router) as ClusterRouter;
  inDatabase.dispatch = (request: Request) => {
    request.db = db;
    router.dispatch(request);
  };
  // A split command's refused part goes again as a new request, through here.
  inDatabase.retryRefused = (request: Request, reply: ReplyBytes) => {
    request.db = db;
    return router.retryRefused(request, reply);
  };
  return inDatabase;
}

/** The database a busy-proxy connection selects (the worker checked it), or null if unreadable. */
export function parseDatabase(arg: Buffer): number | null {
  const db = parseInteger(arg, 0, arg.length);
  return db !== null && db >= 0 ? db : null;
}

const BUSY_PROXY = "the busy proxy";

/**
 * The worker's link to the busy proxy: database 0's requests on its own connections, another
 * database's on a link of that database's (its connections select it first).
 */
export class DatabaseBusyLinks extends BusyLink {
  private readonly byDb = new Map<number, BusyLink>();

  constructor(
    private readonly path: string,
    private readonly flusher: FlushScheduler,
    private readonly budget: () => number,
    private readonly logger: Logger,
  ) {
    super(
      (protocol, events) => new SocketConnection({ path }, BUSY_PROXY, protocol, undefined, flusher, events),
      budget,
      logger,
    );
  }

  override send(request: Request): void {
    if (request.db === 0) return super.send(request);
    let link = this.byDb.get(request.db);
    if (link === undefined) {
      const db = request.db;
      const frame = encodeCommand(["SELECT", String(db)]);
      link = new BusyLink(
        (protocol, events) => {
          const connection = new SocketConnection(
            { path: this.path },
            BUSY_PROXY,
            protocol,
            undefined,
            this.flusher,
            events,
          );
          const select = new Request(null);
          select.frame = frame;
          select.protocol = protocol;
          connection.send(select);
          return connection;
        },
        this.budget,
        this.logger,
      );
      this.byDb.set(db, link);
    }
    link.send(request);
  }

  override get waitingRequests(): number {
    let waiting = super.waitingRequests;
    for (const link of this.byDb.values()) waiting += link.waitingRequests;
    return waiting;
  }

  override close(): void {
    super.close();
    for (const link of this.byDb.values()) link.close();
  }
}

/** The link a worker uses to reach the busy proxy at `path` (busy-link.ts's, with databases). */
export function busyLinksTo(
  path: string,
  flusher: FlushScheduler,
  budgetMs: () => number,
  log: Logger,
): BusyLink {
  return new DatabaseBusyLinks(path, flusher, budgetMs, log);
}
