/**
 * The `users` field of the proxy config: user name to rules in Redis's ACL syntax, e.g.
 *
 *   users:
 *     app: "on #<sha256 of the password> ~app:* &events:* +@read +@write -@dangerous"
 *     ops: "on >plaintext-is-hashed-at-load ~* &* +@all -@dangerous"
 *     default: "off"
 *
 * Each user starts as `ACL SETUSER <name>` makes a new one (off, no passwords, no keys, no
 * channels, no commands) and takes its rules in order. Without a `default` entry the default user
 * may run everything and needs `clientPassword` (or nothing, when that is unset), as without ACLs.
 */
import { z } from "zod";
import { AclRuleError, parseUser } from "./rules.ts";

export const aclUsersSchema = z.record(z.string(), z.string()).superRefine((users, ctx) => {
  for (const [name, rules] of Object.entries(users)) {
    try {
      parseUser(name, rules);
    } catch (err) {
      if (!(err instanceof AclRuleError)) throw err;
      ctx.addIssue({ code: "custom", path: [name], message: err.message });
    }
  }
});

export { aclConfigProblem } from "./config-problem.ts";
