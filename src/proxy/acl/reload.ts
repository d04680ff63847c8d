/**
 * A config reload's new users on a running worker: new AUTHs check them at once, and each
 * connected client runs as its user's new rules from its next command (Redis applies ACL SETUSER
 * to connected clients too). A client whose user was removed is disconnected, as ACL DELUSER does,
 * and so is a subscribed one whose user's channels changed: Redis drops those that lost a channel
 * they listen on, and the proxy, which passes subscriptions through, does not know which they are.
 */
import type { LiveConfig } from "../config.ts";
import type { ProxyContext } from "../context.ts";
import type { AclUser } from "./rules.ts";
import { AclUsers } from "./users.ts";

/** Whether every selector of the two users allows the same channels. */
function sameChannels(before: AclUser, after: AclUser): boolean {
  const channels = (user: AclUser) => JSON.stringify(user.selectors.map((s) => s.describeChannels()));
  return channels(before) === channels(after);
}

export function reloadUsers(context: ProxyContext, live: LiveConfig): void {
  context.acl = AclUsers.fromConfig(live.users, live.clientPassword, live.previousClientPassword);
  for (const client of context.clients) {
    const user = context.acl.get(client.aclUser.name);
    if (user === undefined || (client.pubsub.active && !sameChannels(client.aclUser, user))) client.destroy();
    else client.aclUser = user;
  }
}
