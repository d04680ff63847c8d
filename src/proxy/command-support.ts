/**
 * The command support table (docs/commands.md), rendered from the command table itself, so the
 * documentation says what the code does. `npm run docs:commands` writes it; a test fails when the
 * committed file and the code disagree.
 */
import { CommandTable, Mode, type CommandSpec } from "./commands.ts";
import { lostGuarantee } from "./busy/emulate-commands.ts";

const HOW: Record<Mode, string> = {
  [Mode.Keyed]: "routed by slot",
  [Mode.AnyShard]: "any shard",
  [Mode.Local]: "answered by the proxy",
  [Mode.Session]: "session (pinned connection)",
  [Mode.Broadcast]: "broadcast by the busy proxy",
  [Mode.Denied]: "refused",
  [Mode.Unsupported]: "not supported",
};

/** Where a command's row needs more than its mode's words (config and admin commands, issue 13). */
const NOTES: Readonly<Record<string, string>> = {
  "config|set":
    "on every node, masters and replicas, all or nothing, for the cluster-wide parameters (docs/config.md); others refused with the reason",
  "config|resetstat": "on every node, masters and replicas",
  "config|rewrite": "on every node, masters and replicas",
  lastsave: "runs on every master; the oldest master's save",
  "script|kill": "runs on every master; stops the script wherever one runs",
  "function|kill": "runs on every master; stops the function wherever one runs",
  "client|reply": "the proxy writes the replies, so it drops them itself (Pub/Sub messages still go out)",
  select:
    "per client, on Valkey 9 shards with cluster-databases > 1 (connections per node and database); else SELECT 0 only, as a cluster node answers",
  // Client-side caching (src/proxy/tracking/).
  "client|tracking":
    "invalidations for writes made anywhere (any worker, host, or on a shard) come from the shards to the worker; default, BCAST/PREFIX, OPTIN, OPTOUT; NOLOOP also reports the client's own writes; REDIRECT within one worker",
  "client|caching": "the proxy's own view: OPTIN/OPTOUT decide which reads it reports",
  "client|getredir": "the proxy's own view",
  "client|trackinginfo": "the proxy's own view",
};

function why(spec: CommandSpec): string {
  const note = NOTES[spec.name];
  if (note !== undefined) return note;
  switch (spec.mode) {
    case Mode.Keyed:
      if (spec.splittable) return "keys on several slots are split by the busy proxy, replies merged";
      if (lostGuarantee(spec.name) !== undefined)
        return `to the master of its keys' slot; keys on several slots: CROSSSLOT, or with \`crossSlot: emulate\` run by the busy proxy, ${lostGuarantee(spec.name)}`;
      if (spec.blocking && (spec.movableKeys || spec.keyStop !== spec.keyStart))
        return "to the master of its keys' slot, on a connection of its own while it blocks; keys on several slots: CROSSSLOT, also with `crossSlot: emulate` (a wait on several shards cannot be atomic)";
      if (spec.blocking) return "to the master of its keys' slot, on a connection of its own while it blocks";
      return "to the master of its keys' slot; keys must share one slot (else CROSSSLOT)";
    case Mode.AnyShard:
      return "every master gives the same answer";
    case Mode.Local:
      return "the proxy's own standalone view";
    case Mode.Session:
      return "transactions and subscriptions hold their own shard connection";
    case Mode.Broadcast:
      return "runs on every master; replies merged (summed, united or checked to agree)";
    case Mode.Denied:
    case Mode.Unsupported:
      return spec.reason ?? "";
  }
}

function row(spec: CommandSpec): string {
  const how = spec.splittable ? "routed by slot, split by the busy proxy" : HOW[spec.mode];
  return `| \`${spec.name.replace("|", " ").toUpperCase()}\` | ${how} | ${why(spec)} |`;
}

/** The Markdown document: every command of @ioredis/commands (and each subcommand) with how the proxy runs it. */
export function renderCommandSupport(table = new CommandTable()): string {
  const lines = [
    "# Command support",
    "",
    "Generated from `src/proxy/commands.ts` by `npm run docs:commands`; do not edit by hand.",
    "How the proxy runs each Redis command (default deny list).",
    "",
    "| Command | How | Why |",
    "|---|---|---|",
  ];
  for (const spec of table.all()) {
    if (spec.subcommands === undefined) lines.push(row(spec));
    else
      for (const sub of [...spec.subcommands.values()].sort((a, b) => a.name.localeCompare(b.name)))
        lines.push(row(sub));
  }
  return lines.join("\n") + "\n";
}
