/**
 * keepalived.conf for one host of a master-backup proxy pair: the floating IP (VIP) that clients
 * use moves to the other host when this one is cut off or fails its health check.
 *
 * Choices, and why:
 * - VRRP version 3 over unicast: Docker bridge networks and most clouds drop multicast, and v3 is
 *   the version whose advert interval may be sub-second (v2 carries whole seconds only).
 * - Advert interval 0.2 s by default: a backup takes over once it has missed adverts for
 *   3 x interval + skew (skew = (256 - priority) / 256 x interval), i.e. 0.4 to 0.8 s after the
 *   master is cut off, inside the product's 1 s bound, while the master may still stall for
 *   0.6 s before a needless failover.
 * - Both hosts start as BACKUP and the higher priority wins the first election. Preemption stays
 *   on, without a delay: the VIP returns to the preferred host once it is healthy again, and no
 *   delay ever applies to a failover (preempt_delay only delays taking over from a live,
 *   lower-priority master).
 * - The health check has no weight: a failing host enters FAULT, which makes a master give up the
 *   VIP at once (it sends a priority-0 advert, so the backup takes over after its skew time
 *   rather than after the full master-down interval). A host whose proxy is down never holds the
 *   VIP, whatever the priorities.
 * - check_unicast_src: adverts from anything but the configured peers are ignored. It is the
 *   protection VRRPv3 offers, since v3 has no authentication.
 *
 * Run it in the foreground, VRRP only: `keepalived -n -l -P -f /etc/keepalived/keepalived.conf`
 * (the tests add -p/-r pid files of their own so several instances can share a machine).
 */
import { z } from "zod";
import { DredisError, ErrorCodes } from "../../src/errors.ts";

export interface KeepalivedArgs {
  /** VRRP instance name, e.g. "dredis-proxy". */
  instance: string;
  /** Interface carrying the VIP, e.g. "eth0". */
  interface: string;
  /** 1..255, unique per VRRP domain on the network. */
  virtualRouterId: number;
  /** The floating IP, e.g. "172.30.0.100", and its prefix length. */
  vip: string;
  vipPrefixLength: number;
  /** This host's own address (unicast_src_ip) and its peer's (unicast_peer). */
  selfAddress: string;
  peerAddresses: string[];
  /** 1..254; the preferred master has the higher priority. */
  priority: number;
  /**
   * The health check keepalived runs; failing it gives up the VIP. `command` is run without a
   * shell (use `proxyHealthCheckCommand` from health-check.ts); `intervalSeconds` is a whole
   * number (keepalived's limit), 1..4294; `fall`/`rise` consecutive results change the state.
   */
  healthCheck: { command: string; intervalSeconds: number; fall: number; rise: number };
  /**
   * VRRP auth (PASS, up to 8 chars). Optional. Only VRRP version 2 has authentication, and v2
   * advertises whole seconds only, so setting it requires an integer `advertIntervalSeconds`
   * and makes failover take 3 s or more.
   */
  authPassword?: string;
  /**
   * Advertisement interval in seconds, in steps of 0.01. The VIP moves roughly 3x this long
   * after the master is cut off.
   * @default 0.2
   */
  advertIntervalSeconds?: number;
}

/** Used when `advertIntervalSeconds` is not given: failover within 0.4..0.8 s. */
export const DEFAULT_ADVERT_INTERVAL_SECONDS = 0.2;

const ipv4 = z.ipv4({ message: "expected an IPv4 address, for example 172.30.0.100" });
const integer = (min: number, max: number) =>
  z
    .number()
    .int(`expected an integer in ${min}..${max}`)
    .min(min, `expected an integer in ${min}..${max}`)
    .max(max, `expected an integer in ${min}..${max}`);
// keepalived reads quoted strings with shell-like escapes, so these characters would be altered.
const unquotable = /["\\\n\r]/;

const argsSchema = z
  .object({
    instance: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1..64 letters, digits, '_', '.' or '-', e.g. dredis-proxy"),
    interface: z
      .string()
      .regex(/^[A-Za-z0-9_.@-]{1,15}$/, "expected a Linux interface name (1..15 characters), e.g. eth0"),
    virtualRouterId: integer(1, 255),
    vip: ipv4,
    vipPrefixLength: integer(1, 32),
    selfAddress: ipv4,
    peerAddresses: z.array(ipv4).min(1, "at least one peer address is needed"),
    priority: integer(1, 254),
    healthCheck: z
      .object({
        command: z
          .string()
          .trim()
          .min(1, "expected a command, e.g. the output of proxyHealthCheckCommand()")
          .refine((c) => !unquotable.test(c), "must not contain double quotes, backslashes or newlines"),
        intervalSeconds: integer(1, 4294),
        fall: integer(1, 1000),
        rise: integer(1, 1000),
      })
      .strict(),
    authPassword: z
      .string()
      .regex(/^[\x21-\x7e]{1,8}$/, "expected 1..8 printable characters without spaces")
      .refine((p) => !unquotable.test(p), "must not contain double quotes or backslashes")
      .optional(),
    advertIntervalSeconds: z
      .number()
      .min(0.01, "expected 0.01..40.95 seconds")
      .max(40.95, "expected 0.01..40.95 seconds")
      .refine((s) => Math.abs(s * 100 - Math.round(s * 100)) < 1e-9, "expected a multiple of 0.01 s")
      .optional(),
  })
  .strict()
  .superRefine((args, ctx) => {
    const hosts = [args.selfAddress, ...args.peerAddresses];
    if (hosts.includes(args.vip))
      ctx.addIssue({
        code: "custom",
        path: ["vip"],
        message: `${args.vip} is also a host address; the VIP must be spare`,
      });
    if (args.peerAddresses.includes(args.selfAddress))
      ctx.addIssue({
        code: "custom",
        path: ["peerAddresses"],
        message: `contains selfAddress ${args.selfAddress}; list only the other hosts`,
      });
    if (new Set(args.peerAddresses).size !== args.peerAddresses.length)
      ctx.addIssue({ code: "custom", path: ["peerAddresses"], message: "contains an address twice" });
    // A /32 VIP says nothing about the network, so only a shorter prefix can be checked.
    if (
      args.vipPrefixLength < 32 &&
      ipv4.safeParse(args.vip).success &&
      ipv4.safeParse(args.selfAddress).success &&
      !sameNetwork(args.vip, args.selfAddress, args.vipPrefixLength)
    )
      ctx.addIssue({
        code: "custom",
        path: ["vip"],
        message: `${args.vip}/${args.vipPrefixLength} is not on selfAddress ${args.selfAddress}'s network; peers could not reach it`,
      });
    const advert = args.advertIntervalSeconds ?? DEFAULT_ADVERT_INTERVAL_SECONDS;
    if (args.authPassword !== undefined && !Number.isInteger(advert))
      ctx.addIssue({
        code: "custom",
        path: ["authPassword"],
        message:
          `needs VRRP version 2, whose advert interval is whole seconds, but advertIntervalSeconds is ${advert}. ` +
          "Omit authPassword (unicast peers are already checked) or set advertIntervalSeconds to 1 (failover then takes 3 s or more)",
      });
  });

/** Renders keepalived.conf for one host. Throws DredisError (E_KEEPALIVED_ARGS) naming each bad field. */
export function renderKeepalivedConf(args: KeepalivedArgs): string {
  const parsed = argsSchema.safeParse(args);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new DredisError(ErrorCodes.KEEPALIVED_ARGS, `invalid keepalived args:\n${problems.join("\n")}`);
  }
  const a = parsed.data;
  const advert = a.advertIntervalSeconds ?? DEFAULT_ADVERT_INTERVAL_SECONDS;
  const version = a.authPassword === undefined ? 3 : 2;
  const script = `${a.instance}_health`;
  const auth =
    a.authPassword === undefined
      ? []
      : ["  authentication {", "    auth_type PASS", `    auth_pass "${a.authPassword}"`, "  }"];
  return [
    "global_defs {",
    `  router_id ${a.instance}-${a.selfAddress}`,
    // Scripts run as root (the container's user); security mode refuses any script whose path a
    // non-root user could write.
    "  script_user root",
    "  enable_script_security",
    "}",
    "",
    `vrrp_script ${script} {`,
    `  script "${a.healthCheck.command}"`,
    `  interval ${a.healthCheck.intervalSeconds}`,
    // A hung check counts as a failure after one interval, so it cannot stall failover.
    `  timeout ${a.healthCheck.intervalSeconds}`,
    `  fall ${a.healthCheck.fall}`,
    `  rise ${a.healthCheck.rise}`,
    // Never claim the VIP before the proxy has answered `rise` checks.
    "  init_fail",
    "}",
    "",
    `vrrp_instance ${a.instance} {`,
    "  state BACKUP",
    `  interface ${a.interface}`,
    `  version ${version}`,
    `  virtual_router_id ${a.virtualRouterId}`,
    `  priority ${a.priority}`,
    `  advert_int ${advert}`,
    ...auth,
    `  unicast_src_ip ${a.selfAddress}`,
    "  unicast_peer {",
    ...a.peerAddresses.map((p) => `    ${p}`),
    "  }",
    "  check_unicast_src",
    "  virtual_ipaddress {",
    `    ${a.vip}/${a.vipPrefixLength} dev ${a.interface}`,
    "  }",
    "  track_script {",
    `    ${script}`,
    "  }",
    "}",
    "",
  ].join("\n");
}

function sameNetwork(a: string, b: string, prefixLength: number): boolean {
  const mask = (0xffffffff << (32 - prefixLength)) >>> 0;
  return (toInt(a) & mask) >>> 0 === (toInt(b) & mask) >>> 0;
}

function toInt(ip: string): number {
  return ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}
