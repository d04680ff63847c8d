/**
 * MONITOR through the proxy: the merged stream of every master's MONITOR, each line as the
 * master wrote it (`+<time> [<db> <client address>] "command" "arg"...`; the client address is
 * the proxy's connection to that master). A master that appears later (failover, shard added)
 * joins the stream at the next slot map; one that stops being a master leaves it.
 */
import { OK } from "../resp/encode.ts";
import type { ReplyBytes } from "../resp/reply-scanner.ts";
import { encodeCommand } from "../resp/request-parser.ts";
import type { BackendConnection } from "./backend.ts";
import type { CommandHandler } from "./command-spec.ts";
import type { HubMember, PubSubHub } from "./pubsub-hub.ts";

const MONITOR = encodeCommand(["MONITOR"]);

/** How long a node that left the masters keeps its stream for this worker's commands still due there. */
const LEAVE_WAIT_MS = 1000;

/** The command this file runs (through the session's Pub/Sub, which writes its lines). */
export const MONITOR_COMMANDS = {
  monitor: (session) => session.pubsub.monitor(),
} satisfies Record<string, CommandHandler>;

/** One session's MONITOR connections, one per master. */
export class Monitor implements HubMember {
  private readonly links = new Map<string, BackendConnection>();
  /** Links to nodes no longer listed as masters, until this worker's commands to them are answered. */
  private readonly leaving = new Map<string, object>();
  /** Masters whose +OK has not come yet; the client's +OK waits for all of them. */
  private unconfirmed: Set<string> | null = new Set();

  /**
   * @param line Writes a line of the stream to the client.
   * @param confirmed Called once, when every master confirmed (the client's +OK).
   */
  constructor(
    private readonly hub: PubSubHub,
    private readonly line: (frame: ReplyBytes) => void,
    private readonly confirmed: (reply: Buffer) => void,
  ) {
    hub.join(this);
    this.reconcile();
    this.checkConfirmed();
  }

  reconcile(): void {
    for (const [address, connection] of this.links) {
      if (this.hub.masters.has(address) || this.leaving.has(address)) continue;
      // Not before this worker's commands to it ran (the map may be stale; see afterInFlight).
      const leave = {};
      this.leaving.set(address, leave);
      this.hub.afterInFlight(
        address,
        () => {
          if (this.leaving.get(address) !== leave) return; // a master again meanwhile: it stayed
          this.leaving.delete(address);
          if (this.links.get(address) === connection) this.close(address, connection);
        },
        LEAVE_WAIT_MS,
      );
    }
    for (const address of this.hub.masters) {
      this.leaving.delete(address); // listed again before it was left: its stream goes on
      if (this.links.has(address) || !this.hub.mayConnect(address)) continue;
      const connection = this.hub.router.openSessionConnection(address, 2);
      // The first frame is MONITOR's +OK; every later one is a line of the stream.
      let first = true;
      connection.pipe = (frame) => {
        if (!first) return this.line(frame);
        first = false;
        this.unconfirmed?.delete(address);
        this.checkConfirmed();
      };
      connection.onClosed = () => {
        if (this.links.get(address) === connection) {
          this.links.delete(address);
          this.hub.lost(address);
        }
        this.unconfirmed?.delete(address);
        this.checkConfirmed();
      };
      connection.sendRaw(MONITOR);
      this.links.set(address, connection);
      this.unconfirmed?.add(address);
    }
  }

  end(): void {
    this.hub.leave(this);
    for (const [address, connection] of this.links) this.close(address, connection);
    this.unconfirmed = null;
  }

  private checkConfirmed(): void {
    if (this.unconfirmed === null || this.unconfirmed.size > 0) return;
    this.unconfirmed = null;
    this.confirmed(OK);
  }

  private close(address: string, connection: BackendConnection): void {
    this.links.delete(address);
    connection.pipe = null;
    connection.close();
  }
}
