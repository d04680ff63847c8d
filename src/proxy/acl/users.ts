/**
 * The proxy's ACL users, made from its config, and the check every command passes before the
 * proxy routes it (Redis 7.0's ACLCheckAllUserCommandPerm): the command or subcommand, then each
 * key for the access its spec names, then each channel, in every selector until one allows it.
 *
 * Without `users` in the config, the proxy has one user, `default`, that may run everything and
 * needs `clientPassword` (or no password when none is set): the proxy's behaviour before ACLs.
 * With `users` and no `default` among them, the default user is the same. The proxy's own
 * credentials towards the shards (`backendAuth`) are apart from all of this.
 */
import { globMatch } from "../busy/glob.ts";
import type { CommandView } from "../command-view.ts";
import { DredisError, ErrorCodes } from "../../errors.ts";
import { commandChannels, commandKeys, COMMANDS, type CommandAcl, type KeyRef } from "./command-acl.ts";
import { AclRuleError, parseUser, type AclUser, type Selector } from "./rules.ts";
import { aclConfigProblem } from "./config-problem.ts";

export const enum Denied {
  None,
  Command,
  Key,
  Channel,
}

export interface Verdict {
  denied: Denied;
  /** The argument that was refused (key or channel), for ACL DRYRUN's text. */
  index: number;
}

const ALLOWED: Verdict = { denied: Denied.None, index: 0 };
const DENIED_COMMAND: Verdict = { denied: Denied.Command, index: 0 };

export class AclUsers {
  private constructor(
    /** Sorted by name, as Redis lists them. */
    private readonly byName: ReadonlyMap<string, AclUser>,
  ) {}

  /**
   * The users of a config: `users` maps a name to its rules. `clientPassword` is the default
   * user's password when `users` does not define `default`.
   */
  static fromConfig(
    users: Readonly<Record<string, string>> | undefined,
    clientPassword: string | undefined,
    previousClientPassword?: string,
  ): AclUsers {
    const map = new Map<string, AclUser>();
    for (const [name, rules] of Object.entries(users ?? {})) {
      try {
        map.set(name, parseUser(name, rules));
      } catch (err) {
        if (!(err instanceof AclRuleError)) throw err;
        throw new DredisError(ErrorCodes.CONFIG, `invalid proxy config: users.${name}: ${err.message}`);
      }
    }
    const problem = aclConfigProblem({ users, clientPassword, previousClientPassword });
    if (problem !== undefined) throw new DredisError(ErrorCodes.CONFIG, `invalid proxy config: ${problem}`);
    if (!map.has("default")) {
      // Redis users may hold several passwords: during a rotation the default user takes both.
      const passwords =
        clientPassword === undefined
          ? ["nopass"]
          : [
              ">" + clientPassword,
              ...(previousClientPassword === undefined ? [] : [">" + previousClientPassword]),
            ];
      map.set("default", parseUser("default", ["on", ...passwords, "~*", "&*", "+@all"]));
    }
    return new AclUsers(new Map([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  }

  get(name: string): AclUser | undefined {
    return this.byName.get(name);
  }

  get defaultUser(): AclUser {
    return this.byName.get("default")!;
  }

  all(): AclUser[] {
    return [...this.byName.values()];
  }

  /** A connection starts authenticated (as `default`) when that user is on and needs no password. */
  get authRequired(): boolean {
    const user = this.defaultUser;
    return !user.noPass || !user.enabled;
  }

  /** The user a name and password prove, or undefined (unknown, disabled or wrong password). */
  authenticate(name: string, password: Buffer): AclUser | undefined {
    const user = this.byName.get(name);
    return user !== undefined && user.checkPassword(password) ? user : undefined;
  }
}

/** Whether `user` may run the command in `view` (whose full name is `name`). */
export function checkCommand(user: AclUser, name: string, view: CommandView, argOffset = 0): Verdict {
  const command = COMMANDS.get(name);
  if (command === undefined) {
    // Newer than the captured table: only a selector with every command (Redis's ALLCOMMANDS flag)
    // and every key may run it, since its keys and categories are not known here.
    const anything = user.selectors.some((s) => s.allCommands && s.allKeys);
    return anything ? ALLOWED : DENIED_COMMAND;
  }
  const selectors = user.selectors;
  // The common case, one selector: its verdict is the answer.
  if (selectors.length === 1) return checkSelector(selectors[0]!, command, view, argOffset, undefined);
  let worst = DENIED_COMMAND;
  let keys: KeyRef[] | undefined;
  for (const selector of selectors) {
    if (keys === undefined && !selector.allKeys && command.hasKeys)
      keys = commandKeys(command, shifted(view, argOffset));
    const verdict = checkSelector(selector, command, view, argOffset, keys);
    if (verdict.denied === Denied.None) return ALLOWED;
    if (verdict.denied > worst.denied || (verdict.denied === worst.denied && verdict.index > worst.index))
      worst = verdict;
  }
  return worst;
}

function checkSelector(
  selector: Selector,
  command: CommandAcl,
  view: CommandView,
  argOffset: number,
  /** The command's keys when an earlier selector found them. */
  found: KeyRef[] | undefined,
): Verdict {
  if (!selector.allCommands && !command.noAuth && !selector.allowed.has(command.name)) {
    const firstArgs = selector.firstArgs.get(command.name);
    const at = argOffset + (command.parent ? 2 : 1);
    if (firstArgs === undefined || view.argc - argOffset < 2) return DENIED_COMMAND;
    const first = view.arg(at).toLowerCase();
    if (!firstArgs.includes(first)) return DENIED_COMMAND;
  }
  if (!selector.allKeys && command.hasKeys) {
    for (const key of found ?? commandKeys(command, shifted(view, argOffset))) {
      const index = key.index + argOffset;
      if (!keyAllowed(selector, view.argBuffer(index), key.access))
        return { denied: Denied.Key, index: key.index };
    }
  }
  const channels = selector.allChannels ? undefined : commandChannels(command.name);
  if (channels !== undefined) {
    const argc = view.argc - argOffset;
    const stop = channels.one ? Math.min(channels.from + 1, argc) : argc;
    for (let i = channels.from; i < stop; i++) {
      if (!channelAllowed(selector, view.argBuffer(i + argOffset), channels.pattern))
        return { denied: Denied.Channel, index: i };
    }
  }
  return ALLOWED;
}

function keyAllowed(selector: Selector, key: Buffer, access: number): boolean {
  for (const pattern of selector.keys) {
    if ((pattern.access & access) !== access) continue;
    if (globMatch(pattern.pattern, key)) return true;
  }
  return false;
}

function channelAllowed(selector: Selector, channel: Buffer, isPattern: boolean): boolean {
  for (const pattern of selector.channels) {
    if (isPattern ? pattern.equals(channel) : globMatch(pattern, channel)) return true;
  }
  return false;
}

/** The view as if the command started at `offset` (ACL DRYRUN checks `user cmd args...`). */
function shifted(view: CommandView, offset: number): CommandView {
  if (offset === 0) return view;
  return {
    argc: view.argc - offset,
    arg: (i: number) => view.arg(i + offset),
    argBuffer: (i: number) => view.argBuffer(i + offset),
    argStart: (i: number) => view.argStart(i + offset),
    argEnd: (i: number) => view.argEnd(i + offset),
    argBuffers: () => view.argBuffers().slice(offset),
  } as CommandView;
}
