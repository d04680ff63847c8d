/**
 * Numbered databases (SELECT n) through the proxy, on Valkey 9 clusters started with
 * `cluster-databases` > 1. On Redis shards, or with one database, SELECT answers as a cluster
 * node does.
 *
 * A pipelined shard connection is in one database, so each database a client selects gets
 * connections of its own: a `ConnectionPools` per database, made at the first request in it,
 * whose every connection (shared, dedicated, a session's) sends `SELECT n` before anything else,
 * also after a reconnect (./upstream/database-pools.ts). Requests carry their client's database (`Request.db`); database 0 keeps
 * the router's own pools, so a client that never selects costs nothing more. The busy proxy is
 * reached the same way: one link per database, whose connections select first, and the busy proxy
 * runs each connection's commands in the database it selected.
 */
import type { Logger } from "pino";
import { DatabaseErrors, RedisErrors } from "../errors.ts";
import { errorReply, OK } from "../resp/encode.ts";
import { encodeCommand, parseInteger } from "../resp/request-parser.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { SocketConnection } from "./backend.ts";
import { BusyLink } from "./busy-link.ts";
import type { CommandView } from "./command-view.ts";
import type { Session } from "./command-spec.ts";
import { Request, type FlushScheduler } from "./request.ts";
import type { ClusterRouter } from "./router.ts";

/** SELECT: checked against the shards' database count (read with the slot map), then the session's. */
export function selectDatabase(session: Session, view: CommandView): void {
  const db = parseInteger(view.buf, view.argStart(1), view.argEnd(1));
  if (db === null) return session.reply(errorReply(RedisErrors.notInteger));
  const databases = session.context.router.databases;
  if (databases <= 1) return session.reply(db === 0 ? OK : errorReply(RedisErrors.selectInCluster));
  if (db < 0 || db >= databases) return session.reply(errorReply(DatabaseErrors.outOfRange));
  if (db !== 0 && session.tracking !== null)
    return session.reply(errorReply(DatabaseErrors.trackingOutsideDb0));
  // A WATCH stays on its connection, which changes database with the client (as on one node).
  if (!session.transaction.selectOnWatch(view.frame(), db)) session.reply(OK);
  session.db = db;
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
