/**
 * The health check keepalived runs on a proxy host: is the proxy on this host answering?
 *
 * It must run in a slim Debian image (the keepalived container shares the proxy's network
 * namespace but not its files), so it uses only bash and its /dev/tcp redirection: connect to the
 * proxy's client port on loopback, send PING (after AUTH when the proxy needs a password) as
 * inline commands, and succeed only on a `+PONG` reply within one second. A refused connection,
 * an error reply (-NOAUTH, -LOADING) or silence all fail the check.
 *
 * The command contains no double quotes, backslashes or newlines, so it can be embedded in
 * keepalived.conf as is.
 */
import type { ShardTlsFiles } from "../../src/cluster/redis-conf.ts";
import { DredisError, ErrorCodes } from "../../src/errors.ts";
import { redisCliTlsArgs } from "./shard-tls.ts";

export interface ProxyHealthCheckArgs {
  /** The proxy's client port on this host. */
  port: number;
  /** The password clients give (the proxy's `clientPassword`), when it requires one. */
  password?: string;
  /** Seconds to wait for the reply. @default 1 */
  timeoutSeconds?: number;
}

/** Returns the command line for keepalived's `vrrp_script`, e.g. for `KeepalivedArgs.healthCheck.command`. */
export function proxyHealthCheckCommand(args: ProxyHealthCheckArgs): string {
  const { port, password, timeoutSeconds = 1 } = args;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new DredisError(
      ErrorCodes.HEALTH_CHECK_ARGS,
      `health check port must be an integer in 1..65535 (got ${port})`,
    );
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1)
    throw new DredisError(
      ErrorCodes.HEALTH_CHECK_ARGS,
      `health check timeoutSeconds must be a positive integer (got ${timeoutSeconds})`,
    );
  // An inline AUTH splits on spaces, and the command passes through keepalived's and bash's
  // quoting, so only characters that neither alters are accepted.
  if (password !== undefined && !/^[A-Za-z0-9_.,:@%+=/-]+$/.test(password))
    throw new DredisError(
      ErrorCodes.HEALTH_CHECK_ARGS,
      "health check password may contain only letters, digits and _.,:@%+=/- " +
        "(other characters would be split or expanded by the inline AUTH and bash)",
    );
  const auth =
    password === undefined
      ? ""
      : ` && echo AUTH ${password} >&3 && read -r -t ${timeoutSeconds} ok <&3 && [[ $ok == +OK* ]]`;
  return (
    `/bin/bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}${auth}` +
    ` && echo PING >&3 && read -r -t ${timeoutSeconds} pong <&3 && [[ $pong == +PONG* ]]'`
  );
}

/**
 * A shard node's health check (`sh -c`, with redis-cli; the password from REDISCLI_AUTH, or read
 * from `passwordFile` on each run, so a password rotated live reaches it without a restart): healthy
 * when the node answers and either knows no other node yet (a new node: the migration joins it
 * later, and waits for it to be healthy first) or sees the cluster ok and, as a replica, has its
 * master link up and no sync in progress. A node replaced in a roll is healthy, and the next one
 * may go, only once it is back in the cluster with the data. A TLS-only node (`tls`) is asked over
 * TLS on loopback, with its own certificate as the client's.
 */
export function shardHealthCheckScript(port: number, passwordFile?: string, tls?: ShardTlsFiles): string {
  const cli = `redis-cli${tls === undefined ? "" : ` ${redisCliTlsArgs(tls)}`} -p ${port}`;
  return [
    ...(passwordFile === undefined ? [] : [`REDISCLI_AUTH=$(cat '${passwordFile}') && export REDISCLI_AUTH`]),
    `[ "$(${cli} ping)" = PONG ] || exit 1`,
    `cluster=$(${cli} cluster info | tr -d '\\r')`,
    `echo "$cluster" | grep -qx 'cluster_known_nodes:1' && exit 0`,
    `echo "$cluster" | grep -qx 'cluster_state:ok' || exit 1`,
    `replication=$(${cli} info replication | tr -d '\\r')`,
    `echo "$replication" | grep -qx 'role:master' && exit 0`,
    `echo "$replication" | grep -qx 'master_link_status:up' || exit 1`,
    `! echo "$replication" | grep -qx 'master_sync_in_progress:1'`,
  ].join("\n");
}
