/**
 * The proxy's command table: for every Redis command, how the proxy runs it and where its keys are.
 *
 * Arity and key positions come from @ioredis/commands (generated from Redis's own COMMAND output);
 * this file adds only the proxy's decision per command. Lookups by name are case-insensitive and
 * allocation-free for the names clients actually send (all-lower or all-upper case).
 */
import { createRequire } from "node:module";
import { getKeyIndexes } from "@ioredis/commands";

const require = createRequire(import.meta.url);

interface RawSpec {
  arity: number;
  flags: string[];
  keyStart: number;
  keyStop: number;
  step: number;
  requestPolicy?: string;
  subcommands?: Record<string, RawSpec>;
}
const RAW = require("@ioredis/commands/built/commands.json") as Record<string, RawSpec>;

/** How the proxy runs a command. */
export const enum Mode {
  /** Sent to the master of its keys' slot (all keys must share one slot). */
  Keyed,
  /** Keyless, and any master gives the same answer (TIME, COMMAND, PUBLISH...). */
  AnyShard,
  /** Answered by the proxy itself (PING, HELLO, AUTH, CLIENT SETNAME...). */
  Local,
  /** Changes the client's session: transactions (MULTI, EXEC, WATCH...) and Pub/Sub subscriptions. */
  Session,
  /** Refused: it would damage or confuse the cluster when sent through a proxy. */
  Denied,
  /**
   * Keyless with a cluster-wide meaning (SCAN, DBSIZE, FLUSHALL, SCRIPT LOAD...): the busy proxy
   * runs it on every master and merges the replies.
   */
  Broadcast,
  /** Needs a session, a broadcast or a split that this proxy does not run yet. */
  Unsupported,
}

export interface CommandSpec {
  /** Lower-case name; for subcommands "container|sub", as Redis names them. */
  name: string;
  arity: number;
  mode: Mode;
  keyStart: number;
  keyStop: number;
  step: number;
  movableKeys: boolean;
  readonly: boolean;
  write: boolean;
  blocking: boolean;
  /** Container commands (CLIENT, OBJECT, ...): subcommand name (lower case) to its spec. */
  subcommands?: Map<string, CommandSpec>;
  /**
   * Keys may span slots: the busy proxy splits it by slot, runs the parts and merges the replies.
   * Only commands whose meaning survives a split; atomic ones (MSETNX, RENAME, *STORE...) are not.
   */
  splittable: boolean;
  /** Why the command is refused or not supported, for the error text. */
  reason?: string;
}

/** Answered by the proxy. Container commands list the subcommands it answers. */
const LOCAL = new Set([
  "ping",
  "echo",
  "quit",
  "reset",
  "hello",
  "auth",
  "select",
  "info",
  "role",
  "readonly",
  "readwrite",
  "asking",
  "client|setname",
  "client|getname",
  "client|id",
  "client|setinfo",
  "client|info",
  "client|list",
  "client|kill",
  "client|help",
]);

/** Commands that change the client's session state (see client.ts). */
const SESSION = new Set([
  "multi",
  "exec",
  "discard",
  "watch",
  "unwatch",
  "subscribe",
  "psubscribe",
  "unsubscribe",
  "punsubscribe",
  "ssubscribe",
  "sunsubscribe",
]);

/** Keyless commands any master answers as the whole cluster would. */
const ANY_SHARD = new Set([
  "time",
  "lolwut",
  "publish",
  "pfselftest",
  "command",
  "command|count",
  "command|docs",
  "command|info",
  "command|list",
  "command|getkeys",
  "command|getkeysandflags",
  "command|help",
  "config|get",
  "config|help",
  "object|help",
  "memory|help",
  "xinfo|help",
  "xgroup|help",
  "script|help",
  "function|help",
  "slowlog|help",
  "latency|help",
  "pubsub|help",
  // Functions are loaded on every master (FUNCTION LOAD is broadcast), so any one lists them all.
  "function|list",
  "function|dump",
]);

/**
 * Keyless commands with a cluster-wide meaning, run by the busy proxy on every master (see
 * ./busy/cluster-wide.ts for how each reply is merged).
 */
export const BROADCAST = new Set([
  "scan",
  "keys",
  "dbsize",
  "randomkey",
  "flushall",
  "flushdb",
  "wait",
  "script|load",
  "script|exists",
  "script|flush",
  "function|load",
  "function|delete",
  "function|flush",
  "function|restore",
  "slowlog|get",
  "slowlog|len",
  "slowlog|reset",
  "latency|latest",
  "latency|history",
  "latency|reset",
  "pubsub|channels",
  "pubsub|numsub",
  "pubsub|numpat",
  "pubsub|shardchannels",
  "pubsub|shardnumsub",
]);

/** Multi-key commands the busy proxy runs across slots (see `CommandSpec.splittable`). */
export const SPLITTABLE = new Set([
  "mget",
  "mset",
  "del",
  "unlink",
  "exists",
  "touch",
  "sinter",
  "sunion",
  "sdiff",
  "zunion",
  "zinter",
  "zdiff",
  "sintercard",
  "pfcount",
]);

const DENIED_REASON = "it acts on a single node, and through a proxy it would damage or confuse the cluster";
/** Refused by default; `deniedCommands` in the proxy config replaces this list. */
export const DEFAULT_DENIED = [
  "cluster",
  "shutdown",
  "debug",
  "failover",
  "replicaof",
  "slaveof",
  "config|set",
  "config|rewrite",
  "config|resetstat",
  "monitor",
  "sync",
  "psync",
  "replconf",
  "module",
  "acl",
  "save",
  "bgsave",
  "bgrewriteaof",
  "swapdb",
  "migrate",
  "restore-asking",
];

function classify(name: string, raw: RawSpec, denied: ReadonlySet<string>): { mode: Mode; reason?: string } {
  const top = name.split("|")[0]!;
  if (denied.has(name) || denied.has(top)) return { mode: Mode.Denied, reason: DENIED_REASON };
  if (LOCAL.has(name)) return { mode: Mode.Local };
  if (ANY_SHARD.has(name)) return { mode: Mode.AnyShard };
  if (SESSION.has(name)) return { mode: Mode.Session };
  if (BROADCAST.has(name)) return { mode: Mode.Broadcast };
  // Blocking commands are keyed too: they ride a connection of their own while they wait.
  if (raw.keyStart > 0 || raw.flags.includes("movablekeys")) return { mode: Mode.Keyed };
  return { mode: Mode.Unsupported, reason: "it needs a cluster-wide answer" };
}

function build(name: string, raw: RawSpec, denied: ReadonlySet<string>): CommandSpec {
  const { mode, reason } = classify(name, raw, denied);
  const spec: CommandSpec = {
    name,
    arity: raw.arity,
    mode,
    keyStart: raw.keyStart,
    keyStop: raw.keyStop,
    step: raw.step,
    movableKeys: raw.flags.includes("movablekeys"),
    readonly: raw.flags.includes("readonly"),
    write: raw.flags.includes("write"),
    blocking: raw.flags.includes("blocking"),
    splittable: SPLITTABLE.has(name),
  };
  if (reason) spec.reason = reason;
  if (raw.subcommands) {
    spec.subcommands = new Map();
    for (const [sub, subRaw] of Object.entries(raw.subcommands)) {
      spec.subcommands.set(sub, build(`${name}|${sub}`, subRaw, denied));
    }
  }
  return spec;
}

export class CommandTable {
  private readonly byName = new Map<string, CommandSpec>();
  /** Specs by a case-folded hash of the name bytes, so a lookup decodes no string (hot path). */
  private readonly byHash = new Map<number, { name: Buffer; spec: CommandSpec }[]>();

  constructor(denied: readonly string[] = DEFAULT_DENIED) {
    const deniedSet = new Set(denied.map((d) => d.toLowerCase()));
    for (const [name, raw] of Object.entries(RAW)) {
      const spec = build(name, raw, deniedSet);
      this.byName.set(name, spec);
      const bytes = Buffer.from(name, "latin1");
      const hash = foldedHash(bytes, 0, bytes.length);
      const bucket = this.byHash.get(hash) ?? [];
      bucket.push({ name: bytes, spec });
      this.byHash.set(hash, bucket);
    }
  }

  /** Looks a command up by the name bytes a client sent, in any letter case. */
  lookup(buf: Buffer, start: number, end: number): CommandSpec | undefined {
    if (end - start > 32) return undefined;
    const bucket = this.byHash.get(foldedHash(buf, start, end));
    if (bucket === undefined) return undefined;
    for (const entry of bucket) if (foldedEqual(entry.name, buf, start, end)) return entry.spec;
    return undefined;
  }

  get(name: string): CommandSpec | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /** Every top-level command, for the command support table. */
  all(): CommandSpec[] {
    return [...this.byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** FNV-1a of the bytes with ASCII letters folded to lower case. */
function foldedHash(buf: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    let b = buf[i]!;
    if (b >= 65 && b <= 90) b += 32;
    hash = Math.imul(hash ^ b, 0x01000193);
  }
  return hash >>> 0;
}

/** `lower` (a lower-case name) equals buf[start..end) ignoring ASCII letter case. */
function foldedEqual(lower: Uint8Array, buf: Uint8Array, start: number, end: number): boolean {
  if (lower.length !== end - start) return false;
  for (let i = 0; i < lower.length; i++) {
    let b = buf[start + i]!;
    if (b >= 65 && b <= 90) b += 32;
    if (b !== lower[i]) return false;
  }
  return true;
}

/** Arity check as Redis does it: positive = exact, negative = at least. */
export function arityOk(spec: CommandSpec, argc: number): boolean {
  return spec.arity >= 0 ? argc === spec.arity : argc >= -spec.arity;
}

/**
 * Key argument indexes of a command whose keys move (EVAL, ZUNIONSTORE, XREAD, SORT...).
 * Rare enough off the hot path to materialise the arguments.
 */
export function movableKeyIndexes(name: string, args: Buffer[]): number[] {
  try {
    // getKeyIndexes counts from the first argument after the name.
    return getKeyIndexes(name, args.slice(1)).map((i) => i + 1);
  } catch {
    return [];
  }
}
