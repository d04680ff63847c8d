/**
 * A config reload's new users on a running worker: new AUTHs check them at once, and each
 * connected client runs as its user's new rules from its next command (Redis applies ACL SETUSER
 * to connected clients too). A client whose user was removed is disconnected, as ACL DELUSER does.
 */
import type { LiveConfig } from "../config.ts";
import type { ProxyContext } from "../context.ts";
import { AclUsers } from "./users.ts";

export function reloadUsers(context: ProxyContext, live: LiveConfig): void {
  context.acl = AclUsers.fromConfig(live.users, live.clientPassword);
  for (const client of context.clients) {
    const user = context.acl.get(client.aclUser.name);
    if (user === undefined) client.destroy();
    else client.aclUser = user;
  }
}
