/**
 * The check between the ACL fields of the proxy config, apart from ./config.ts: the workers run it
 * on every users reload, and ./config.ts's schema needs zod, which a worker must not load (about
 * 7 MB of RSS in each process; bench/results/memory.md).
 */
/** A problem between fields, or undefined. */
export function aclConfigProblem(config: {
  users?: Record<string, string> | undefined;
  clientPassword?: string | undefined;
  previousClientPassword?: string | undefined;
}): string | undefined {
  if (config.previousClientPassword !== undefined && config.clientPassword === undefined)
    return (
      "previousClientPassword is set without clientPassword: it is the default user's password before " +
      "clientPassword, during a rotation (with users.default, give that user both passwords: '>new >old')"
    );
  if (config.users?.default !== undefined && config.clientPassword !== undefined) {
    return (
      "clientPassword and users.default both set the default user's password: put it in users.default " +
      "('>password' or '#<sha256>') and remove clientPassword, or drop users.default to keep clientPassword"
    );
  }
  return undefined;
}
