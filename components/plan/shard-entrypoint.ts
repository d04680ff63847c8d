/**
 * The shard node's entrypoint: a POSIX sh script that runs in the stock redis image (sh,
 * redis-server and redis-cli; no node), so that stopping a node never costs the shard its master.
 *
 * `sh -c <script> dredis-shard [redis-server args...]` starts redis-server on the given config and
 * waits. On SIGTERM (`docker stop`, a pod's deletion) it hands mastership over first: when this
 * node is a master that owns slots and has a connected replica, it sends `CLUSTER FAILOVER` (not
 * FORCE: Redis pauses writes on the master until the replica's offset equals its own, so no
 * acknowledged write is lost) to the replica with the highest offset, and waits, bounded, until
 * this node reports `role:slave`. Then it waits, bounded, until clients have left: after the
 * handover it answers their writes with MOVED until every proxy and client has learned the new
 * master, and stopping sooner resets the connections of writes still on their way to it (seen as
 * one ECONNRESET per roll on Docker); the wait ends once its `errorstat_MOVED` count has not
 * grown for 0.5 s (as `dredis cluster roll` does, src/cluster/admin/roll.ts). Then `SHUTDOWN`,
 * which saves as the config says. A replica, or a master without slots or replica, just shuts down.
 *
 * With `tls` (a TLS-only node), every redis-cli call goes over TLS with the node's own certificate,
 * and a renewed certificate (cert-manager's, in a mounted Secret; new settings on Docker) reaches
 * the running node: Redis reads the files only at start and on `CONFIG SET tls-*` (which
 * re-reads them even when the path is the same), so the script checks them every
 * `tlsReloadSeconds` and sets them again when they changed.
 *
 * `sh -c <script> dredis-shard handover` does the handover and the wait only: Kubernetes' preStop
 * hook, which runs before the pod's SIGTERM and within the same grace period.
 *
 * redis-cli authenticates from REDISCLI_AUTH, so the password never appears on a command line.
 *
 * Wiring: Docker `command: shardEntrypointCommand(script)`, `stopTimeout` above the handover
 * timeout, healthcheck `["CMD-SHELL", shardHealthCheckCommand()]`; Kubernetes `command:
 * shardEntrypointCommand(script, ["--cluster-announce-hostname", "$(POD_NAME)...."])`,
 * `lifecycle.preStop.exec.command: shardHandoverCommand(script)`, readiness
 * `exec: ["sh", "-c", shardHealthCheckCommand()]`, `terminationGracePeriodSeconds` above the
 * handover timeout.
 */
import type { ShardTlsFiles } from "../../src/cluster/redis-conf.ts";
import { DredisError, ErrorCodes } from "../../src/errors.ts";
import { redisCliTlsArgs } from "./shard-tls.ts";
import { REDIS_PORT } from "./topology.ts";

export interface ShardEntrypointOptions {
  /** redis.conf of the node, e.g. "/etc/redis/redis.conf". */
  configPath: string;
  /**
   * How long to wait for a replica to take over before shutting down regardless: the platform's
   * stop timeout (Docker's `stopTimeout`, the pod's `terminationGracePeriodSeconds`) minus the time
   * SHUTDOWN needs to save.
   * @example 20
   */
  handoverTimeoutSeconds: number;
  /** Client port of the node (on loopback). @default 6379 */
  port?: number;
  /**
   * A file holding the password, read before each redis-cli call (it wins over REDISCLI_AUTH):
   * a password rotated live reaches the handover without restarting the node.
   */
  passwordFile?: string;
  /**
   * After a handover, how long at most to wait for clients to stop being redirected.
   * @default SHARD_CLIENTS_LEAVE_TIMEOUT_SECONDS
   */
  clientsLeaveTimeoutSeconds?: number;
  /** The node serves TLS only: redis-cli connects over TLS with these files. */
  tls?: ShardTlsFiles;
  /** With `tls`: how often to look for renewed certificate files. @default 60 */
  tlsReloadSeconds?: number;
}

/**
 * How long a stopping master waits for its replica to take over: a manual failover completes in
 * well under a second once the replica has caught up, so this covers several retries (each
 * attempt waits 6 s, a replica's manual failover gives up after 5).
 */
export const SHARD_HANDOVER_TIMEOUT_SECONDS = 35;
/** Then, at most, for redirected clients to leave (the local roll's bound, roll.ts `CLIENTS_LEAVE_MS`). */
export const SHARD_CLIENTS_LEAVE_TIMEOUT_SECONDS = 10;
/** Then SHUTDOWN's save (an AOF rewrite is not waited for; an RDB save of a few GB fits). */
const SHARD_SAVE_SECONDS = 15;
/**
 * What the platforms give a stopping node (Docker's stop timeout and destroy grace, a pod's
 * terminationGracePeriodSeconds): the handover (35 s at most, and each bound's last poll may run
 * up to a second over), the clients' leaving (10 s at most) and SHUTDOWN's save (15 s): 60 s.
 */
export const SHARD_STOP_GRACE_SECONDS =
  SHARD_HANDOVER_TIMEOUT_SECONDS + SHARD_CLIENTS_LEAVE_TIMEOUT_SECONDS + SHARD_SAVE_SECONDS;

/** Name the script gives itself as `$0` in the commands below (it shows in `ps`). */
const SCRIPT_NAME = "dredis-shard";

/** The entrypoint script; run it as `shardEntrypointCommand` or `shardHandoverCommand` say. */
export function renderShardEntrypoint(options: ShardEntrypointOptions): string {
  const {
    configPath,
    handoverTimeoutSeconds,
    port = REDIS_PORT,
    passwordFile = "",
    clientsLeaveTimeoutSeconds = SHARD_CLIENTS_LEAVE_TIMEOUT_SECONDS,
    tls,
    tlsReloadSeconds = 60,
  } = options;
  checkPort(port);
  for (const [field, seconds] of Object.entries({
    handoverTimeoutSeconds,
    clientsLeaveTimeoutSeconds,
    tlsReloadSeconds,
  }))
    if (!Number.isInteger(seconds) || seconds < 1)
      throw new DredisError(
        ErrorCodes.SHARD_ENTRYPOINT_ARGS,
        `shard entrypoint ${field} must be a positive integer (got ${seconds})`,
      );
  const tlsPaths =
    tls === undefined ? {} : { caFile: tls.caFile, certFile: tls.certFile, keyFile: tls.keyFile };
  for (const [field, path] of Object.entries({ configPath, passwordFile, ...tlsPaths }))
    if (!/^\/[A-Za-z0-9_./-]+$/.test(path) && !(field === "passwordFile" && path === ""))
      throw new DredisError(
        ErrorCodes.SHARD_ENTRYPOINT_ARGS,
        `shard entrypoint ${field} must be an absolute path of letters, digits and _./- (got ${JSON.stringify(path)})`,
      );
  return `#!/bin/sh
# dredis shard entrypoint: redis-server that hands mastership to a caught-up replica before it stops.
# Command substitutions start with a space: Kubernetes replaces "$" "(" NAME ")" in a command
# wherever a variable NAME is set, and a function name could one day be one.
set -u
CONF='${configPath}'
PORT=${port}
HANDOVER_TIMEOUT=${handoverTimeoutSeconds}
CLIENTS_LEAVE_TIMEOUT=${clientsLeaveTimeoutSeconds}
PASSWORD_FILE='${passwordFile}'
# Unquoted where used, to split into flags: the paths are checked to hold no space or glob.
TLS_ARGS='${tls === undefined ? "" : redisCliTlsArgs(tls)}'
TLS_FILES='${tls === undefined ? "" : `${tls.certFile} ${tls.keyFile} ${tls.caFile}`}'
TLS_RELOAD=${tlsReloadSeconds}

# The password as of now (a rotation changes the file under a running node), for every redis-cli.
auth() { if [ -n "$PASSWORD_FILE" ] && [ -r "$PASSWORD_FILE" ]; then REDISCLI_AUTH=$( cat "$PASSWORD_FILE"); export REDISCLI_AUTH; fi; }
cli() { auth; redis-cli -h 127.0.0.1 -p "$PORT" $TLS_ARGS "$@"; }
say() { echo "${SCRIPT_NAME}: $*" >&2; }
role() { cli INFO replication | tr -d '\\r' | sed -n 's/^role://p'; }

# "ip port" of the online replica with the highest replication offset, from INFO replication's
# lines like: slave0:ip=10.0.0.7,port=6379,state=online,offset=1234,lag=0
best_replica() {
  cli INFO replication | tr -d '\\r' | awk -F'[:,]' '
    /^slave[0-9]+:/ {
      delete f
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["state"] == "online" && (best == "" || f["offset"] + 0 > offset)) {
        best = f["ip"] " " f["port"]; offset = f["offset"] + 0
      }
    }
    END { if (best != "") print best }'
}

# Slots this node owns: the fields after the 8th of its own CLUSTER NODES line.
owned_slot_ranges() { cli CLUSTER NODES | tr -d '\\r' | awk '$3 ~ /myself/ { print NF - 8 }'; }

handover() {
  [ "$( role)" = master ] || return 0
  [ "$( owned_slot_ranges)" -gt 0 ] 2>/dev/null || return 0
  deadline=$(( $(date +%s) + HANDOVER_TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    target=$( best_replica)
    if [ -z "$target" ]; then say "no online replica: stopping without a handover"; return 0; fi
    set -- $target
    say "handing over to $1:$2"
    # The replica wants the password as well; auth here, as the calls above ran it in subshells.
    auth
    redis-cli -h "$1" -p "$2" $TLS_ARGS CLUSTER FAILOVER >/dev/null 2>&1
    # A manual failover gives up after 5 s on the replica's side; then try again.
    attempt_end=$(( $(date +%s) + 6 ))
    while [ "$(date +%s)" -lt "$attempt_end" ] && [ "$(date +%s)" -lt "$deadline" ]; do
      if [ "$( role)" = slave ]; then say "handed over to $1:$2"; HANDED_OVER=1; return 0; fi
      sleep 0.1
    done
  done
  say "no replica took over within $HANDOVER_TIMEOUT s"
  return 1
}

# MOVED replies this node has sent (INFO errorstats; none yet: no line).
moved() { cli INFO errorstats | tr -d '\\r' | sed -n 's/^errorstat_MOVED:count=//p'; }

# After a handover clients' writes still reach this node and are redirected until they learn the
# new master; stopping sooner resets their connections. Waits until no MOVED was sent for five
# polls in a row (0.1 s apart plus each poll's time: 0.5 s at least), bounded.
wait_for_clients_to_leave() {
  deadline=$(( $(date +%s) + CLIENTS_LEAVE_TIMEOUT ))
  last=$( moved); quiet=0
  while [ "$quiet" -lt 5 ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then say "clients still redirected after $CLIENTS_LEAVE_TIMEOUT s: stopping"; return 0; fi
    sleep 0.1
    now=$( moved)
    if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); else last=$now; quiet=0; fi
  done
  say "no client redirected for 0.5 s (MOVED sent: \${last:-0})"
}

# The handover, then, if this node handed its slots over, the wait for its clients to leave.
stop_serving() {
  HANDED_OVER=0
  handover || return 1
  if [ "$HANDED_OVER" = 1 ]; then wait_for_clients_to_leave; fi
}

if [ "\${1:-}" = handover ]; then stop_serving; exit $?; fi

tls_sum() { cat $TLS_FILES 2>/dev/null | cksum; }
# Sets the certificate files again when they changed; a half-renewed set (key not matching) is
# refused by Redis, which keeps the running one, and tried again next time.
watch_tls() {
  set -- $TLS_FILES
  seen=$( tls_sum)
  while sleep "$TLS_RELOAD"; do
    now=$( tls_sum)
    [ "$now" = "$seen" ] && continue
    if [ "$( cli CONFIG SET tls-cert-file "$1" tls-key-file "$2" tls-ca-cert-file "$3" | tr -d '\\r')" = OK ]; then
      seen=$now
      say "TLS certificate files changed: reloaded"
    fi
  done
}

stopping=0
trap 'stopping=1' TERM INT
redis-server "$CONF" "$@" &
pid=$!
watcher=
if [ -n "$TLS_FILES" ]; then watch_tls & watcher=$!; fi
# wait returns early when a trapped signal arrives; anything else means redis-server exited.
while :; do
  wait "$pid"
  status=$?
  [ "$stopping" = 1 ] && break
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null
  exit "$status"
done
[ -n "$watcher" ] && kill "$watcher" 2>/dev/null
stop_serving || true
cli SHUTDOWN >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
wait "$pid"
`;
}

/** The container's command: the script, then extra redis-server arguments. */
export function shardEntrypointCommand(script: string, serverArgs: string[] = []): string[] {
  return ["sh", "-c", script, SCRIPT_NAME, ...serverArgs];
}

/** Kubernetes' preStop hook: the handover and the wait for clients to leave (the pod's SIGTERM follows). */
export function shardHandoverCommand(script: string): string[] {
  return ["sh", "-c", script, SCRIPT_NAME, "handover"];
}

/**
 * The node's health check, a sh command line: the node answers, sees `cluster_state:ok`, and, if
 * it is a replica, its link to the master is up and no sync is in progress (a replica that is
 * still loading its master's data cannot take over). For Docker's CMD-SHELL and a pod's exec probe.
 */
export function shardHealthCheckCommand(port: number = REDIS_PORT): string {
  checkPort(port);
  const cli = `redis-cli -h 127.0.0.1 -p ${port}`;
  return (
    `c=$(${cli} CLUSTER INFO) && r=$(${cli} INFO replication) && ` +
    `echo "$c" | grep -q '^cluster_state:ok' && ` +
    `{ echo "$r" | grep -q '^role:master' || ` +
    `{ echo "$r" | grep -q '^master_link_status:up' && echo "$r" | grep -q '^master_sync_in_progress:0'; }; }`
  );
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new DredisError(
      ErrorCodes.SHARD_ENTRYPOINT_ARGS,
      `shard entrypoint port must be an integer in 1..65535 (got ${port})`,
    );
}
