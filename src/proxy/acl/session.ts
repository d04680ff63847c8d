/**
 * ACLs on a client session: the check each command passes before the proxy routes it, and the
 * ACL subcommands the proxy answers from its own users (WHOAMI, LIST, USERS, CAT, GETUSER, DRYRUN,
 * GENPASS, HELP). Those that change users are refused (../commands.ts denies them): the users are
 * config, changed by a reload.
 */
import { randomBytes } from "node:crypto";
import { AclErrors, RedisErrors } from "../../errors.ts";
import {
  bulkReply,
  encodeReply,
  errorReply,
  MapReply,
  OK,
  SetReply,
  SimpleString,
} from "../../resp/encode.ts";
import { arityOk, type CommandHandler, type CommandSpec, type Session } from "../command-spec.ts";
import type { CommandView } from "../command-view.ts";
import { CATEGORIES, commandsInCategory } from "./command-acl.ts";
import type { Selector } from "./rules.ts";
import { checkCommand, Denied } from "./users.ts";

let lastVersion = "";
let lastIs72 = false;
/** Redis 7.2 reworded NOPERM and others; the proxy speaks as the shards' version does. */
export function speaksAs72(version: string): boolean {
  if (version !== lastVersion) {
    const [major = 0, minor = 0] = version.split(".").map(Number);
    lastVersion = version;
    lastIs72 = major > 7 || (major === 7 && minor >= 2);
  }
  return lastIs72;
}

/**
 * The NOPERM error for a command the session's user may not run, or null when it may. Called for
 * users that are restricted at all (`AclUser.unrestricted` skips it).
 */
export function permissionDenial(session: Session, spec: CommandSpec, view: CommandView): Buffer | null {
  const user = session.aclUser;
  const verdict = checkCommand(user, spec.name, view);
  if (verdict.denied === Denied.None) return null;
  const v72 = speaksAs72(session.context.router.serverVersion);
  const text =
    verdict.denied === Denied.Command
      ? AclErrors.noPermCommand(spec.name, user.name, v72)
      : verdict.denied === Denied.Key
        ? AclErrors.noPermKey(v72)
        : AclErrors.noPermChannel(v72);
  return errorReply(spec.name === "exec" ? AclErrors.execAborted(text) : text);
}

const HELP = [
  "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "CAT [<category>]",
  "    List all commands that belong to <category>, or all command categories",
  "    when no category is specified.",
  "DRYRUN <username> <command> [<arg> ...]",
  "    Returns whether the user can execute the given command without executing the command.",
  "GETUSER <username>",
  "    Get the user's details.",
  "GENPASS [<bits>]",
  "    Generate a secure 256-bit user password. The optional `bits` argument can",
  "    be used to specify a different size.",
  "LIST",
  "    Show users details in config file format.",
  "USERS",
  "    List all the registered usernames.",
  "WHOAMI",
  "    Return the current connection username.",
  "(SETUSER, DELUSER, LOAD, SAVE and LOG are not available: this proxy's users come from its config.)",
  "HELP",
  "    Print this help.",
];

/** The ACL subcommands, each with its handler (merged into ../local-commands.ts's table). */
export const ACL_COMMANDS = {
  "acl|whoami": (session) => session.reply(bulkReply(session.aclUser.name, session.protocol)),
  "acl|users": (session) =>
    session.reply(
      encodeReply(
        session.context.acl.all().map((u) => u.name),
        session.protocol,
      ),
    ),
  "acl|list": (session) =>
    session.reply(
      encodeReply(
        session.context.acl.all().map((u) => u.describe()),
        session.protocol,
      ),
    ),
  "acl|cat": (session, view) => {
    if (view.argc === 2) return session.reply(encodeReply([...CATEGORIES], session.protocol));
    if (view.argc !== 3) return session.reply(errorReply(AclErrors.subcommandSyntax(view.arg(1))));
    const category = view.arg(2).toLowerCase();
    if (!CATEGORIES.includes(category))
      return session.reply(errorReply(AclErrors.unknownCategory(view.arg(2))));
    session.reply(
      encodeReply(
        commandsInCategory(category).map((c) => c.name),
        session.protocol,
      ),
    );
  },
  "acl|getuser": (session, view) => {
    const user = session.context.acl.get(view.arg(2));
    if (user === undefined) return session.reply(bulkReply(null, session.protocol));
    const reply = new MapReply([
      ["flags", new SetReply(user.flags())],
      ["passwords", user.passwords],
      ...describeSelector(user.root),
      ["selectors", user.selectors.slice(1).map((s) => new MapReply(describeSelector(s)))],
    ]);
    session.reply(encodeReply(reply, session.protocol));
  },
  "acl|dryrun": (session, view) => session.reply(dryRun(session, view)),
  "acl|genpass": (session, view) => {
    if (view.argc > 3) return session.reply(errorReply(AclErrors.subcommandSyntax(view.arg(1))));
    let bits = 256;
    if (view.argc === 3) {
      bits = Number(view.arg(2));
      if (!/^-?\d+$/.test(view.arg(2))) return session.reply(errorReply(RedisErrors.notInteger));
    }
    if (bits <= 0 || bits > 4096)
      return session.reply(
        errorReply(
          "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        ),
      );
    const chars = Math.floor((bits + 3) / 4);
    session.reply(
      bulkReply(
        randomBytes(Math.ceil(chars / 2))
          .toString("hex")
          .slice(0, chars),
        session.protocol,
      ),
    );
  },
  "acl|help": (session) =>
    session.reply(
      encodeReply(
        HELP.map((line) => new SimpleString(line) as never),
        session.protocol,
      ),
    ),
} satisfies Record<string, CommandHandler>;

function describeSelector(selector: Selector): [string, string][] {
  return [
    ["commands", selector.describeCommands()],
    ["keys", selector.describeKeys().join(" ")],
    ["channels", selector.describeChannels().join(" ")],
  ];
}

/** ACL DRYRUN user command [arg ...]: whether the user could run it, in Redis's words. */
function dryRun(session: Session, view: CommandView): Buffer {
  const name = view.arg(2);
  const user = session.context.acl.get(name);
  if (user === undefined) return errorReply(AclErrors.userNotFound(name));
  // As Redis's lookupCommand: a container named alone is itself (and fails its arity below).
  const top = session.context.commands.lookup(view.buf, view.argStart(3), view.argEnd(3));
  let spec: CommandSpec | undefined = top;
  if (top?.subcommands !== undefined && view.argc > 4) spec = top.subcommands.get(view.arg(4).toLowerCase());
  if (spec === undefined) return errorReply(AclErrors.commandNotFound(view.arg(3)));
  if (!arityOk(spec, view.argc - 3)) return errorReply(RedisErrors.wrongArity(spec.name));
  const verdict = checkCommand(user, spec.name, view, 3);
  const v72 = speaksAs72(session.context.router.serverVersion);
  switch (verdict.denied) {
    case Denied.None:
      return OK;
    case Denied.Command:
      return bulkReply(AclErrors.dryRunCommand(spec.name, user.name, v72), session.protocol);
    case Denied.Key:
      return bulkReply(AclErrors.dryRunKey(view.arg(verdict.index + 3), user.name, v72), session.protocol);
    default:
      return bulkReply(
        AclErrors.dryRunChannel(view.arg(verdict.index + 3), user.name, v72),
        session.protocol,
      );
  }
}
