/**
 * What ACLs need to know of each Redis command: its categories, whether it runs before AUTH, and
 * which arguments are keys (with read/write flags) or channels. Categories and key specs come from
 * ./redis-commands.ts, captured from a real redis-server by scripts/acl/capture-commands.ts
 * (@ioredis/commands has neither); the key search follows Redis 7.0's db.c
 * (getKeysFromCommandWithSpecs), so a key is checked against the same patterns as on Redis.
 */
import type { CommandView } from "../command-view.ts";
import { getKeyIndexes } from "@ioredis/commands";
import { CAPTURED, type CapturedCommand as RawCommandAcl, type KeySpec } from "./redis-commands.ts";

/** The Redis version the table was captured from. */
export const CAPTURED_FROM = CAPTURED.redisVersion;

/** Categories in Redis's order (ACL CAT). */
export const CATEGORIES: readonly string[] = CAPTURED.categories;

/** A key argument must be readable (R), writable (W), both, or neither (flags Redis left unset). */
export const READ = 1;
export const WRITE = 2;

export interface KeyRef {
  index: number;
  access: number;
}

export interface CommandAcl {
  /** Full name: "get", "client|id". */
  name: string;
  categories: ReadonlySet<string>;
  noAuth: boolean;
  /** The specs of real keys (not `not_key` ones), with their flags read once. */
  keySpecs: readonly CompiledSpec[];
  /** Redis finds this command's keys with its own code rather than the specs (see `commandKeys`). */
  keysByCode: boolean;
  hasKeys: boolean;
  parent: CommandAcl | undefined;
  subcommands: ReadonlyMap<string, CommandAcl> | undefined;
}

interface CompiledSpec extends KeySpec {
  access: number;
  incomplete: boolean;
  /** For keyword specs: the keyword in lower case. */
  keyword: string | undefined;
}

function build(name: string, raw: RawCommandAcl, parent: CommandAcl | undefined): CommandAcl {
  const specs = raw.keySpecs ?? [];
  const real = specs
    .filter((s) => !s.flags.includes("not_key"))
    .map((s) => ({
      ...s,
      access: accessOf(s.flags),
      incomplete: s.flags.includes("incomplete"),
      keyword: s.begin.keyword?.toLowerCase(),
    }));
  const command: CommandAcl = {
    name,
    categories: new Set(raw.categories),
    noAuth: raw.noAuth === true,
    keySpecs: real,
    keysByCode: specs.some((s) => s.flags.includes("variable_flags")),
    hasKeys: real.length > 0,
    parent,
    subcommands: undefined,
  };
  if (raw.subcommands) {
    const subs = new Map<string, CommandAcl>();
    for (const [sub, subRaw] of Object.entries(raw.subcommands))
      subs.set(sub, build(`${name}|${sub}`, subRaw, command));
    command.subcommands = subs;
  }
  return command;
}

/** Every command, top-level and subcommands, by full lower-case name. */
export const COMMANDS: ReadonlyMap<string, CommandAcl> = (() => {
  const map = new Map<string, CommandAcl>();
  for (const [name, raw] of Object.entries(CAPTURED.commands)) {
    const command = build(name, raw, undefined);
    map.set(name, command);
    for (const sub of command.subcommands?.values() ?? []) map.set(sub.name, sub);
  }
  return map;
})();

/** AUTH, HELLO, QUIT and RESET: what Redis runs for a client that has not authenticated. */
export function runsBeforeAuth(name: string): boolean {
  return COMMANDS.get(name)?.noAuth === true;
}

/** Commands and subcommands of a category (ACL CAT order is Redis's table order, not kept here). */
export function commandsInCategory(category: string): CommandAcl[] {
  return [...COMMANDS.values()].filter((c) => c.categories.has(category));
}

function accessOf(flags: readonly string[]): number {
  let access = 0;
  if (flags.includes("access")) access |= READ;
  if (flags.includes("insert") || flags.includes("delete") || flags.includes("update")) access |= WRITE;
  return access;
}

/**
 * The key arguments of a command and the access each needs, as Redis's ACL check finds them: the
 * key specs when they are complete and their flags fixed, else Redis's per-command code.
 */
export function commandKeys(command: CommandAcl, view: CommandView): KeyRef[] {
  if (!command.keysByCode) {
    const keys = keysFromSpecs(command, view);
    if (keys !== null) return keys;
  }
  return keysByCode(command, view);
}

function keysFromSpecs(command: CommandAcl, view: CommandView): KeyRef[] | null {
  const argc = view.argc;
  const keys: KeyRef[] = [];
  for (const spec of command.keySpecs) {
    let first = 0;
    if (spec.begin.type === "index") {
      first = spec.begin.index!;
    } else if (spec.begin.type === "keyword") {
      const from = spec.begin.startfrom!;
      const start = from > 0 ? from : argc + from;
      const end = from > 0 ? argc - 1 : 1;
      const keyword = spec.keyword!;
      for (let i = start; i !== end; i = start <= end ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (view.arg(i).toLowerCase() === keyword) {
          first = i + 1;
          break;
        }
      }
      if (first === 0) continue;
    } else {
      return null;
    }
    let last: number;
    let step: number;
    if (spec.find.type === "range") {
      step = spec.find.keystep!;
      const lastKey = spec.find.lastkey!;
      if (lastKey >= 0) last = first + lastKey;
      else if (!spec.find.limit) last = argc + lastKey;
      else last = first + (Math.trunc((argc - first) / spec.find.limit) + lastKey);
    } else if (spec.find.type === "keynum") {
      step = spec.find.keystep!;
      const at = first + spec.find.keynumidx!;
      if (spec.find.keynumidx! >= argc || at >= argc) return null;
      const text = view.arg(at);
      if (!/^-?\d+$/.test(text)) return null;
      const count = Number(text);
      if (count < 0) return null;
      first += spec.find.firstkey!;
      last = first + count - 1;
    } else {
      return null;
    }
    if (last >= argc || last < first || first >= argc) return null;
    for (let i = first; i <= last; i += step) keys.push({ index: i, access: spec.access });
    if (spec.incomplete) return null;
  }
  return keys;
}

/** Redis's getkeys procs for the commands whose specs cannot say (db.c), with their flags. */
function keysByCode(command: CommandAcl, view: CommandView): KeyRef[] {
  const argc = view.argc;
  const word = (i: number) => view.arg(i).toLowerCase();
  switch (command.name) {
    case "set": {
      for (let i = 3; i < argc; i++) if (word(i) === "get") return [{ index: 1, access: READ | WRITE }];
      return [{ index: 1, access: WRITE }];
    }
    case "bitfield": {
      let readonly = true;
      for (let i = 2; i < argc; i++) {
        const remaining = argc - i - 1;
        const arg = word(i);
        if (arg === "get" && remaining >= 2) i += 2;
        else if ((arg === "set" || arg === "incrby") && remaining >= 3) {
          readonly = false;
          break;
        } else if (arg === "overflow" && remaining >= 1) i += 1;
        else {
          readonly = false;
          break;
        }
      }
      return [{ index: 1, access: readonly ? READ : READ | WRITE }];
    }
    case "sort_ro":
      return [{ index: 1, access: READ }];
    case "sort": {
      const keys: KeyRef[] = [{ index: 1, access: READ }];
      let store: KeyRef | undefined;
      const skips: Record<string, number> = { limit: 2, get: 1, by: 1 };
      for (let i = 2; i < argc; i++) {
        const arg = word(i);
        if (arg in skips) i += skips[arg]!;
        else if (arg === "store" && i + 1 < argc) store = { index: i + 1, access: WRITE };
      }
      return store ? [...keys, store] : keys;
    }
    case "migrate": {
      let first = 3;
      let count = 1;
      const skips: Record<string, number> = { copy: 0, replace: 0, auth: 1, auth2: 2 };
      for (let i = 6; i < argc; i++) {
        const arg = word(i);
        if (arg === "keys") {
          if (view.argEnd(3) > view.argStart(3)) count = 0;
          else {
            first = i + 1;
            count = argc - first;
          }
          break;
        }
        if (arg in skips) i += skips[arg]!;
      }
      return Array.from({ length: count }, (_, k) => ({ index: first + k, access: READ | WRITE }));
    }
    default:
      // Redis's remaining procs (numkeys commands with a bad count, XREAD, GEORADIUS) set no flags.
      return otherKeyIndexes(command.name, view.argBuffers()).map((index) => ({ index, access: 0 }));
  }
}

/** Channel arguments of the commands whose channels ACLs check (Redis 7.0's commands_with_channels). */
export interface ChannelRefs {
  from: number;
  /** One channel (PUBLISH) or every argument from `from` on. */
  one: boolean;
  /** PSUBSCRIBE's patterns are compared literally with the user's channel patterns. */
  pattern: boolean;
}

const CHANNELS: ReadonlyMap<string, ChannelRefs> = new Map([
  ["subscribe", { from: 1, one: false, pattern: false }],
  ["ssubscribe", { from: 1, one: false, pattern: false }],
  ["psubscribe", { from: 1, one: false, pattern: true }],
  ["publish", { from: 1, one: true, pattern: false }],
  ["spublish", { from: 1, one: true, pattern: false }],
]);

export function commandChannels(name: string): ChannelRefs | undefined {
  return CHANNELS.get(name);
}

/** Key positions as @ioredis/commands finds them (arguments after the name, so shifted by one). */
function otherKeyIndexes(name: string, args: Buffer[]): number[] {
  try {
    return getKeyIndexes(name, args.slice(1)).map((i) => i + 1);
  } catch {
    return [];
  }
}
