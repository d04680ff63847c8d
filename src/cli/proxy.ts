import { InvalidArgumentError, type Command } from "commander";
import { DredisError, type ErrorCode } from "../errors.ts";
import type { ProxyConfig } from "../proxy/config.ts";
import { loadConfigOffThread, runProxyHost, type ConfigReload, type ConfigRequest } from "../proxy/host.ts";

/** Registers `dredis proxy`. */
export function registerProxyCommands(program: Command): void {
  program
    .command("proxy")
    .description(
      "run a proxy host: worker processes serving clients a standalone-Redis endpoint over the cluster",
    )
    .requiredOption("-c, --config <file>", "proxy config file (YAML or JSON)")
    .option("-p, --port <port>", "client port (overrides listen.port)", (v) => parsePort(v, "--port"))
    .option("-w, --workers <n>", "worker processes (overrides workers)", (v) => parseCount(v, "--workers"))
    .option(
      "--leader-election",
      "on Kubernetes, a master-backup pair: hold the Lease LEASE_NAME and label this pod (POD_NAME) active while leader",
    )
    .action(
      async (options: { config: string; port?: number; workers?: number; leaderElection?: boolean }) => {
        // The file is read and checked in a thread (loadConfigOffThread): the primary, which lives
        // as long as the host, never loads the config parser.
        const load = async (running?: ProxyConfig) => {
          const { port, workers } = options;
          const request: ConfigRequest = { file: options.config, port, workers, running };
          const answer = await loadConfigOffThread(request);
          if ("error" in answer) {
            const { name, message, code } = answer.error;
            throw name === "DredisError" ? new DredisError(code as ErrorCode, message) : new Error(message);
          }
          return answer;
        };
        // SIGHUP re-reads the file, with the same command-line overrides.
        await runProxyHost((await load()).config, undefined, {
          leaderElection: options.leaderElection === true,
          reloadConfig: async (running): Promise<ConfigReload> => (await load(running)).reload,
        });
      },
    );
}

function parsePort(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`${flag} expects a port number (0-65535), got "${value}"`);
  return n;
}

function parseCount(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new InvalidArgumentError(`${flag} expects a whole number from 1 to 64, got "${value}"`);
  return n;
}
