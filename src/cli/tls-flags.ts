/**
 * `--tls --cacert --cert --key` for the commands that connect to the nodes (as redis-cli spells
 * them): the admin tools reach shards that serve only TLS.
 */
import type { Command } from "commander";
import type { ConnectionOptions } from "node:tls";
import { DredisError, ErrorCodes } from "../errors.ts";
import { backendTlsOptions, TLS_FLAGS } from "../tls/backend.ts";

export interface TlsFlags {
  tls?: boolean;
  cacert?: string;
  cert?: string;
  key?: string;
  sni?: string;
}

export function addTlsFlags(command: Command): Command {
  return command
    .option("--tls", "connect to the nodes over TLS")
    .option("--cacert <file>", "with --tls: PEM CA bundle the nodes' certificates are signed by")
    .option("--cert <file>", "with --tls: PEM client certificate (nodes with tls-auth-clients)")
    .option("--key <file>", "with --tls: PEM private key of --cert")
    .option("--sni <name>", "with --tls: the name the nodes' certificates carry (default: each node's host)");
}

/** The TLS options the flags ask for, their files read; undefined without --tls. */
export function tlsFromFlags(flags: TlsFlags): ConnectionOptions | undefined {
  const given = [
    flags.cacert && "--cacert",
    flags.cert && "--cert",
    flags.key && "--key",
    flags.sni && "--sni",
  ].filter(Boolean);
  if (!flags.tls) {
    if (given.length > 0)
      throw new DredisError(
        ErrorCodes.TLS_CONFIG,
        `${given.join(", ")} need --tls (the nodes are reached over TLS only with it)`,
      );
    return undefined;
  }
  if ((flags.cert === undefined) !== (flags.key === undefined))
    throw new DredisError(
      ErrorCodes.TLS_CONFIG,
      "--cert and --key go together: give both (a client certificate) or neither",
    );
  return backendTlsOptions(
    {
      caFile: flags.cacert,
      certFile: flags.cert,
      keyFile: flags.key,
      serverName: flags.sni,
      minVersion: "TLSv1.2",
    },
    TLS_FLAGS,
  );
}
