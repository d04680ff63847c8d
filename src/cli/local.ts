/**
 * `dredis local <up|status|scale|roll|set|down>`: the whole product as local processes.
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import { ENGINES, type Engine } from "../cluster/engine.ts";
import { progressReporter } from "../cluster/admin/index.ts";
import {
  alive,
  down,
  formatStatus,
  MAX_NODE_PORT,
  scale,
  status,
  topologyOf,
  up,
} from "../local/platform.ts";
import { roll, set } from "../local/day2.ts";
import { parseSettings } from "../local/node-settings.ts";
import { serverName } from "../local/engine.ts";
import { readSecretFile } from "./secret-file.ts";
import { readUsersFile } from "../proxy/acl/file.ts";
import { READ_FROM_MODES, type ReadFromSetting } from "../proxy/upstream/read-from.ts";

const integer = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
};

const crossSlotMode = (value: string): "refuse" | "emulate" => {
  if (value !== "refuse" && value !== "emulate")
    throw new InvalidArgumentError(`expected "refuse" or "emulate", got "${value}"`);
  return value;
};

/** Commander's accumulator for a repeatable option. */
const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Registers `dredis local ...`. */
export function registerLocalCommands(program: Command): void {
  const local = program
    .command("local")
    .description("run the whole distributed Redis as local processes (shards + a proxy host)");

  local
    .command("up")
    .description("start shards and a proxy host, and stay in the foreground until Ctrl-C (or --detach)")
    .option("--shards <n>", "shards (masters); default: 3, or the directory's own", integer(3, 100))
    .option(
      "--replicas <n>",
      "replicas per shard, fixed at creation; default: 1, or the directory's own",
      integer(0, 5),
    )
    .option("--workers <n>", "proxy worker processes", integer(1, 64), 2)
    .option("--port <port>", "the proxy's client port", integer(1, 65535), 6380)
    .option(
      "--base-port <port>",
      "first port tried for the shards' nodes (each also uses port+10000)",
      integer(1, MAX_NODE_PORT),
      7001,
    )
    .option("--password-file <file>", "a file holding the password of every node (the proxy uses it)")
    .option(
      "--users <file>",
      "the proxy's ACL users, in Redis's ACL file format (`user <name> <rules...>` lines); default: the directory's own",
    )
    .option(
      "--cross-slot <mode>",
      'atomic multi-key commands across slots: "refuse" (CROSSSLOT, the default) or "emulate" (see docs/commands.md)',
      crossSlotMode,
    )
    .addOption(
      new Option(
        "--read-from <mode>",
        "where the proxy sends reads: replicas' reads may be stale (see README); default: master, or the directory's own",
      ).choices(READ_FROM_MODES),
    )
    .option(
      "--tls",
      "TLS only, fixed at creation: a local CA and certificates in <dir>/tls/, shards serve only TLS, the proxy serves TLS on --port",
    )
    .option("--dir <dir>", "where state, data and logs live", ".dredis")
    .addOption(
      new Option("--engine <engine>", "the shards' server; default: redis, or the directory's own").choices(
        ENGINES,
      ),
    )
    .option("--detach", "return once ready, leaving everything running")
    .action(
      async (o: {
        shards?: number;
        replicas?: number;
        workers: number;
        port: number;
        basePort: number;
        dir: string;
        detach?: boolean;
        passwordFile?: string;
        users?: string;
        crossSlot?: "refuse" | "emulate";
        readFrom?: ReadFromSetting;
        tls?: boolean;
        engine?: Engine;
      }) => {
        const log = (line: string) => process.stderr.write(`dredis: ${line}\n`);
        const password = o.passwordFile !== undefined ? await readSecretFile(o.passwordFile) : undefined;
        const users = o.users !== undefined ? await readUsersFile(o.users) : undefined;
        const state = await up({ ...o, password, users, onProgress: progressReporter(), log });
        const report = await status(o.dir);
        process.stdout.write(
          `\nA distributed Redis is running.\n\n${formatStatus(report)}\n` +
            `Connect:          redis-cli ${state.tls ? `--tls --cacert ${state.tls.dir}/ca.crt ` : ""}-p ${state.proxy.port}\n` +
            `Cluster clients:  ${topologyOf(state)
              .shards.map((s) => s.master)
              .join(",")}\n` +
            `Scale:            npm run dredis -- local scale --shards ${report.nodes.filter((n) => n.role === "master").length + 1} --dir ${o.dir}\n` +
            `Logs:             ${o.dir}/proxy.log, ${o.dir}/nodes/*/redis.log\n` +
            (o.detach
              ? `Stop:             npm run dredis -- local down --dir ${o.dir}\n`
              : "\nPress Ctrl-C to stop everything.\n"),
        );
        if (o.detach) return;
        // Stay in the foreground (the processes are detached, so nothing else keeps this one alive),
        // and say so if one of them dies.
        const watch = setInterval(() => {
          for (const node of state.nodes) {
            if (!alive(node.pid))
              log(`warning: ${serverName(state.engine ?? "redis")} on port ${node.port} is not running`);
          }
          if (!alive(state.proxy.pid)) log(`warning: the proxy host (pid ${state.proxy.pid}) is not running`);
        }, 5000);
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        clearInterval(watch);
        log("stopping the proxy host and the shards");
        await down(o.dir);
        log("stopped; data stays in " + o.dir + " for the next `dredis local up`");
      },
    );

  local
    .command("status")
    .description("each node's address, role, slot count and keys")
    .option("--dir <dir>", "the platform's directory", ".dredis")
    .option("--json", "machine-readable output")
    .action(async (o: { dir: string; json?: boolean }) => {
      const report = await status(o.dir);
      process.stdout.write(o.json ? JSON.stringify(report, null, 2) + "\n" : formatStatus(report));
    });

  local
    .command("scale")
    .description("add or drain shards online (slots move while clients keep working)")
    .requiredOption("--shards <n>", "the number of shards wanted", integer(3, 100))
    .option("--dir <dir>", "the platform's directory", ".dredis")
    .action(async (o: { shards: number; dir: string }) => {
      await scale(o.dir, o.shards, { onProgress: progressReporter() });
      process.stdout.write(formatStatus(await status(o.dir)));
    });

  local
    .command("roll")
    .description(
      "restart every node one at a time (replicas first, each master after a handover to a caught-up replica), " +
        "optionally with redis.conf settings that need a restart",
    )
    .option("--dir <dir>", "the platform's directory", ".dredis")
    .option(
      "--set <key=value>",
      "a redis.conf setting each node gets before its restart (repeatable)",
      collect,
      [],
    )
    .option("--allow-downtime", "also restart masters that have no replica (their slots are down meanwhile)")
    .action(async (o: { dir: string; set: string[]; allowDowntime?: boolean }) => {
      await roll(o.dir, {
        settings: parseSettings(o.set),
        allowDowntime: o.allowDowntime,
        onProgress: progressReporter(),
      });
      process.stdout.write(formatStatus(await status(o.dir)));
    });

  local
    .command("set")
    .description(
      "change the running platform live: redis.conf settings, or rotate the password in two steps " +
        "(--password-file, then --drop-previous-password); the next `up` keeps the change",
    )
    .option("--dir <dir>", "the platform's directory", ".dredis")
    .option("--config <key=value>", "a redis.conf setting Redis can change live (repeatable)", collect, [])
    .option(
      "--password-file <file>",
      "step 1: every node accepts this password as well, and the proxy host reloads its config to use it",
    )
    .option("--drop-previous-password", "step 2: every node accepts only the new password")
    .option("--users <file>", "replace the proxy's ACL users (Redis ACL file format); the proxy reloads them")
    .addOption(
      new Option(
        "--read-from <mode>",
        "where the proxy sends reads from now on; the proxy reloads it",
      ).choices(READ_FROM_MODES),
    )
    .action(
      async (o: {
        dir: string;
        config: string[];
        passwordFile?: string;
        dropPreviousPassword?: boolean;
        users?: string;
        readFrom?: ReadFromSetting;
      }) => {
        const password = o.passwordFile !== undefined ? await readSecretFile(o.passwordFile) : undefined;
        const users = o.users !== undefined ? await readUsersFile(o.users) : undefined;
        const state = await set(o.dir, {
          settings: parseSettings(o.config),
          password,
          users,
          readFrom: o.readFrom,
          dropPreviousPassword: o.dropPreviousPassword,
          onProgress: progressReporter(),
        });
        if (state.previousPassword !== undefined)
          process.stderr.write(
            `dredis: both passwords are accepted; once every client uses the new one, run: ` +
              `dredis local set --dir ${o.dir} --drop-previous-password\n`,
          );
      },
    );

  local
    .command("down")
    .description("stop the proxy host and every shard; data stays in --dir")
    .option("--dir <dir>", "the platform's directory", ".dredis")
    .action(async (o: { dir: string }) => {
      const wasRunning = await down(o.dir);
      process.stderr.write(
        wasRunning
          ? `dredis: stopped the local platform in ${o.dir}\n`
          : `dredis: nothing running in ${o.dir}\n`,
      );
    });
}
