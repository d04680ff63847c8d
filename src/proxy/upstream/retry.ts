/**
 * The redirect and retry policy: what becomes of a request the cluster refused, and of one that
 * has nowhere to go yet.
 *
 * - MOVED: the slot map learns the new owner and the request goes there (at most MAX_REDIRECTS).
 * - ASK: the request goes once to the importing node, preceded by ASKING; the map is unchanged.
 * - TRYAGAIN, LOADING, CLUSTERDOWN, MASTERDOWN: sent again after a short backoff, until the
 *   request's retry budget (from its first wait) runs out; then the refusal goes to the client.
 * - No reachable master (failover in progress): the request is parked, and retried whenever the
 *   map changes, a node answers again, or every UNAVAILABLE_REFRESH_MS, until its budget runs out.
 */
import { errorReply } from "../../resp/encode.ts";
import { replyBuffer, type ReplyBytes } from "../../resp/reply-scanner.ts";
import { UpstreamErrors } from "../../errors.ts";
import type { Request } from "../request.ts";
import type { WorkerStats } from "../stats.ts";
import { MAX_REDIRECTS, RETRY_BASE_MS, RETRY_CAP_MS, UNAVAILABLE_REFRESH_MS } from "./limits.ts";
import type { SlotMapSource } from "./slot-map-source.ts";

export class RetryPolicy {
  private parked: Request[] = [];
  private parkTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: SlotMapSource,
    /** Sends a request on its way again (the router's dispatch). */
    private readonly dispatch: (request: Request) => void,
    /** The retry budget in force, in ms (explicit, or derived from the cluster's node timeout). */
    private readonly budgetMs: () => number,
    private readonly stats: WorkerStats,
  ) {}

  /** Requests held for an unavailable shard. */
  get waiting(): number {
    return this.parked.length;
  }

  /**
   * Follows a refusal (MOVED, ASK, TRYAGAIN, LOADING, CLUSTERDOWN, MASTERDOWN); false when the
   * reply is final and goes to the client as is. `answeredBy`: the node that refused, when known.
   */
  redirected(request: Request, reply: ReplyBytes, answeredBy?: string): boolean {
    const head = Buffer.isBuffer(reply) ? reply : replyBuffer(reply);
    const c1 = head[1];
    // Cheap first-letter test before any string is made: M(OVED) A(SK) T(RYAGAIN) C(LUSTERDOWN) L(OADING).
    if (c1 !== 77 && c1 !== 65 && c1 !== 84 && c1 !== 67 && c1 !== 76) return false;
    const text = head.toString("latin1", 1, head.length - 2);
    const space = text.indexOf(" ");
    const kind = space < 0 ? text : text.slice(0, space);
    switch (kind) {
      case "MOVED":
      case "ASK": {
        this.stats.redirects++;
        const [, slotText, target] = text.split(" ");
        if (target === undefined || ++request.redirects > MAX_REDIRECTS) return false;
        if (kind === "MOVED") {
          request.movedFrom = this.source.map?.masterFor(Number(slotText));
          request.movedTo = target;
          this.source.moved(Number(slotText), target, answeredBy);
          request.askTarget = null;
        } else {
          request.askTarget = target;
        }
        this.dispatch(request);
        return true;
      }
      case "TRYAGAIN":
      case "LOADING":
      case "CLUSTERDOWN":
      case "MASTERDOWN": {
        this.stats.redirects++;
        if (request.deadline === 0) request.deadline = Date.now() + this.budgetMs();
        if (Date.now() >= request.deadline) return false;
        request.askTarget = null;
        if (kind !== "TRYAGAIN") void this.source.refresh();
        const delay = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(request.redirects++, 5));
        setTimeout(() => this.dispatch(request), delay);
        return true;
      }
      default:
        return false;
    }
  }

  /** Holds a request that has no reachable master, within its retry budget. */
  park(request: Request): void {
    if (request.deadline === 0) request.deadline = Date.now() + this.budgetMs();
    this.parked.push(request);
    if (this.parkTimer === null) {
      this.parkTimer = setInterval(() => {
        void this.source.refresh();
        this.retryParked();
      }, UNAVAILABLE_REFRESH_MS);
    }
  }

  /** Sends every parked request again; those past their budget get the CLUSTERDOWN error. */
  retryParked(): void {
    const parked = this.parked;
    if (parked.length === 0) return;
    this.parked = [];
    const now = Date.now();
    for (const request of parked) {
      if (now >= request.deadline) request.sink?.complete(request, errorReply(this.unavailable(request)));
      else this.dispatch(request);
    }
    if (this.parked.length === 0 && this.parkTimer !== null) {
      clearInterval(this.parkTimer);
      this.parkTimer = null;
    }
  }

  private unavailable(request: Request): string {
    const what = request.slot >= 0 ? `slot ${request.slot}` : "this command";
    const owner = request.slot >= 0 ? this.source.map?.masterFor(request.slot) : undefined;
    return UpstreamErrors.shardUnavailable(what, owner, this.budgetMs());
  }

  /** Fails every parked request (the router is closing). */
  close(): void {
    if (this.parkTimer) clearInterval(this.parkTimer);
    this.parkTimer = null;
    for (const request of this.parked)
      request.sink?.complete(request, errorReply(UpstreamErrors.shuttingDown));
    this.parked = [];
  }
}
