/**
 * Checks a worker makes on a cluster-wide command before handing it to the busy proxy, so a
 * refusal that needs no node is answered at once (and also by a proxy that runs without a busy
 * proxy). The busy proxy's handlers (./busy/config.ts) check again, fully.
 */
import { ConfigErrors, ProxyErrors } from "../errors.ts";
import { isClusterWide, knownRefusal } from "../cluster/cluster-config.ts";
import { errorReply } from "../resp/encode.ts";
import type { CommandHandler } from "./command-spec.ts";

export const BROADCAST_CHECKS = {
  /** A parameter refused by name (port, dir, requirepass...), unless an earlier one may be unknown to Redis. */
  "config|set": (session, view, spec) => {
    // An odd count is Redis's syntax error, before any name is looked at: the nodes word it.
    for (let i = 2; view.argc % 2 === 0 && i < view.argc; i += 2) {
      const name = view.arg(i);
      if (isClusterWide(name)) continue;
      const reason = knownRefusal(name);
      if (reason !== undefined) return session.reply(errorReply(ConfigErrors.refused(name, reason)));
      break;
    }
    if (!session.hasBusyProxy) return session.reply(errorReply(ProxyErrors.needsBusyProxy(spec.name)));
    session.toBusyProxy(view.frame(), spec.readonly);
  },
} satisfies Record<string, CommandHandler>;
