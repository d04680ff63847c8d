/**
 * The catalogue of errors distributed-redis raises, in one place (as fastify's `lib/errors.js`).
 *
 * - `ErrorCodes`: the code of every `DredisError`, an error an operator sees (configuration,
 *   missing tools, an unsafe request). Its message says what is wrong and how to fix it. Throw
 *   with a named code (`ErrorCodes.CONFIG`): the compiler refuses a code that is not listed here.
 * - `RedisErrors`: error replies a Redis client sees that Redis itself sends, byte for byte, so
 *   client libraries and people recognise them.
 * - `ProxyErrors`: error replies only this proxy sends (what it refuses, what failed across shards),
 *   worded in Redis's style.
 *
 * Reply texts are without the leading '-' and trailing CRLF (`errorReply()` adds them).
 */

/** Codes of the errors an operator acts on, by area. */
export const ErrorCodes = {
  // Configuration and arguments.
  CONFIG: "E_CONFIG",
  TOPOLOGY: "E_TOPOLOGY",
  ADDRESS: "E_ADDRESS",
  MEMORY_SIZE: "E_MEMORY_SIZE",
  HAPROXY_ARGS: "E_HAPROXY_ARGS",
  KEEPALIVED_ARGS: "E_KEEPALIVED_ARGS",
  HEALTH_CHECK_ARGS: "E_HEALTH_CHECK_ARGS",
  SHARD_ENTRYPOINT_ARGS: "E_SHARD_ENTRYPOINT_ARGS",
  // Tools and processes.
  MISSING_TOOL: "E_MISSING_TOOL",
  INTERRUPTED: "E_INTERRUPTED",
  LEADER_ELECTION: "E_LEADER_ELECTION",
  // Cluster administration.
  GATE: "E_GATE",
  UNSAFE_CHANGE: "E_UNSAFE_CHANGE",
  APPLY_INCOMPLETE: "E_APPLY_INCOMPLETE",
  NOT_CONVERGED: "E_NOT_CONVERGED",
  NOT_DRAINED: "E_NOT_DRAINED",
  REPLICATE: "E_REPLICATE",
  MIGRATE: "E_MIGRATE",
  NO_SUCH_SHARD: "E_NO_SUCH_SHARD",
  LAST_SHARD: "E_LAST_SHARD",
  // The local platform.
  LOCAL_ARGS: "E_LOCAL_ARGS",
  LOCAL_RUNNING: "E_LOCAL_RUNNING",
  LOCAL_NOT_RUNNING: "E_LOCAL_NOT_RUNNING",
  RUNNING: "E_RUNNING",
  REDIS_START: "E_REDIS_START",
  PROXY_START: "E_PROXY_START",
  /** The proxy host refused its re-read config, or did not re-read it in time (SIGHUP). */
  PROXY_RELOAD: "E_PROXY_RELOAD",
  PORT_IN_USE: "E_PORT_IN_USE",
  NO_PORT: "E_NO_PORT",
  /** `local up` over a directory that holds a cluster of another shape. */
  LOCAL_SHAPE: "E_LOCAL_SHAPE",
  // Day-2 changes.
  /** A redis.conf setting that Redis refuses to change while it runs: it needs a roll. */
  NEEDS_RESTART: "E_NEEDS_RESTART",
  /** A setting name Redis does not know, or a malformed `key=value`. */
  SETTING: "E_SETTING",
  /** A roll or handover step that did not finish in time (the cluster is left as it was at that step). */
  ROLL: "E_ROLL",
  // TLS (src/tls/).
  /** A TLS setting whose files are missing or do not make a certificate, key and CA. */
  TLS_CONFIG: "E_TLS_CONFIG",
  /** Making a certificate (openssl) failed. */
  TLS_CERTIFICATE: "E_TLS_CERTIFICATE",
  // Shard engines (valkey, issue 16).
  /** The engine's server binary (valkey-server 9+) is not installed. */
  ENGINE_MISSING: "E_ENGINE_MISSING",
  /** `local up --engine` differs from the engine of the directory's nodes. */
  LOCAL_ENGINE: "E_LOCAL_ENGINE",
  // Atomic slot migration (issue 16 items 3-4, src/cluster/admin/atomic-migrate.ts).
  /** `--slot-migration atomic` on a cluster where some node has no MIGRATESLOTS. */
  ATOMIC_UNSUPPORTED: "E_ATOMIC_UNSUPPORTED",
  /** A MIGRATESLOTS job refused, or failed more often than allowed, or stuck. */
  ATOMIC_MIGRATION: "E_ATOMIC_MIGRATION",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** An error an operator must act on: bad configuration, a missing tool, an unsafe request. */
export class DredisError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "DredisError";
  }
}

export const missingTool = (tool: string, debianPackage: string): DredisError =>
  new DredisError(
    ErrorCodes.MISSING_TOOL,
    `${tool} was not found on PATH. Install it with: sudo apt-get install ${debianPackage} ` +
      `(or run: npm run setup, as root on Debian)`,
  );

/** Texts Redis sends, byte for byte. */
export const RedisErrors = {
  crossSlot: "CROSSSLOT Keys in request don't hash to the same slot",
  selectInCluster: "ERR SELECT is not allowed in cluster mode",
  noAuthConfigured:
    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
  wrongPass: "WRONGPASS invalid username-password pair or user is disabled.",
  noAuth: "NOAUTH Authentication required.",
  noProto: "NOPROTO unsupported protocol version",
  clusterDown: "CLUSTERDOWN The cluster is down",
  maxClients: "ERR max number of clients reached",
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
  syntax: "ERR syntax error",
  notInteger: "ERR value is not an integer or out of range",
  notFloat: "ERR weight value is not a float",
  // Connection and session.
  protocolVersionNotInteger: "ERR Protocol version is not an integer or out of range",
  helloOption: (option: string) => `ERR Syntax error in HELLO option '${option}'`,
  /** Redis 7.2 added `<proto>` to the text. */
  helloNoAuth: (v72: boolean) =>
    `NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO ${v72 ? "<proto> " : ""}AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time`,
  clusterSupportDisabled: "ERR This instance has cluster support disabled",
  clientNameChars: "ERR Client names cannot contain spaces, newlines or special characters.",
  clientInfoChars: (attr: string) => `ERR ${attr} cannot contain spaces, newlines or special characters.`,
  unrecognizedOption: (option: string) => `ERR Unrecognized option '${option}'`,
  unknownClientType: (type: string) => `ERR Unknown client type '${type}'`,
  noSuchClient: "ERR No such client",
  subscribedContext: (name: string) =>
    `ERR Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
  // Transactions.
  execAbort: "EXECABORT Transaction discarded because of previous errors.",
  multiNested: "ERR MULTI calls can not be nested",
  execWithoutMulti: "ERR EXEC without MULTI",
  discardWithoutMulti: "ERR DISCARD without MULTI",
  watchInsideMulti: "ERR WATCH inside MULTI is not allowed",
  // Multi-key commands the busy proxy runs.
  notHyperLogLog: "WRONGTYPE Key is not a valid HyperLogLog string value.",
  numkeysPositive: "ERR numkeys should be greater than 0",
  numkeysOverArgs: "ERR Number of keys can't be greater than number of args",
  limitNegative: "ERR LIMIT can't be negative",
  inputKeyNeeded: (name: string) => `ERR at least 1 input key is needed for '${name}' command`,
  countAtLeastMinusOne: "ERR count should be greater than or equal to -1",
  invalidCursor: "ERR invalid cursor",
} as const;

/** Texts only this proxy sends. */
export const ProxyErrors = {
  notInMultiThroughProxy: (name: string) =>
    `ERR command '${name}' is not allowed inside MULTI through this proxy`,
  notInMulti: (name: string) => `ERR command '${name}' is not allowed inside MULTI`,
  broadcastInMulti: (name: string) =>
    `ERR command '${name}' runs on every shard and is not allowed inside MULTI`,
  noMasterForSlot: (slot: number) => `CLUSTERDOWN no master serves slot ${slot}`,
  needsBusyProxy: (name: string) =>
    `ERR command '${name}' needs the busy proxy (it runs on every shard), and this proxy runs without one`,
  disabled: (name: string, reason: string | undefined) =>
    `ERR command '${name}' is disabled on this proxy: ${reason}`,
  notSupported: (name: string, reason: string | undefined) =>
    `ERR command '${name}' is not supported through this proxy yet: ${reason}`,
  // The busy proxy.
  busyFailed: (message: string) => `ERR busy proxy failed to run the command: ${message}`,
  notForBusyProxy: (name: string) =>
    `ERR the busy proxy runs only multi-key commands split across slots and cluster-wide commands, not '${truncate(name, 128)}'`,
  noMasterKnown: "CLUSTERDOWN no master of the cluster is known yet",
  unreadableShardReply: (message: string) => `ERR unreadable reply from the shard: ${message}`,
  /** A part of a split command failed; `applied` warns that a write's other parts may have run. */
  failedOnSlot: (command: string, slot: number, applied: string, message: string) =>
    `ERR ${command} failed on slot ${slot}${applied}: ${message}`,
  unexpectedFromSlot: (command: string, slot: number) =>
    `ERR ${command} got an unexpected reply from slot ${slot}`,
  failedOnShard: (command: string, address: string, message: string) =>
    `ERR ${command} failed on shard ${address}: ${message}`,
  shardsDisagree: (command: string, shown: string) =>
    `ERR ${command} gave different answers on different shards: ${shown}`,
  unexpectedFromShard: (command: string) => `ERR ${command} got an unexpected reply from a shard`,
  scanSlotUnreadable: (slot: number, failure: string | null) =>
    `ERR SCAN could not read slot ${slot} from a node that serves it${failure ? ` (${failure})` : ""}`,
  /** Not a reply: the reason scanSlotUnreadable quotes. */
  unexpectedSlotRead: "unexpected reply to a slot read",
  // crossSlot: emulate (src/proxy/busy/emulate*.ts).
  emulatedSourceNotUpdated: (command: string, slot: number, message: string) =>
    `ERR ${command} wrote the destination but could not update the source on slot ${slot}: ${message}`,
  crossSlotBlocking: (name: string) =>
    `CROSSSLOT Keys in request don't hash to the same slot ('${name}' blocks, and crossSlot: emulate runs only non-blocking commands across slots; put its keys in one slot with a hash tag)`,
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

// Router and busy link (src/proxy/router.ts, src/proxy/upstream/, src/proxy/busy-link.ts): texts a
// client sees when the shard side cannot answer. CLUSTERDOWN where waiting longer may help.
export const UpstreamErrors = {
  shardUnavailable: (what: string, owner: string | undefined, budgetMs: number) =>
    `CLUSTERDOWN no reachable master serves ${what}${owner ? ` (${owner} is not answering)` : ""}; ` +
    `retried for ${budgetMs} ms`,
  busyProxyUnavailable: (budgetMs: number) =>
    `CLUSTERDOWN the busy proxy (multi-key commands across slots) is not answering; retried for ${budgetMs} ms`,
  connectionLost: (peer: string, reason: string) =>
    `ERR connection to ${peer} was lost before it replied (${reason}); the command may or may not have run`,
  watchedConnectionLost: "ERR the connection this transaction watched on was lost",
  shuttingDown: "ERR proxy is shutting down",
} as const;

// Config (CONFIG SET/RESETSTAT/REWRITE through the proxy on every node, src/proxy/busy/config.ts).
export const ConfigErrors = {
  /** Redis's own text for a parameter it does not know. */
  unknownParameter: (name: string) =>
    `ERR Unknown option or number of arguments for CONFIG SET - '${sanitize(name)}'`,
  /** Worded as every refused command is (ProxyErrors.disabled), so clients match one text. */
  refused: (name: string, reason: string) =>
    `ERR command 'config|set' is disabled on this proxy: parameter '${truncate(name, 128)}' cannot be set through it because ${reason}`,
  nodeNotOnline: (command: string, address: string, health: string) =>
    `ERR ${command} needs every node of the cluster, and ${address} is marked ${health}; nothing was changed`,
  rewriteFailed: (address: string, message: string) =>
    `ERR CONFIG SET was undone on every node: CONFIG REWRITE failed on ${address} (${message})`,
} as const;

// ACL users at the proxy (src/proxy/acl/): Redis's texts, by the version the proxy presents (the
// shards'): 7.0 and 7.2 changed the NOPERM and ACL DRYRUN wordings.
export const AclErrors = {
  noPermCommand: (name: string, user: string, v72: boolean) =>
    v72
      ? `NOPERM User ${user} has no permissions to run the '${name}' command`
      : `NOPERM this user has no permissions to run the '${name}' command`,
  noPermKey: (v72: boolean) =>
    v72
      ? "NOPERM No permissions to access a key"
      : "NOPERM this user has no permissions to access one of the keys used as arguments",
  noPermChannel: (v72: boolean) =>
    v72
      ? "NOPERM No permissions to access a channel"
      : "NOPERM this user has no permissions to access one of the channels used as arguments",
  /** A refused EXEC reports the refusal as the transaction's end. */
  execAborted: (error: string) => `EXECABORT Transaction discarded because of: ${error}`,
  /** ACL DRYRUN's answers (bulk strings, not errors). */
  dryRunCommand: (name: string, user: string, v72: boolean) =>
    `${v72 ? `User ${user}` : "This user"} has no permissions to run the '${name}' command`,
  dryRunKey: (key: string, user: string, v72: boolean) =>
    `${v72 ? `User ${user}` : "This user"} has no permissions to access the '${key}' key`,
  dryRunChannel: (channel: string, user: string, v72: boolean) =>
    `${v72 ? `User ${user}` : "This user"} has no permissions to access the '${channel}' channel`,
  userNotFound: (user: string) => `ERR User '${user}' not found`,
  commandNotFound: (name: string) => `ERR Command '${name}' not found`,
  unknownCategory: (category: string) => `ERR Unknown category '${truncate(category, 128)}'`,
  subcommandSyntax: (sub: string) =>
    `ERR unknown subcommand or wrong number of arguments for '${truncate(sub, 128)}'. Try ACL HELP.`,
} as const;

// Admin commands through the proxy (issue 13 item 6): Redis's own texts.
export const AdminErrors = {
  unblockReason: "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
} as const;

// Reads from replicas (src/proxy/upstream/read-from.ts, src/proxy/router.ts).
export const ReplicaReadErrors = {
  noReplica: (master: string) =>
    `ERR no replica of the shard of master ${master} may serve reads now (readFrom is "replica"; ` +
    `replicas down, with their link to the master down, or more than maxReplicaLagBytes behind are ` +
    `skipped): use readFrom "replica-preferred" to read from the master then`,
} as const;

// TLS (src/tls/): why a handshake with a shard failed, naming the setting to check.
export const TlsErrors = {
  untrusted: (peer: string, caSetting: string, detail: string) =>
    `TLS: the certificate of ${peer} is not trusted (${detail}); is it signed by the CA in ${caSetting}?`,
  wrongName: (peer: string, nameSetting: string, detail: string) =>
    `TLS: the certificate of ${peer} is not valid for the name connected to (${detail}); set ${nameSetting} to a name it carries`,
  expired: (peer: string, detail: string) => `TLS: the certificate of ${peer} is not valid now (${detail})`,
  clientCertRefused: (peer: string, certSetting: string, detail: string) =>
    `TLS: ${peer} refused the handshake (${detail}); it asks for a client certificate signed by its CA: check ${certSetting}`,
  noClientCert: (peer: string, certSetting: string, detail: string) =>
    `TLS: ${peer} ended the handshake (${detail}); it likely asks for a client certificate (Redis's tls-auth-clients) and none is set: set ${certSetting}`,
  handshakeFailed: (peer: string, detail: string) =>
    `TLS: handshake with ${peer} failed (${detail}); does it serve TLS on this port, and does it accept this client's certificate?`,
} as const;

// Valkey shards (issue 16 item 2): Valkey's own texts where the proxy answers itself and
// Valkey words it differently from Redis (src/proxy/engine-style.ts picks by the shards' engine).
export const ValkeyErrors = {
  multiNested: "ERR Command 'multi' not allowed inside a transaction",
} as const;

// Numbered databases through the proxy (src/proxy/databases.ts): what Valkey answers, byte for byte.
export const DatabaseErrors = {
  /** Tracked shard connections run in database 0 only: refused rather than leave a cache stale. */
  trackingOutsideDb0:
    "ERR client-side caching through this proxy covers database 0 only: turn CLIENT TRACKING off before SELECT of another database, or SELECT 0 before turning it on",
  outOfRange: "ERR DB index is out of range",
} as const;

// Client-side caching (src/proxy/tracking/): Redis's own texts for CLIENT TRACKING and CACHING,
// and the one limit of the proxy (a REDIRECT target served by another worker of the host).
export const TrackingErrors = {
  redirectMissing: "ERR The client ID you want redirect to does not exist",
  redirectTwice: "ERR A client can only redirect to a single other client",
  prefixNeedsBcast: "ERR PREFIX option requires BCAST mode to be enabled",
  bcastSwitch:
    "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
  optWithBcast: "ERR OPTIN and OPTOUT are not compatible with BCAST",
  optBoth: "ERR You can't specify both OPTIN mode and OPTOUT mode",
  optSwitch:
    "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
  prefixOverlapsExisting: (prefix: string, existing: string) =>
    `ERR Prefix '${prefix}' overlaps with an existing prefix '${existing}'. Prefixes for a single client must not overlap.`,
  prefixOverlapsGiven: (prefix: string, other: string) =>
    `ERR Prefix '${prefix}' overlaps with another provided prefix '${other}'. Prefixes for a single client must not overlap.`,
  cachingNotTracking:
    "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
  cachingYes: "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
  cachingNo: "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
  redirectOtherWorker: (id: number) =>
    `ERR client ${id} is connected to another worker of this proxy host, and invalidations are redirected ` +
    `only within one worker: use RESP3 (HELLO 3) and CLIENT TRACKING without REDIRECT, or run the host with workers: 1`,
} as const;

// Atomic slot migration (issue 16 items 3-4, src/cluster/admin/atomic-migrate.ts): what Valkey said,
// which slots, and what the operator can do.
export const AtomicMigrationErrors = {
  unsupported: (nodes: string[]) =>
    `atomic slot migration needs Valkey 9 or later on every node; these are not: ${nodes.join(", ")}. ` +
    `Upgrade them, or use --slot-migration legacy (key by key, works on every engine) or auto (atomic only when all nodes can)`,
  failed: (pair: { from: string; to: string }, slots: string, tries: number, messages: string[]) =>
    `atomic migration of slots ${slots} from ${pair.from} to ${pair.to} failed ${tries} time(s); Valkey said: ` +
    `${[...new Set(messages)].map((m) => JSON.stringify(m)).join(", ")}. The slots stay with ${pair.from}, nothing is lost ` +
    `and every other move of this run was cancelled or finished. Under heavy writes to the moving slots Valkey 9.0-9.1 ` +
    `fails such jobs every time (valkey#4545): re-run when writes to these slots are lighter, raise --atomic-max-tries, ` +
    `or re-run with --slot-migration legacy (key by key, not affected)`,
  refused: (from: string, to: string, slots: string, text: string) =>
    `CLUSTER MIGRATESLOTS of slots ${slots} from ${from} to ${to} was refused: ${text}. ` +
    `Check both nodes with: dredis cluster check --topology <topology>, then re-run`,
  sourceLost: (from: string, slots: string, text: string) =>
    `lost the source ${from} during the atomic migration of slots ${slots} (${text}). A job moves all its ` +
    `slots or none, so they are whole on the source, or on its replica once promoted; every other move of this ` +
    `run was cancelled or finished. When the shard has a master again (dredis cluster check --topology <topology>), ` +
    `re-run the same command to finish`,
  stuck: (jobs: { name: string; slotRanges: string; state: string; sourceNode: string }[], ms: number) =>
    `atomic slot migration(s) in flight made no progress for ${ms} ms: ` +
    `${jobs.map((j) => `${j.name} (slots ${j.slotRanges}, state ${j.state}, source ${j.sourceNode})`).join("; ")}. ` +
    `Cancel them with CLUSTER CANCELSLOTMIGRATIONS on their source, then re-run`,
} as const;
