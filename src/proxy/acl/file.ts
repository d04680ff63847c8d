/**
 * A users file in Redis's ACL file format (`aclfile`): one `user <name> <rules...>` line per user,
 * blank lines and `#` comments skipped. `dredis local up --users FILE` reads one into the proxy's
 * `users`; a line that is not a user, a duplicate user or a bad rule names its line.
 */
import { readFile } from "node:fs/promises";
import { DredisError, ErrorCodes } from "../../errors.ts";
import { AclRuleError, parseUser } from "./rules.ts";

export function parseUsersFile(text: string, source: string): Record<string, string> {
  const users: Record<string, string> = {};
  const problems: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `${source}:${i + 1}`;
    const [keyword, name, ...rules] = line.split(/\s+/);
    if (keyword !== "user" || name === undefined) {
      problems.push(`${where}: expected 'user <name> <rules...>', got '${line.slice(0, 60)}'`);
      return;
    }
    if (Object.hasOwn(users, name)) {
      problems.push(`${where}: duplicate user '${name}' (a user can only be defined once)`);
      return;
    }
    const text = rules.join(" ");
    try {
      parseUser(name, text);
    } catch (err) {
      if (!(err instanceof AclRuleError)) throw err;
      problems.push(`${where}: user ${name}: ${err.message}`);
      return;
    }
    users[name] = text;
  });
  if (problems.length > 0)
    throw new DredisError(ErrorCodes.CONFIG, `invalid users file:\n  - ${problems.join("\n  - ")}`);
  return users;
}

/** Reads and checks a users file. */
export async function readUsersFile(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new DredisError(ErrorCodes.CONFIG, `cannot read the users file ${path}: ${(err as Error).message}`);
  }
  return parseUsersFile(text, path);
}
