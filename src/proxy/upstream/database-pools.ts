/**
 * The shard connections of databases other than 0 (SELECT n on Valkey 9 clusters; ../databases.ts
 * has the whole picture): a `ConnectionPools` per database, made at its first request, whose every
 * connection selects the database first, also after a reconnect. The router keeps database 0's
 * pools itself, untouched.
 */
import type { Logger } from "pino";
import { encodeCommand } from "../../resp/request-parser.ts";
import type { ReplyBytes } from "../../resp/reply-scanner.ts";
import type { BackendConnection, BackendEvents } from "../backend.ts";
import { Request } from "../request.ts";
import type { ConnectionPools, Connect } from "./pools.ts";

const MINUS = 45;

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

  /** Requests in flight to a node in every database (see ConnectionPools.inFlight). */
  inFlight(address: string): number {
    let requests = 0;
    for (const pools of this.byDb.values()) requests += pools.inFlight(address);
    return requests;
  }

  close(): void {
    for (const pools of this.byDb.values()) pools.close();
    this.byDb.clear();
  }
}
