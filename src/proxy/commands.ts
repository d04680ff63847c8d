/**
 * The proxy's command table: for every Redis command, how the proxy runs it and where its keys are.
 *
 * Arity and key positions come from @ioredis/commands (generated from Redis's own COMMAND output);
 * this file adds the proxy's decision per command: its mode, and for the commands the session runs
 * itself, its handler. Those commands are the keys of their handlers' records (./local-commands.ts,
 * ./transaction.ts, ./pubsub.ts), so adding one is one entry there; the busy proxy's handlers are
 * keyed by `BROADCAST_COMMANDS` and `SPLITTABLE_COMMANDS` (./busy/commands.ts). Lookups by name are
 * case-insensitive and allocation-free for the names clients actually send (all-lower or all-upper
 * case).
 */
import { createRequire } from "node:module";
import { Mode, type CommandHandler, type CommandSpec } from "./command-spec.ts";
import { BROADCAST_CHECKS } from "./config-check.ts";
import { LOCAL_COMMANDS } from "./local-commands.ts";
import { MONITOR_COMMANDS } from "./monitor.ts";
import { PUBSUB_COMMANDS } from "./pubsub.ts";
import { deniedReason, unsupportedReason } from "./refusals.ts";
import { TRANSACTION_COMMANDS } from "./transaction.ts";

export { arityOk, Mode, type CommandSpec } from "./command-spec.ts";

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

/**
 * Commands the session runs itself, each name with its handler: answered by the proxy (Local),
 * or changing the client's session (Session: transactions and subscriptions). A command is Local
 * or Session because it has a handler here, so none lacks one; test/proxy/command-registry.test.ts
 * fails on a handler whose name is no command of that mode.
 */
export const LOCAL: Readonly<Record<LocalName, CommandHandler>> = LOCAL_COMMANDS;
export const SESSION: Readonly<Record<SessionName, CommandHandler>> = {
  ...TRANSACTION_COMMANDS,
  ...PUBSUB_COMMANDS,
  ...MONITOR_COMMANDS,
};
export type LocalName = keyof typeof LOCAL_COMMANDS;
export type SessionName =
  keyof typeof TRANSACTION_COMMANDS | keyof typeof PUBSUB_COMMANDS | keyof typeof MONITOR_COMMANDS;

/** Keyless commands any master answers as the whole cluster would. */
const ANY_SHARD = new Set([
  "time",
  "lolwut",
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
  // Modules are loaded from the nodes' redis.conf, the same on every node.
  "module|list",
  "module|help",
  // Help texts of newer Redis releases' commands; shards without them answer Redis's unknown-command error.
  "backup|help",
  "hotkeys|help",
]);

/**
 * Keyless commands with a cluster-wide meaning, run by the busy proxy on every master (see
 * ./busy/cluster-wide.ts for how each reply is merged).
 */
export const BROADCAST_COMMANDS = [
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
  // Config (./busy/config.ts): on every node, masters and replicas.
  "config|set",
  "config|resetstat",
  "config|rewrite",
  // Administration (./busy/admin-commands.ts): every master, merged.
  "script|kill",
  "function|kill",
  "function|stats",
  "client|pause",
  "client|unpause",
  "memory|purge",
  "memory|stats",
  "memory|doctor",
  "memory|malloc-stats",
  "latency|doctor",
  "latency|graph",
  "latency|histogram",
  "save",
  "bgsave",
  "bgrewriteaof",
  "lastsave",
  "waitaof",
] as const;
export type BroadcastName = (typeof BROADCAST_COMMANDS)[number];
export const BROADCAST: ReadonlySet<string> = new Set(BROADCAST_COMMANDS);

/** Multi-key commands the busy proxy runs across slots (see `CommandSpec.splittable`). */
export const SPLITTABLE_COMMANDS = [
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
] as const;
export type SplittableName = (typeof SPLITTABLE_COMMANDS)[number];
export const SPLITTABLE: ReadonlySet<string> = new Set(SPLITTABLE_COMMANDS);

/** Refused by default; `deniedCommands` in the proxy config replaces this list. */
export const DEFAULT_DENIED = [
  // CLUSTER's changes; its questions are answered as a standalone Redis does (./standalone-commands.ts).
  "cluster|addslots",
  "cluster|addslotsrange",
  "cluster|bumpepoch",
  "cluster|delslots",
  "cluster|delslotsrange",
  "cluster|failover",
  "cluster|flushslots",
  "cluster|forget",
  "cluster|meet",
  "cluster|migration",
  "cluster|replicate",
  "cluster|reset",
  "cluster|saveconfig",
  "cluster|set-config-epoch",
  "cluster|setslot",
  "cluster|syncslots",
  "shutdown",
  "debug",
  "failover",
  "replicaof",
  "slaveof",
  "sync",
  "psync",
  "replconf",
  "module|load",
  "module|loadex",
  "module|unload",
  // acl: the proxy answers ACL from its own users (./acl/session.ts); these would change them.
  "acl|setuser",
  "acl|deluser",
  "acl|load",
  "acl|save",
  "acl|log",
  "swapdb",
  "migrate",
  "restore-asking",
];

function classify(
  name: string,
  raw: RawSpec,
  denied: ReadonlySet<string>,
): { mode: Mode; reason?: string; handler?: CommandHandler } {
  const top = name.split("|")[0]!;
  if (denied.has(name) || denied.has(top)) return { mode: Mode.Denied, reason: deniedReason(name) };
  if (Object.hasOwn(LOCAL, name)) return { mode: Mode.Local, handler: LOCAL[name as LocalName] };
  if (ANY_SHARD.has(name)) return { mode: Mode.AnyShard };
  if (Object.hasOwn(SESSION, name)) return { mode: Mode.Session, handler: SESSION[name as SessionName] };
  if (BROADCAST.has(name)) return { mode: Mode.Broadcast };
  // Blocking commands are keyed too: they ride a connection of their own while they wait.
  if (raw.keyStart > 0 || raw.flags.includes("movablekeys")) return { mode: Mode.Keyed };
  return { mode: Mode.Unsupported, reason: unsupportedReason(name) };
}

/**
 * PUBLISH goes to the master of its channel's slot, where the channel's subscribers of the whole
 * fleet live (./pubsub.ts): its count is then the one a single Redis gives.
 */
const ROUTED_BY_CHANNEL: Record<string, Pick<RawSpec, "keyStart" | "keyStop" | "step">> = {
  publish: { keyStart: 1, keyStop: 1, step: 1 },
};

function build(name: string, command: RawSpec, denied: ReadonlySet<string>): CommandSpec {
  const raw = Object.hasOwn(ROUTED_BY_CHANNEL, name) ? { ...command, ...ROUTED_BY_CHANNEL[name] } : command;
  const { mode, reason, handler } = classify(name, raw, denied);
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
  // Checked in the worker first (./config-check.ts), so a refusal needs no busy proxy.
  if (mode === Mode.Broadcast && Object.hasOwn(BROADCAST_CHECKS, name))
    spec.check = BROADCAST_CHECKS[name as keyof typeof BROADCAST_CHECKS];
  if (handler) spec.handler = handler;
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
