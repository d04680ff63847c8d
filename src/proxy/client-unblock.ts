/**
 * CLIENT UNBLOCK id [TIMEOUT|ERROR] for a client of this worker: its blocking command waits on a
 * connection of the proxy's own to a shard node, so the busy proxy finds that connection on the
 * node (CLIENT LIST, by this end's address) and unblocks it there (CLIENT UNBLOCK). The node then
 * answers the blocked command as Redis does (a timeout's null, or -UNBLOCKED), and that answer
 * goes to the blocked client as any reply; nothing is lost that the node had already served.
 */
import { AdminErrors, ProxyErrors, RedisErrors } from "../errors.ts";
import { errorReply, integerReply } from "../resp/encode.ts";
import { encodeCommand, parseInteger } from "../resp/request-parser.ts";
import type { CommandHandler } from "./command-spec.ts";

/** The internal command a worker sends the busy proxy: `dredis.unblock node local-address reason`. */
export const UNBLOCK_ON_NODE = "dredis.unblock";

export const clientUnblock: CommandHandler = (session, view) => {
  const id = parseInteger(view.buf, view.argStart(2), view.argEnd(2));
  if (id === null) return session.reply(errorReply(RedisErrors.notInteger));
  let reason = "TIMEOUT";
  if (view.argc === 4) {
    reason = view.arg(3).toUpperCase();
    if (reason !== "TIMEOUT" && reason !== "ERROR")
      return session.reply(errorReply(AdminErrors.unblockReason));
  }
  // Client ids are per worker: a client of another worker is not found, as Redis answers for no client.
  let blocked = null;
  for (const client of session.context.clients) if (client.id === id) blocked = client.blockedOn();
  if (blocked === null) return session.reply(integerReply(0));
  if (!session.hasBusyProxy) return session.reply(errorReply(ProxyErrors.needsBusyProxy("client|unblock")));
  session.toBusyProxy(encodeCommand([UNBLOCK_ON_NODE, blocked.node, blocked.localAddress, reason]), false);
};
