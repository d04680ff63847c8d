/**
 * The catalogue of errors distributed-redis raises, in one place.
 *
 * Errors a Redis client sees carry the exact text Redis itself would send, so client libraries
 * and people recognise them. Errors an operator sees (configuration, missing tools) say what is
 * wrong and how to fix it.
 */

/** An error an operator must act on: bad configuration, a missing tool, an unsafe request. */
export class DredisError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "DredisError";
  }
}

export const missingTool = (tool: string, debianPackage: string): DredisError =>
  new DredisError(
    "E_MISSING_TOOL",
    `${tool} was not found on PATH. Install it with: sudo apt-get install ${debianPackage} ` +
      `(or run: npm run setup, as root on Debian)`,
  );

/** Texts Redis sends, byte for byte (without the leading '-' and trailing CRLF). */
export const RedisErrors = {
  crossSlot: "CROSSSLOT Keys in request don't hash to the same slot",
  selectInCluster: "ERR SELECT is not allowed in cluster mode",
  noAuthConfigured:
    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
  wrongPass: "WRONGPASS invalid username-password pair or user is disabled.",
  noAuth: "NOAUTH Authentication required.",
  noProto: "NOPROTO unsupported protocol version",
  clusterDown: "CLUSTERDOWN The cluster is down",
  protocol: {
    tooBigMultibulkCount: "ERR Protocol error: too big mbulk count string",
    invalidMultibulkLength: "ERR Protocol error: invalid multibulk length",
    tooBigBulkCount: "ERR Protocol error: too big bulk count string",
    invalidBulkLength: "ERR Protocol error: invalid bulk length",
    tooBigInline: "ERR Protocol error: too big inline request",
    unbalancedQuotes: "ERR Protocol error: unbalanced quotes in request",
    expectedDollar: (got: string) => `ERR Protocol error: expected '$', got '${got}'`,
    /** Redis skips the two bytes after a bulk without looking; a proxy that forwards bytes must not. */
    expectedCrlf: "ERR Protocol error: expected CRLF after bulk data",
  },
  wrongArity: (name: string) => `ERR wrong number of arguments for '${name}' command`,
  unknownSubcommand: (sub: string, name: string) =>
    `ERR unknown subcommand '${truncate(sub, 128)}'. Try ${name.toUpperCase()} HELP.`,
} as const;

/** Redis's wording for an unknown command, including its quirks (quoted args, trailing space, 128-byte caps). */
export function unknownCommand(name: string, args: readonly string[]): string {
  let list = "";
  for (const arg of args) {
    if (list.length >= 128) break;
    list += `'${truncate(arg, 128 - list.length)}' `;
  }
  return sanitize(`ERR unknown command '${truncate(name, 128)}', with args beginning with: ${list}`);
}

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n) : s;
}

/** Redis replaces CR and LF in error texts with spaces so a reply stays one line. */
function sanitize(s: string): string {
  return s.replace(/[\r\n]/g, " ");
}

// --- Roll, day-2 changes and the local platform (issue 12, area "roll") ---

/** `local up` over a directory that holds a cluster of another shape. */
export const E_LOCAL_SHAPE = "E_LOCAL_SHAPE";
/** A redis.conf setting that Redis refuses to change while it runs: it needs a roll. */
export const E_NEEDS_RESTART = "E_NEEDS_RESTART";
/** A setting name Redis does not know, or a malformed `key=value`. */
export const E_SETTING = "E_SETTING";
/** A roll or handover step that did not finish in time (the cluster is left as it was at that step). */
export const E_ROLL = "E_ROLL";
