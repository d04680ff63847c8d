/**
 * Commands the proxy answers as the standalone Redis it presents itself as, where the cluster
 * behind it has nothing to add: CLUSTER's questions (a standalone Redis has cluster support
 * disabled, and clients that probe it use the proxy as a standalone server; the CLUSTER commands
 * that change the cluster stay refused, ./commands.ts), CLIENT REPLY (the proxy writes the replies) and CLIENT NO-EVICT (the proxy evicts no client for memory, so
 * the flag holds whatever its value). Part of the proxy's Local commands (./local-commands.ts).
 */
import { RedisErrors } from "../errors.ts";
import { errorReply, OK } from "../resp/encode.ts";
import type { CommandHandler } from "./command-spec.ts";
import { clientUnblock } from "./client-unblock.ts";

const CLUSTER_SUPPORT_DISABLED = errorReply(RedisErrors.clusterSupportDisabled);
const SYNTAX = errorReply(RedisErrors.syntax);

const clusterDisabled: CommandHandler = (session) => session.reply(CLUSTER_SUPPORT_DISABLED);

export const STANDALONE_COMMANDS = {
  "cluster|count-failure-reports": clusterDisabled,
  "cluster|countkeysinslot": clusterDisabled,
  "cluster|getkeysinslot": clusterDisabled,
  "cluster|help": clusterDisabled,
  "cluster|info": clusterDisabled,
  "cluster|keyslot": clusterDisabled,
  "cluster|links": clusterDisabled,
  "cluster|myid": clusterDisabled,
  "cluster|myshardid": clusterDisabled,
  "cluster|nodes": clusterDisabled,
  "cluster|replicas": clusterDisabled,
  "cluster|shards": clusterDisabled,
  "cluster|slaves": clusterDisabled,
  "cluster|slot-stats": clusterDisabled,
  "cluster|slots": clusterDisabled,
  // The proxy writes every reply, so it drops them itself; Pub/Sub messages still go out, as on Redis.
  "client|reply": (session, view) => {
    const mode = view.arg(2).toLowerCase();
    if (mode !== "on" && mode !== "off" && mode !== "skip") return session.reply(SYNTAX);
    session.setReplyMode(mode);
    session.reply(OK);
  },
  "client|unblock": clientUnblock,
  "client|no-evict": (session, view) => {
    const value = view.arg(2).toLowerCase();
    session.reply(value === "on" || value === "off" ? OK : SYNTAX);
  },
} satisfies Record<string, CommandHandler>;
