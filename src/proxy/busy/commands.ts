/**
 * The commands the busy proxy runs: every command the worker may send it (`SPLITTABLE_COMMANDS`
 * and `BROADCAST_COMMANDS` in ../commands.ts), each with the handler that splits or broadcasts,
 * fans out and merges it. The record's keys are those names, so a command without a handler, or
 * a handler for a command the worker never sends, does not compile. Subcommands are named as
 * Redis names them ("script|load").
 */
import type { BroadcastName, SplittableName } from "../commands.ts";
import { SHARD_INFO } from "../command-spec.ts";
import type { BusyHandler } from "./handler.ts";
import { CLUSTER_WIDE_COMMANDS } from "./cluster-wide.ts";
import { UNBLOCK_ON_NODE } from "../client-unblock.ts";
import { ADMIN_COMMANDS, unblockOnNode } from "./admin-commands.ts";
import { CONFIG_COMMANDS } from "./config.ts";
import { pfcount } from "./hyperloglog.ts";
import { shardInfo } from "./info.ts";
import { scan } from "./scan.ts";
import { declined } from "./split-commands.ts";
import { sdiff, sinter, sintercard, sunion } from "./set-algebra.ts";
import { zdiff, zinter, zunion } from "./sorted-set-algebra.ts";

export type { BusyContext, BusyHandler } from "./handler.ts";

const HANDLERS: Record<
  SplittableName | BroadcastName | typeof SHARD_INFO | typeof UNBLOCK_ON_NODE,
  BusyHandler
> = {
  // Split in ./key-split.ts, before handlers are looked up; these only word what it declines.
  mget: declined,
  mset: declined,
  del: declined,
  unlink: declined,
  exists: declined,
  touch: declined,
  sinter,
  sunion,
  sdiff,
  sintercard,
  zunion,
  zinter,
  zdiff,
  pfcount,
  scan,
  [SHARD_INFO]: shardInfo,
  [UNBLOCK_ON_NODE]: unblockOnNode,
  ...CLUSTER_WIDE_COMMANDS,
  ...CONFIG_COMMANDS,
  ...ADMIN_COMMANDS,
};

export const BUSY_COMMANDS: ReadonlyMap<string, BusyHandler> = new Map(Object.entries(HANDLERS));

/** Commands only workers send (not Redis commands, so not in the command table). */
export const INTERNAL_COMMANDS: ReadonlySet<string> = new Set([SHARD_INFO, UNBLOCK_ON_NODE]);
