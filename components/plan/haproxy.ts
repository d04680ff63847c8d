/**
 * haproxy.cfg for a load-balanced proxy fleet: one TCP address in front of N proxy hosts, each
 * health-checked with a real Redis PING, failed ones dropped.
 *
 * Choices, and why:
 * - `balance leastconn`: Redis clients hold few long-lived connections, so round robin over
 *   connection *starts* can leave a restarted host idle while others carry everything;
 *   leastconn sends each new connection to the least loaded live host.
 * - The check speaks Redis (optional AUTH, then PING expecting +PONG), so a host whose port is
 *   open but whose proxy is stuck or misconfigured is dropped too.
 * - `on-marked-down shutdown-sessions`: clients of a host that is marked down are disconnected at
 *   once, so they reconnect to a live one instead of waiting on a dead or hung connection.
 * - `retries` with `option redispatch`: a connection attempt that hits a host which died since
 *   the last check is retried on another host, so clients rarely see the gap before ejection.
 * - Long client/server timeouts and TCP keepalives: Redis clients keep idle connections (Pub/Sub
 *   subscribers may be silent for hours); keepalives reap half-open ones instead.
 * - Backends given by name (Docker container names) are resolved through the system resolver
 *   and re-resolved while running, and a name that does not resolve yet does not stop HAProxy
 *   from starting (`init-addr last,libc,none`): a restarting proxy container may briefly have no
 *   DNS entry.
 * - Or the hosts are discovered (`discover`): one DNS name that resolves to every host (Docker: a
 *   network alias they all share) fills up to `slots` servers (`server-template`), so adding or
 *   removing a host changes no byte of the file and HAProxy never restarts for it.
 * - Or the check asks the proxy's admin port for readiness over HTTP (`httpCheck`): no password in
 *   the file, so a password rotation does not change it either.
 * - No daemon, chroot, user or pidfile settings: the same file runs in the foreground in a
 *   container and as a child process of the tests. Logs go to stdout at notice level, which
 *   reports server state changes but not every connection.
 */
import { z } from "zod";
import { DredisError, ErrorCodes } from "../../src/errors.ts";

export interface HaproxyArgs {
  /** Where clients connect. */
  bind: { host: string; port: number };
  /** The proxy hosts, by name; or none, with `discover`. */
  backends: { name: string; host: string; port: number }[];
  /** The proxy hosts as one DNS name that resolves to all of them, filling up to `slots` servers. */
  discover?: { host: string; port: number; slots: number };
  /** Check each host with an HTTP GET of `path` on `port` (expects 200) instead of a Redis PING. */
  httpCheck?: { port: number; path: string };
  /** Sent as AUTH in the health check when the proxies require a password. */
  password?: string;
  /** Health check timing: every intervalMs, down after `fall` failures, up after `rise` successes. */
  check: { intervalMs: number; fall: number; rise: number };
  /** Optional HTTP stats/health page port (on `bind.host`): `/` is the stats page, `/healthz` answers 200. */
  statsPort?: number;
  /** @default 10000 */
  maxConnections?: number;
  /**
   * Client/server idle timeouts; long by default since Redis clients keep idle connections.
   * @default { connectMs: 5000, clientMs: 86400000, serverMs: 86400000 } (24 h idle)
   */
  timeouts?: { connectMs?: number; clientMs?: number; serverMs?: number };
}

export const HAPROXY_DEFAULTS = {
  maxConnections: 10_000,
  connectMs: 5_000,
  clientMs: 24 * 3600 * 1000,
  serverMs: 24 * 3600 * 1000,
} as const;

const port = z
  .number()
  .int("expected an integer port in 1..65535")
  .min(1, "expected an integer port in 1..65535")
  .max(65535, "expected an integer port in 1..65535");
// An IPv4 address, "*", "::" or a DNS name: what HAProxy accepts before ":port".
const hostMessage = "expected an IPv4 address or a host name, e.g. 0.0.0.0 or proxy-0";
const host = z
  .string()
  .regex(/^(\*|::|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$/, hostMessage)
  .refine((h) => !/^[\d.]+$/.test(h) || z.ipv4().safeParse(h).success, hostMessage);
// HAProxy's timer limit is 2^31 - 1 ms (about 24.8 days).
const millis = (min: number) =>
  z
    .number()
    .int(`expected an integer number of milliseconds in ${min}..2147483647`)
    .min(min, `expected an integer number of milliseconds in ${min}..2147483647`)
    .max(2_147_483_647, `expected an integer number of milliseconds in ${min}..2147483647`);
const count = z
  .number()
  .int("expected an integer in 1..100")
  .min(1, "expected an integer in 1..100")
  .max(100, "expected an integer in 1..100");

const argsSchema = z
  .object({
    bind: z.object({ host, port }).strict(),
    backends: z
      .array(
        z
          .object({
            name: z
              .string()
              .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "expected 1..64 letters, digits, '_', '.', ':' or '-'"),
            host,
            port,
          })
          .strict(),
      )
      .min(0),
    discover: z
      .object({
        host,
        port,
        slots: z.number().int().min(1, "expected 1..1024 slots").max(1024, "expected 1..1024 slots"),
      })
      .strict()
      .optional(),
    httpCheck: z
      .object({ port, path: z.string().regex(/^\/[A-Za-z0-9_./-]*$/, "expected a path such as /readyz") })
      .strict()
      .optional(),
    password: z.string().min(1, "expected a non-empty password, or omit it").optional(),
    check: z.object({ intervalMs: millis(10), fall: count, rise: count }).strict(),
    statsPort: port.optional(),
    maxConnections: z
      .number()
      .int("expected an integer in 1..1000000")
      .min(1, "expected an integer in 1..1000000")
      .max(1_000_000, "expected an integer in 1..1000000")
      .optional(),
    timeouts: z
      .object({
        connectMs: millis(1).optional(),
        clientMs: millis(1).optional(),
        serverMs: millis(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((args, ctx) => {
    if (args.backends.length === 0 && args.discover === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["backends"],
        message: "at least one backend is needed (or discover)",
      });
    const seen = new Map<string, number>();
    for (const [i, backend] of args.backends.entries()) {
      const first = seen.get(backend.name);
      if (first !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["backends", i, "name"],
          message: `"${backend.name}" is also the name of backends.${first}; names must be unique`,
        });
      else seen.set(backend.name, i);
    }
    if (args.statsPort !== undefined && args.statsPort === args.bind.port)
      ctx.addIssue({ code: "custom", path: ["statsPort"], message: `${args.statsPort} is also bind.port` });
  });

/** Renders haproxy.cfg. Throws DredisError (E_HAPROXY_ARGS) naming each bad field. */
export function renderHaproxyCfg(args: HaproxyArgs): string {
  const parsed = argsSchema.safeParse(args);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new DredisError(ErrorCodes.HAPROXY_ARGS, `invalid haproxy args:\n${problems.join("\n")}`);
  }
  const a = parsed.data;
  const maxConnections = a.maxConnections ?? HAPROXY_DEFAULTS.maxConnections;
  const { check } = a;
  // Sent as hex so that no password character can collide with HAProxy's quoting or variables.
  const auth =
    a.password === undefined
      ? []
      : [`  tcp-check send-binary ${respHex(["AUTH", a.password])}`, "  tcp-check expect string +OK"];
  const healthCheck = a.httpCheck
    ? [`  option httpchk GET ${a.httpCheck.path}`, "  http-check expect status 200"]
    : [
        "  option tcp-check",
        "  tcp-check connect",
        ...auth,
        "  tcp-check send PING\\r\\n",
        "  tcp-check expect string +PONG",
      ];
  const checkPort = a.httpCheck ? ` port ${a.httpCheck.port}` : "";
  const discovered = a.discover
    ? [
        // init-addr none: the slots start empty and fill from DNS as hosts appear.
        `  server-template proxy 1-${a.discover.slots} ${address(a.discover.host, a.discover.port)} resolvers system init-addr none`,
      ]
    : [];
  const resolves = a.backends.some((b) => isName(b.host)) || a.discover !== undefined;
  const stats =
    a.statsPort === undefined
      ? []
      : [
          "",
          "listen stats",
          "  mode http",
          `  bind ${address(a.bind.host, a.statsPort)}`,
          "  timeout client 10s",
          "  monitor-uri /healthz",
          "  stats enable",
          "  stats uri /",
          "  stats refresh 5s",
        ];
  return [
    // No global maxconn: HAProxy derives it from the file-descriptor limit it finds, whereas an
    // explicit one it cannot back with descriptors (2 per connection) makes it refuse to start.
    // The frontend's maxconn is the limit clients see.
    "global",
    "  log stdout format raw local0 notice",
    "",
    "defaults",
    "  mode tcp",
    "  log global",
    // Keepalives reap half-open connections that the long idle timeouts would otherwise keep.
    "  option clitcpka",
    "  option srvtcpka",
    "  retries 3",
    "  option redispatch",
    `  timeout connect ${a.timeouts?.connectMs ?? HAPROXY_DEFAULTS.connectMs}ms`,
    `  timeout client ${a.timeouts?.clientMs ?? HAPROXY_DEFAULTS.clientMs}ms`,
    `  timeout server ${a.timeouts?.serverMs ?? HAPROXY_DEFAULTS.serverMs}ms`,
    // A check that gets no answer within one interval counts as failed.
    `  timeout check ${check.intervalMs}ms`,
    "",
    "frontend redis",
    `  bind ${address(a.bind.host, a.bind.port)}`,
    `  maxconn ${maxConnections}`,
    "  default_backend proxies",
    "",
    "backend proxies",
    "  balance leastconn",
    ...healthCheck,
    `  default-server check${checkPort} inter ${check.intervalMs}ms fall ${check.fall} rise ${check.rise} on-marked-down shutdown-sessions`,
    ...a.backends.map(
      (b) =>
        `  server ${b.name} ${address(b.host, b.port)}${isName(b.host) ? " resolvers system init-addr last,libc,none" : ""}`,
    ),
    ...discovered,
    ...(resolves
      ? [
          "",
          "resolvers system",
          "  parse-resolv-conf",
          "  hold valid 10s",
          // Room for every host's A record in one answer.
          "  accepted_payload_size 8192",
        ]
      : []),
    ...stats,
    "",
  ].join("\n");
}

function isName(host: string): boolean {
  return /[A-Za-z]/.test(host) && !host.includes(":");
}

function address(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A Redis command as RESP bytes, hex-encoded for `tcp-check send-binary`. */
function respHex(args: string[]): string {
  const parts = [`*${args.length}\r\n`, ...args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`)];
  return Buffer.from(parts.join(""), "utf8").toString("hex");
}
