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

/** The command this file runs (through the session's Pub/Sub, which writes its lines). */
export const MONITOR_COMMANDS = {
  monitor: (session) => session.pubsub.monitor(),
} satisfies Record<string, CommandHandler>;

/** One session's MONITOR connections, one per master. */
export class Monitor implements HubMember {
  private readonly links = new Map<string, BackendConnection>();
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
    for (const [address, connection] of this.links)
      if (!this.hub.masters.has(address)) this.close(address, connection);
    for (const address of this.hub.masters) {
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
