/**
 * A client's CLIENT TRACKING state, and the commands CLIENT TRACKING, CACHING, GETREDIR and
 * TRACKINGINFO, with Redis 7.0's replies and error texts. The worker's side (the shards'
 * invalidations, tracked connections, migrations and failovers) and the design's reasons are in
 * ./hub.ts.
 *
 * A session has a `SessionTracking` only while tracking is on; the session then tells it of each
 * command (`command`), and of the moment its replies due are all written (`drained`).
 * Invalidations go to the client itself as RESP3 pushes, or with REDIRECT to another connection of
 * the same worker: a RESP3 one gets the pushes, a RESP2 one subscribed to `__redis__:invalidate`
 * gets them as messages of that channel, as Redis sends them. A REDIRECT to a client of another
 * worker of the host is refused with its own error: client ids are unique per host, but workers
 * share no state, and invalidations would have to cross processes.
 */
import { DatabaseErrors, TrackingErrors, RedisErrors } from "../../errors.ts";
import {
  encodeReply,
  errorReply,
  integerReply,
  OK,
  SetReply,
  MapReply,
  type Protocol,
} from "../../resp/encode.ts";
import { parseInteger } from "../../resp/request-parser.ts";
import { blocksForReal, movableKeyIndexes, SPANS_SLOTS, slotOf } from "../keys.ts";
import {
  Mode,
  type CommandHandler,
  type CommandSpec,
  type Session,
  type TrackingState,
} from "../command-spec.ts";
import type { CommandView } from "../command-view.ts";
import { trackingHubFor, type TrackingHub, type TrackingMember, type TrackingRouter } from "./hub.ts";

const SYNTAX = errorReply(RedisErrors.syntax);
const INVALIDATE_CHANNEL = "__redis__:invalidate";

const enum Opt {
  None,
  In,
  Out,
}

export class SessionTracking implements TrackingMember, TrackingState {
  readonly keys = new Set<string>();
  bcastPrefixes: string[] | null = null;
  opt = Opt.None;
  noloop = false;
  /** CLIENT CACHING given for the next command (Redis's CLIENT_TRACKING_CACHING). */
  caching = false;
  /** The client id invalidations go to; 0: the client itself. */
  redirect = 0;
  /** The REDIRECT target left (Redis's CLIENT_TRACKING_BROKEN_REDIR, found at an invalidation). */
  brokenRedirect = false;
  /** Keys invalidated while replies were due, sent again once they are written (null: the flush). */
  private again: Buffer[] | null | undefined = undefined;

  constructor(
    private readonly session: Session,
    readonly hub: TrackingHub,
  ) {}

  /** Called by the session for each command, before it runs or is queued in MULTI. */
  command(spec: CommandSpec, view: CommandView): void {
    const caching = this.caching;
    // As Redis: the flag lasts one command, CLIENT's own excepted (so CLIENT TRACKINGINFO shows it).
    if (!spec.name.startsWith("client|")) this.caching = false;
    if (spec.mode !== Mode.Keyed || !spec.readonly || this.bcastPrefixes !== null) return;
    if (this.opt === Opt.In ? !caching : this.opt === Opt.Out && caching) return;
    const keys = keysOf(spec, view);
    if (keys.length === 0) return;
    for (const key of keys) this.hub.remember(key.toString("latin1"), this);
    // Reads the shards do not track for us: across slots (the busy proxy), blocking (a connection
    // of its own), or under WATCH (the client's own connection). Their keys are invalidated as soon
    // as the reply is written, so the client never keeps a value nobody will invalidate.
    const slot = slotOf(spec, view);
    const untracked =
      slot === SPANS_SLOTS ||
      (spec.blocking && (!spec.movableKeys || blocksForReal(spec, view))) ||
      this.session.watching;
    if (untracked) this.later(keys);
  }

  /** The session's replies due are all written: invalidations held for them go now. */
  drained(): void {
    const again = this.again;
    if (again === undefined) return;
    this.again = undefined;
    this.send(again);
  }

  /** Keys changed on a shard (null: everything); called by the hub. */
  invalidate(keys: readonly Buffer[] | null): void {
    this.send(keys);
    // A reply still due may hold a value read before this change: this goes again after it.
    if (this.session.pendingReplies > 0) this.later(keys);
  }

  private later(keys: readonly Buffer[] | null): void {
    if (keys === null || this.again === null) this.again = null;
    else this.again = this.again === undefined ? [...keys] : [...this.again, ...keys];
  }

  private send(keys: readonly Buffer[] | null): void {
    const target = this.redirect === 0 ? this.session : findClient(this.session, this.redirect);
    if (target === undefined) {
      // As Redis: the client learns that its invalidations have nowhere to go (RESP3 only).
      this.brokenRedirect = true;
      if (this.session.protocol === 3)
        this.session.emitPush(Buffer.from(`>2\r\n$21\r\ntracking-redir-broken\r\n:${this.redirect}\r\n`));
      return;
    }
    const payload = keys === null ? nullFor(this.session.protocol) : keyArray(keys);
    if (target.protocol === 3) {
      target.emitPush(Buffer.concat([PUSH_HEAD, payload]));
    } else if (this.redirect !== 0 && target.pubsub.active) {
      // A RESP2 redirect target gets the invalidations as messages of __redis__:invalidate.
      target.emitPush(Buffer.concat([MESSAGE_HEAD, payload]));
    }
    // A RESP2 client without REDIRECT gets nothing, as on Redis (RESP2 has no pushes).
  }

  /** Tracking off (CLIENT TRACKING off, RESET, or the client left). */
  end(): void {
    this.hub.leave(this);
  }
}

const PUSH_HEAD = Buffer.from(">2\r\n$10\r\ninvalidate\r\n");
const MESSAGE_HEAD = Buffer.from(
  `*3\r\n$7\r\nmessage\r\n$${INVALIDATE_CHANNEL.length}\r\n${INVALIDATE_CHANNEL}\r\n`,
);

function keyArray(keys: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${keys.length}\r\n`)];
  for (const key of keys) parts.push(Buffer.from(`$${key.length}\r\n`), key, CRLF);
  return Buffer.concat(parts);
}

const CRLF = Buffer.from("\r\n");

/** The flush's null, in the tracking client's protocol (Redis writes shared.null[c->resp]). */
function nullFor(protocol: Protocol): Buffer {
  return Buffer.from(protocol === 3 ? "_\r\n" : "$-1\r\n");
}

function keysOf(spec: CommandSpec, view: CommandView): Buffer[] {
  if (spec.movableKeys) return movableKeyIndexes(spec.name, view.argBuffers()).map((i) => view.argBuffer(i));
  const keys: Buffer[] = [];
  const last = spec.keyStop < 0 ? view.argc + spec.keyStop : Math.min(spec.keyStop, view.argc - 1);
  for (let i = spec.keyStart; i <= last; i += spec.step) keys.push(view.argBuffer(i));
  return keys;
}

function findClient(session: Session, id: number): Session | undefined {
  for (const client of session.context.clients) if (client.id === id) return client;
  return undefined;
}

/** The session's tracking state (the session holds it by the TrackingState contract only). */
function stateOf(session: Session): SessionTracking | null {
  return session.tracking as SessionTracking | null;
}

/** The worker's hub (./hub.ts), through the session's router. */
function hubOf(session: Session): TrackingHub {
  const { router, config } = session.context;
  return trackingHubFor(router as unknown as TrackingRouter, config.connectionsPerShard);
}

interface TrackingOptions {
  redirect: number;
  bcast: boolean;
  opt: Opt | "both";
  noloop: boolean;
  prefixes: string[];
}

/** CLIENT TRACKING on|off [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP], checked in Redis's order. */
function tracking(session: Session, view: CommandView): void {
  const options: TrackingOptions = { redirect: 0, bcast: false, opt: Opt.None, noloop: false, prefixes: [] };
  for (let j = 3; j < view.argc; j++) {
    const word = view.arg(j).toLowerCase();
    const more = view.argc - 1 - j > 0;
    if (word === "redirect" && more) {
      j++;
      if (options.redirect !== 0) return session.reply(errorReply(TrackingErrors.redirectTwice));
      const id = parseInteger(view.buf, view.argStart(j), view.argEnd(j));
      if (id === null) return session.reply(errorReply(RedisErrors.notInteger));
      if (findClient(session, id) === undefined) {
        const worker = Math.floor(id / 1_000_000_000);
        const ours = Math.floor(session.id / 1_000_000_000);
        if (id > 0 && worker !== ours && id % 1_000_000_000 !== 0)
          return session.reply(errorReply(TrackingErrors.redirectOtherWorker(id)));
        return session.reply(errorReply(TrackingErrors.redirectMissing));
      }
      options.redirect = id;
    } else if (word === "bcast") options.bcast = true;
    else if (word === "optin")
      options.opt = options.opt === Opt.Out ? "both" : options.opt === "both" ? "both" : Opt.In;
    else if (word === "optout")
      options.opt = options.opt === Opt.In ? "both" : options.opt === "both" ? "both" : Opt.Out;
    else if (word === "noloop") options.noloop = true;
    else if (word === "prefix" && more)
      options.prefixes.push(view.buf.toString("latin1", view.argStart(++j), view.argEnd(j)));
    else return session.reply(SYNTAX);
  }
  const onOff = view.arg(2).toLowerCase();
  const current = stateOf(session);
  if (onOff === "off") {
    current?.end();
    session.tracking = null;
    return session.reply(OK);
  }
  if (onOff !== "on") return session.reply(SYNTAX);
  if (!options.bcast && options.prefixes.length > 0)
    return session.reply(errorReply(TrackingErrors.prefixNeedsBcast));
  if (current !== null && (current.bcastPrefixes !== null) !== options.bcast)
    return session.reply(errorReply(TrackingErrors.bcastSwitch));
  if (options.bcast && options.opt !== Opt.None)
    return session.reply(errorReply(TrackingErrors.optWithBcast));
  if (options.opt === "both") return session.reply(errorReply(TrackingErrors.optBoth));
  if (
    current !== null &&
    ((options.opt === Opt.In && current.opt === Opt.Out) ||
      (options.opt === Opt.Out && current.opt === Opt.In))
  )
    return session.reply(errorReply(TrackingErrors.optSwitch));
  if (options.bcast) {
    const overlap = prefixOverlap(options.prefixes, current?.bcastPrefixes ?? []);
    if (overlap !== null) return session.reply(errorReply(overlap, "latin1"));
  }
  if (current === null && session.db !== 0)
    return session.reply(errorReply(DatabaseErrors.trackingOutsideDb0));
  const state = current ?? new SessionTracking(session, hubOf(session));
  state.redirect = options.redirect;
  state.brokenRedirect = false;
  state.opt = options.opt;
  state.noloop = options.noloop;
  if (options.bcast) {
    // Redis adds the new prefixes to the ones held (none given: every key, the empty prefix).
    const added = options.prefixes.length === 0 ? [""] : options.prefixes;
    state.bcastPrefixes = [
      ...(state.bcastPrefixes ?? []),
      ...added.filter((p) => !state.bcastPrefixes?.includes(p)),
    ];
  }
  session.tracking = state;
  // The answer waits until BCAST is on at every master (writes after it are all reported).
  const answer = session.later();
  state.hub.join(state, () => answer(OK));
}

/** Redis's checkPrefixCollisionsOrReply: the first overlap, as its error text, or null. */
function prefixOverlap(given: string[], held: readonly string[]): string | null {
  const overlaps = (a: string, b: string) => a.startsWith(b) || b.startsWith(a);
  for (let i = 0; i < given.length; i++) {
    for (const existing of held)
      if (overlaps(existing, given[i]!)) return TrackingErrors.prefixOverlapsExisting(given[i]!, existing);
    for (let j = i + 1; j < given.length; j++)
      if (overlaps(given[i]!, given[j]!)) return TrackingErrors.prefixOverlapsGiven(given[i]!, given[j]!);
  }
  return null;
}

function caching(session: Session, view: CommandView): void {
  const state = stateOf(session);
  if (state === null) return session.reply(errorReply(TrackingErrors.cachingNotTracking));
  const word = view.arg(2).toLowerCase();
  if (word === "yes") {
    if (state.opt !== Opt.In) return session.reply(errorReply(TrackingErrors.cachingYes));
  } else if (word === "no") {
    if (state.opt !== Opt.Out) return session.reply(errorReply(TrackingErrors.cachingNo));
  } else return session.reply(SYNTAX);
  state.caching = true;
  session.reply(OK);
}

function trackingInfo(session: Session): void {
  const state = stateOf(session);
  const flags: string[] = [state === null ? "off" : "on"];
  if (state !== null) {
    if (state.bcastPrefixes !== null) flags.push("bcast");
    if (state.opt === Opt.In) flags.push("optin");
    if (state.opt === Opt.Out) flags.push("optout");
    if (state.caching && state.opt === Opt.In) flags.push("caching-yes");
    if (state.caching && state.opt === Opt.Out) flags.push("caching-no");
    if (state.noloop) flags.push("noloop");
    if (state.brokenRedirect) flags.push("broken_redirect");
  }
  const prefixes = (state?.bcastPrefixes ?? []).map((p) => Buffer.from(p, "latin1"));
  session.reply(
    encodeReply(
      new MapReply([
        ["flags", new SetReply(flags)],
        ["redirect", state === null ? -1 : state.redirect],
        ["prefixes", prefixes],
      ]),
      session.protocol,
    ),
  );
}

/** The commands this area answers (spread into ../local-commands.ts). */
export const TRACKING_COMMANDS = {
  "client|tracking": tracking,
  "client|caching": caching,
  "client|getredir": (session) => session.reply(integerReply(stateOf(session)?.redirect ?? -1)),
  "client|trackinginfo": trackingInfo,
} satisfies Record<string, CommandHandler>;
