/**
 * The commands the proxy answers itself (PING, ECHO, AUTH, HELLO, SELECT, INFO, ROLE, CLIENT ...,
 * QUIT, RESET), each with its handler: the proxy presents itself as one standalone Redis.
 * A name listed here is a Local command in the command table (./commands.ts); adding one is one
 * entry in `LOCAL_COMMANDS`.
 */
import { RedisErrors } from "../errors.ts";
import {
  bulkReply,
  encodeReply,
  errorReply,
  integerReply,
  OK,
  PONG,
  RESET,
  SimpleString,
} from "../resp/encode.ts";
import { encodeCommand } from "../resp/request-parser.ts";
import type { CommandView } from "./command-view.ts";
import { SHARD_INFO, type CommandHandler, type Session } from "./command-spec.ts";
import { helloReply, parseHello } from "./hello.ts";
import { STANDALONE_COMMANDS } from "./standalone-commands.ts";
import { selectDatabase } from "./databases.ts";
import { ACL_COMMANDS, speaksAs72 } from "./acl/session.ts";
import { TRACKING_COMMANDS } from "./tracking/session.ts";

const CLUSTER_SUPPORT_DISABLED = errorReply(RedisErrors.clusterSupportDisabled);
const SYNTAX = errorReply(RedisErrors.syntax);
/** Client names and library attributes: printable ASCII without spaces, as Redis checks them. */
const NOT_PRINTABLE = /[^\x21-\x7e]/;

/**
 * CLIENT HELP: Redis 7.0's text for the subcommands the proxy runs (CLIENT KILL without its TYPE
 * and USER filters, which it does not take), and SETINFO as Redis 7.2 words it.
 */
const CLIENT_HELP = [
  "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "CACHING (YES|NO)",
  "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
  "GETREDIR",
  "    Return the client ID we are redirecting to when tracking is enabled.",
  "GETNAME",
  "    Return the name of the current connection.",
  "ID",
  "    Return the ID of the current connection.",
  "INFO",
  "    Return information about the current client connection.",
  "KILL <ip:port>",
  "    Kill connection made from <ip:port>.",
  "KILL <option> <value> [<option> <value> [...]]",
  "    Kill connections. Options are:",
  "    * ADDR (<ip:port>|<unixsocket>:0)",
  "      Kill connections made from the specified address",
  "    * LADDR (<ip:port>|<unixsocket>:0)",
  "      Kill connections made to specified local address",
  "    * SKIPME (YES|NO)",
  "      Skip killing current connection (default: yes).",
  "LIST [options ...]",
  "    Return information about client connections. Options:",
  "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
  "      Return clients of specified type.",
  "UNPAUSE",
  "    Stop the current client pause, resuming traffic.",
  "PAUSE <timeout> [WRITE|ALL]",
  "    Suspend all, or just write, clients for <timeout> milliseconds.",
  "REPLY (ON|OFF|SKIP)",
  "    Control the replies sent to the current connection.",
  "SETNAME <name>",
  "    Assign the name <name> to the current connection.",
  "SETINFO <option> <value>",
  "    Set client meta attr. Options are:",
  "    * LIB-NAME: the client lib name.",
  "    * LIB-VER: the client lib version.",
  "UNBLOCK <clientid> [TIMEOUT|ERROR]",
  "    Unblock the specified blocked client.",
  "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
  "         [OPTIN] [OPTOUT] [NOLOOP]",
  "    Control server assisted client side caching.",
  "TRACKINGINFO",
  "    Report tracking status for the current connection.",
  "NO-EVICT (ON|OFF)",
  "    Protect current client connection from eviction.",
  "HELP",
  "    Prints this help.",
].map((line) => new SimpleString(line) as never);

export const LOCAL_COMMANDS = {
  ping: (session, view) => {
    // A subscribed RESP2 client's PING is answered by Redis in the subscriber format.
    if (session.protocol === 2 && session.pubsub.active) return session.pubsub.ping(view);
    session.reply(view.argc === 1 ? PONG : bulkReply(view.argBuffer(1), session.protocol));
  },
  echo: (session, view) => session.reply(bulkReply(view.argBuffer(1), session.protocol)),
  quit: (session) => {
    session.reply(OK);
    session.closeAfterReply();
  },
  // After the replies of the commands before it (a pipeline's), which it must neither drop nor change.
  reset: (session) =>
    session.afterRepliesDue(() => {
      session.endSession(); // tracking too, as RESET turns it off
      session.protocol = 2;
      session.name = null;
      session.readonlyMode = false;
      session.db = 0;
      session.authenticated = initiallyAuthenticated(session);
      session.aclUser = session.context.acl.defaultUser;
      session.resetReplyMode();
      session.reply(RESET);
    }),
  auth: (session, view) =>
    session.reply(
      view.argc > 3
        ? SYNTAX
        : authenticate(session, view.argc === 2 ? undefined : view.arg(1), view.argBuffer(view.argc - 1)),
    ),
  hello,
  select: selectDatabase,
  // As on a cluster node: READONLY lets this client's reads go to replicas (stale reads accepted).
  readonly: (session) => {
    session.readonlyMode = true;
    session.reply(OK);
  },
  readwrite: (session) => {
    session.readonlyMode = false;
    session.reply(OK);
  },
  asking: (session) => session.reply(CLUSTER_SUPPORT_DISABLED),
  role: (session) =>
    session.reply(encodeReply([new SimpleString("master") as never, 0, []], session.protocol)),
  info: (session, view) => {
    const args = Array.from({ length: view.argc - 1 }, (_, i) => view.arg(i + 1));
    const context = session.context;
    if (!session.hasBusyProxy) return session.reply(context.info(args, session.protocol));
    // The busy proxy adds the shards' figures (keyspace, memory, stats, ...) to the proxy's sections.
    const sections = context.infoSections(args).flatMap(([n, lines]) => [n, lines.join("\r\n")]);
    session.toBusyProxy(encodeCommand([SHARD_INFO, ...sections]), true);
  },
  "client|setname": (session, view) => {
    const value = view.arg(2);
    if (NOT_PRINTABLE.test(value)) return session.reply(errorReply(RedisErrors.clientNameChars));
    session.name = value === "" ? null : value;
    session.reply(OK);
  },
  "client|getname": (session) => session.reply(bulkReply(session.name, session.protocol)),
  "client|id": (session) => session.reply(integerReply(session.id)),
  "client|setinfo": (session, view) => {
    const attr = view.arg(2).toLowerCase();
    const value = view.arg(3);
    if (attr !== "lib-name" && attr !== "lib-ver")
      return session.reply(errorReply(RedisErrors.unrecognizedOption(view.arg(2))));
    if (NOT_PRINTABLE.test(value)) return session.reply(errorReply(RedisErrors.clientInfoChars(attr)));
    if (attr === "lib-name") session.libName = value;
    else session.libVersion = value;
    session.reply(OK);
  },
  "client|info": (session) =>
    session.reply(bulkReply(session.context.describeClient(session) + "\n", session.protocol)),
  "client|list": (session, view) => session.reply(clientList(session, view)),
  "client|kill": (session, view) => session.reply(clientKill(session, view)),
  "client|help": (session) => session.reply(encodeReply(CLIENT_HELP, session.protocol)),
  // CLUSTER and CLIENT NO-EVICT, as a standalone Redis answers them (./standalone-commands.ts).
  ...STANDALONE_COMMANDS,
  ...ACL_COMMANDS,
  // Client-side caching: CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO.
  ...TRACKING_COMMANDS,
} satisfies Record<string, CommandHandler>;

/** A connection starts authenticated when the default user is on and needs no password (as Redis). */
export function initiallyAuthenticated(session: { context: Session["context"] }): boolean {
  return !session.context.acl.authRequired;
}

function hello(session: Session, view: CommandView): void {
  const hello = parseHello(view);
  if (typeof hello === "string") return session.reply(errorReply(hello));
  if (hello.auth !== null) {
    const result = authenticate(session, hello.auth.username, hello.auth.password);
    if (result !== OK) return session.reply(result);
  }
  if (!session.authenticated)
    return session.reply(
      errorReply(RedisErrors.helloNoAuth(speaksAs72(session.context.router.serverVersion))),
    );
  if (hello.name !== null) session.name = hello.name === "" ? null : hello.name;
  const protocol = hello.protocol ?? session.protocol;
  session.protocol = protocol;
  session.reply(encodeReply(helloReply(session.context.router, protocol, session.id), protocol));
}

/**
 * AUTH [user] password, against the proxy's ACL users (the shards' credentials stay private):
 * `AUTH password` is the default user's, and an error while that user needs no password, as Redis.
 */
function authenticate(session: Session, username: string | undefined, password: Buffer): Buffer {
  const users = session.context.acl;
  if (username === undefined && users.defaultUser.noPass) return errorReply(RedisErrors.noAuthConfigured);
  const user = users.authenticate(username ?? "default", password);
  if (user === undefined) return errorReply(RedisErrors.wrongPass);
  session.authenticated = true;
  session.aclUser = user;
  return OK;
}

/** CLIENT LIST [TYPE normal] [ID id ...]: the clients of this worker (each worker has its own). */
function clientList(session: Session, view: CommandView): Buffer {
  const { argc } = view;
  let clients = [...session.context.clients];
  for (let i = 2; i < argc; i++) {
    const option = view.arg(i).toLowerCase();
    if (option === "id" && i + 1 < argc) {
      const ids = new Set<number>();
      for (i++; i < argc; i++) ids.add(Number(view.arg(i)));
      clients = clients.filter((c) => ids.has(c.id));
    } else if (option === "type" && i + 1 < argc) {
      const type = view.arg(++i).toLowerCase();
      if (!["normal", "master", "replica", "slave", "pubsub"].includes(type))
        return errorReply(RedisErrors.unknownClientType(view.arg(i)));
      if (type !== "normal") clients = [];
    } else return SYNTAX;
  }
  const context = session.context;
  return bulkReply(clients.map((c) => context.describeClient(c) + "\n").join(""), session.protocol);
}

/**
 * CLIENT KILL addr (old form: +OK or an error), or CLIENT KILL [ID id] [ADDR ip:port]
 * [LADDR ip:port] [SKIPME yes|no] (the number killed), among this worker's clients.
 */
function clientKill(session: Session, view: CommandView): Buffer {
  const { argc } = view;
  if (argc === 3) {
    const target = [...session.context.clients].find((c) => c.remoteAddress === view.arg(2));
    if (target === undefined) return errorReply(RedisErrors.noSuchClient);
    killLater(session, target);
    return OK;
  }
  let matches = [...session.context.clients];
  let skipMe = true;
  for (let i = 2; i < argc; i += 2) {
    if (i + 1 >= argc) return SYNTAX;
    const option = view.arg(i).toLowerCase();
    const value = view.arg(i + 1);
    if (option === "id") matches = matches.filter((c) => c.id === Number(value));
    else if (option === "addr") matches = matches.filter((c) => c.remoteAddress === value);
    else if (option === "laddr") matches = matches.filter((c) => c.localAddress === value);
    else if (option === "skipme") {
      if (value.toLowerCase() !== "yes" && value.toLowerCase() !== "no") return SYNTAX;
      skipMe = value.toLowerCase() === "yes";
    } else return SYNTAX;
  }
  if (skipMe) matches = matches.filter((c) => c !== session);
  for (const client of matches) killLater(session, client);
  return integerReply(matches.length);
}

/** Closes a client once the current reply is queued (killing oneself still gets the reply). */
function killLater(session: Session, client: Session): void {
  if (client === session) queueMicrotask(() => session.closeAfterReply());
  else client.destroy();
}
