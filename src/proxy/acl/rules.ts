/**
 * ACL users in Redis's own rule syntax (`on #<sha256> ~app:* &events:* +@read -@dangerous`), parsed
 * into what the proxy checks: the rules mean what `ACL SETUSER` makes of them on Redis 7.0
 * (acl.c's ACLSetUser / ACLSetSelector, ported rule by rule), and a bad rule is refused with the
 * token and the reason.
 *
 * A user is described back (ACL LIST, ACL GETUSER) the way Redis 7.2 does it: the command rules
 * as given, in order, with repeats folded. (Redis 7.0 recomputes a shortest list of categories
 * whose order depends on a per-process hash seed, so no two 7.0 servers print it alike.)
 */
import { createHash } from "node:crypto";
import { CATEGORIES, COMMANDS, type CommandAcl } from "./command-acl.ts";
import { READ, WRITE } from "./command-acl.ts";

export interface KeyPattern {
  pattern: Buffer;
  /** READ, WRITE or both. */
  access: number;
}

/** One set of permissions; a user has a root selector and any number of `(...)` ones. */
export class Selector {
  allKeys = false;
  allChannels = false;
  /** The ALLCOMMANDS flag: set by +@all, cleared by removing any command. */
  allCommands = false;
  /** Set by +@all, cleared only by -@all: the user may run commands added later (its describe starts +@all). */
  futureCommands = false;
  readonly allowed = new Set<string>();
  /** `+select|0`: a first argument allowed for a command that is otherwise not. */
  readonly firstArgs = new Map<string, string[]>();
  keys: KeyPattern[] = [];
  channels: Buffer[] = [];
  /** The command rules as given since the last +@all/-@all, each once (Redis 7.2's command_rules). */
  commandRules: string[] = [];

  /** Applies one selector rule; returns the reason it is refused, or undefined. */
  apply(rule: string): string | undefined {
    const lower = rule.toLowerCase();
    if (lower === "allkeys" || rule === "~*") {
      this.allKeys = true;
      this.keys = [];
    } else if (lower === "resetkeys") {
      this.allKeys = false;
      this.keys = [];
    } else if (lower === "allchannels" || rule === "&*") {
      this.allChannels = true;
      this.channels = [];
    } else if (lower === "resetchannels") {
      this.allChannels = false;
      this.channels = [];
    } else if (lower === "allcommands" || lower === "+@all") {
      for (const name of COMMANDS.keys()) this.allowed.add(name);
      this.allCommands = this.futureCommands = true;
      this.firstArgs.clear();
      this.commandRules = [];
    } else if (lower === "nocommands" || lower === "-@all") {
      this.allowed.clear();
      this.allCommands = this.futureCommands = false;
      this.firstArgs.clear();
      this.commandRules = [];
    } else if (rule[0] === "~" || rule[0] === "%") {
      return this.addKeyPattern(rule);
    } else if (rule[0] === "&") {
      if (this.allChannels) return ERRORS.channelAfterAll;
      if (/[\s\0]/.test(rule)) return ERRORS.syntax;
      const pattern = Buffer.from(rule.slice(1), "latin1");
      if (!this.channels.some((c) => c.equals(pattern))) this.channels.push(pattern);
    } else if ((rule[0] === "+" || rule[0] === "-") && rule[1] === "@") {
      const category = lower.slice(2);
      if (!CATEGORIES.includes(category)) return ERRORS.unknownCategory(rule.slice(2));
      for (const command of COMMANDS.values()) {
        if (command.categories.has(category)) this.change(command, rule[0] === "+");
      }
      this.noteRule(lower);
    } else if (rule[0] === "+" || rule[0] === "-") {
      return this.commandRule(rule, lower);
    } else {
      return ERRORS.syntax;
    }
    return undefined;
  }

  private addKeyPattern(rule: string): string | undefined {
    if (this.allKeys) return ERRORS.keyAfterAll;
    let access = 0;
    let offset = 1;
    if (rule[0] === "%") {
      for (; offset < rule.length; offset++) {
        const c = rule[offset]!.toUpperCase();
        if (c === "R" && !(access & READ)) access |= READ;
        else if (c === "W" && !(access & WRITE)) access |= WRITE;
        else if (rule[offset] === "~") {
          offset++;
          break;
        } else return ERRORS.keyPermission;
      }
    } else {
      access = READ | WRITE;
    }
    const text = rule.slice(offset);
    if (/[\s\0]/.test(text)) return ERRORS.syntax;
    const pattern = Buffer.from(text, "latin1");
    const existing = this.keys.find((k) => k.pattern.equals(pattern));
    if (existing) existing.access |= access;
    else this.keys.push({ pattern, access });
    this.allKeys = false;
    return undefined;
  }

  private commandRule(rule: string, lower: string): string | undefined {
    const allow = rule[0] === "+";
    const name = lower.slice(1);
    const bar = name.lastIndexOf("|");
    if (!allow || bar < 0) {
      const command = COMMANDS.get(name);
      if (command === undefined) return ERRORS.unknownCommand(rule.slice(1));
      this.change(command, allow);
      this.noteRule(lower);
      return undefined;
    }
    const top = COMMANDS.get(name.slice(0, bar));
    if (top === undefined) return ERRORS.unknownCommand(rule.slice(1));
    if (top.parent !== undefined) return ERRORS.firstArgOfSubcommand;
    const first = name.slice(bar + 1);
    if (first === "") return ERRORS.syntax;
    if (top.subcommands !== undefined) {
      const sub = COMMANDS.get(name);
      if (sub === undefined) return ERRORS.unknownCommand(rule.slice(1));
      this.change(sub, true);
    } else {
      const list = this.firstArgs.get(top.name) ?? [];
      if (!list.includes(first)) list.push(first);
      this.firstArgs.set(top.name, list);
    }
    this.noteRule(lower);
    return undefined;
  }

  /** Allows or denies a command, and with a container command all its subcommands. */
  private change(command: CommandAcl, allow: boolean): void {
    const set = (name: string) => {
      if (allow) this.allowed.add(name);
      else {
        this.allowed.delete(name);
        this.allCommands = false;
      }
    };
    set(command.name);
    this.firstArgs.delete(command.name);
    for (const sub of command.subcommands?.values() ?? []) set(sub.name);
  }

  private noteRule(lower: string): void {
    const body = lower.slice(1);
    this.commandRules = this.commandRules.filter((r) => r.slice(1) !== body);
    this.commandRules.push(lower);
  }

  /** The command rules as ACL GETUSER's `commands` shows them. */
  describeCommands(): string {
    return [this.futureCommands ? "+@all" : "-@all", ...this.commandRules].join(" ");
  }

  describeKeys(): string[] {
    if (this.allKeys) return ["~*"];
    return this.keys.map(
      (k) =>
        (k.access === (READ | WRITE) ? "~" : k.access === READ ? "%R~" : "%W~") +
        k.pattern.toString("latin1"),
    );
  }

  describeChannels(): string[] {
    if (this.allChannels) return ["&*"];
    return this.channels.map((c) => "&" + c.toString("latin1"));
  }

  /** As ACL LIST shows a selector (ACLDescribeSelector). */
  describe(): string {
    const channels = this.allChannels ? ["&*"] : ["resetchannels", ...this.describeChannels()];
    return [...this.describeKeys(), ...channels, this.describeCommands()].join(" ");
  }
}

export class AclUser {
  enabled = false;
  noPass = false;
  /** sanitize-payload flags: kept to be shown back; the shards do the RESTORE checks. */
  sanitize: "sanitize-payload" | "skip-sanitize-payload" | undefined;
  /** SHA-256 hex digests, lower case. */
  passwords: string[] = [];
  readonly selectors: Selector[] = [new Selector()];
  /** May run anything (a selector with all commands, keys and channels): commands skip the check. */
  unrestricted = false;

  constructor(readonly name: string) {}

  get root(): Selector {
    return this.selectors[0]!;
  }

  /** Applies one rule (a selector rule applies to the root selector). */
  apply(rule: string): string | undefined {
    const lower = rule.toLowerCase();
    if (rule === "") return undefined;
    if (lower === "on" || lower === "off") this.enabled = lower === "on";
    else if (lower === "sanitize-payload" || lower === "skip-sanitize-payload") this.sanitize = lower;
    else if (lower === "nopass") {
      this.noPass = true;
      this.passwords = [];
    } else if (lower === "resetpass") {
      this.noPass = false;
      this.passwords = [];
    } else if (rule[0] === ">" || rule[0] === "#") {
      const hash = rule[0] === ">" ? hashPassword(Buffer.from(rule.slice(1), "latin1")) : rule.slice(1);
      if (!/^[0-9a-f]{64}$/.test(hash)) return ERRORS.badHash;
      if (!this.passwords.includes(hash)) this.passwords.push(hash);
      this.noPass = false;
    } else if (rule[0] === "<" || rule[0] === "!") {
      const hash = rule[0] === "<" ? hashPassword(Buffer.from(rule.slice(1), "latin1")) : rule.slice(1);
      if (rule[0] === "!" && !/^[0-9a-f]{64}$/.test(hash)) return ERRORS.badHash;
      const at = this.passwords.indexOf(hash);
      if (at < 0) return ERRORS.noSuchPassword;
      this.passwords.splice(at, 1);
    } else if (rule[0] === "(" && rule.endsWith(")")) {
      const selector = new Selector();
      for (const inner of splitRules(rule.slice(1, -1))) {
        const error = selector.apply(inner);
        if (error !== undefined) return error;
      }
      this.selectors.push(selector);
    } else if (lower === "clearselectors") {
      this.selectors.splice(1);
    } else if (lower === "reset") {
      for (const r of [
        "resetpass",
        "resetkeys",
        "resetchannels",
        "off",
        "sanitize-payload",
        "clearselectors",
        "-@all",
      ])
        this.apply(r);
    } else {
      return this.root.apply(rule);
    }
    return undefined;
  }

  /** Whether the password is one of the user's (or the user needs none); disabled users never match. */
  checkPassword(password: Buffer): boolean {
    if (!this.enabled) return false;
    if (this.noPass) return true;
    const hash = hashPassword(password);
    let match = false;
    // Every digest is compared, in full, whatever matches first (timing).
    for (const p of this.passwords) match = equalDigest(p, hash) || match;
    return match;
  }

  /** The flags ACL GETUSER and ACL LIST show, in Redis's order. */
  flags(): string[] {
    const flags = [this.enabled ? "on" : "off"];
    if (this.noPass) flags.push("nopass");
    if (this.sanitize === "skip-sanitize-payload") flags.push("skip-sanitize-payload");
    if (this.sanitize === "sanitize-payload") flags.push("sanitize-payload");
    return flags;
  }

  /** A line of ACL LIST: `user <name> <flags> <#hashes> <root selector> (<selector>)...`. */
  describe(): string {
    const parts = [...this.flags(), ...this.passwords.map((p) => "#" + p), this.root.describe()];
    const extra = this.selectors.slice(1).map((s) => `(${s.describe()})`);
    return `user ${this.name} ${[...parts, ...extra].join(" ")}`;
  }
}

export function hashPassword(password: Buffer): string {
  return createHash("sha256").update(password).digest("hex");
}

function equalDigest(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Splits a rule string at spaces, keeping a `( ... )` selector as one rule (as Redis merges the
 * arguments of an ACL file line).
 */
export function splitRules(text: string): string[] {
  const tokens = text.split(/\s+/).filter((t) => t !== "");
  const rules: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.startsWith("(") && !token.endsWith(")")) {
      const parts = [token];
      while (++i < tokens.length) {
        parts.push(tokens[i]!);
        if (tokens[i]!.endsWith(")")) break;
      }
      const merged = parts.join(" ");
      if (!merged.endsWith(")")) throw new AclRuleError(merged, ERRORS.unmatchedParenthesis);
      rules.push(merged);
    } else {
      rules.push(token);
    }
  }
  return rules;
}

export class AclRuleError extends Error {
  constructor(
    readonly rule: string,
    readonly reason: string,
  ) {
    super(`rule '${rule}': ${reason}`);
  }
}

/** Makes a user from its rules, as `ACL SETUSER name rules...` makes a new one on Redis. */
export function parseUser(name: string, rules: string | readonly string[]): AclUser {
  if (name === "" || /[\s\0]/.test(name))
    throw new AclRuleError(name, "a user name can't be empty or contain spaces");
  const user = new AclUser(name);
  for (const rule of typeof rules === "string" ? splitRules(rules) : rules) {
    const error = user.apply(rule);
    if (error !== undefined) throw new AclRuleError(rule, error);
  }
  user.unrestricted = user.selectors.some((s) => s.allCommands && s.allKeys && s.allChannels);
  return user;
}

/** Redis's reasons (ACLSetUserStringError), with the proxy's hint where Redis gives none. */
const ERRORS = {
  syntax: "Syntax error",
  unknownCategory: (category: string) =>
    `Unknown command or category name in ACL (no category '${category}'; the categories are ${CATEGORIES.map((c) => "@" + c).join(" ")})`,
  unknownCommand: (command: string) => `Unknown command or category name in ACL (no command '${command}')`,
  keyAfterAll:
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
  channelAfterAll:
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
  keyPermission: "Syntax error (a key permission is %R~, %W~ or %RW~ followed by a pattern)",
  badHash:
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
  noSuchPassword: "The password you are trying to remove from the user does not exist",
  firstArgOfSubcommand: "Allowing first-arg of a subcommand is not supported",
  unmatchedParenthesis: "Unmatched parenthesis in acl selector starting at '('.",
};
