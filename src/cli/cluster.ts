/**
 * `dredis cluster <create|apply|add-shard|remove-shard|rebalance|roll|check|fix>`: cluster
 * administration from the command line. Each command takes the desired topology
 * (`--topology <json-or-file>`); credentials come from DREDIS_USERNAME / DREDIS_PASSWORD.
 * `handover` and `wait-synced` take one node's address: they are the roll's steps for platforms
 * that restart nodes themselves.
 *
 * Exit codes: 0 success, 1 failure (or, for check, problems found), 2 refused by a gate.
 */
import { spawnSync } from "node:child_process";
import { InvalidArgumentError, Option, type Command } from "commander";
import { DredisError, ErrorCodes } from "../errors.ts";
import { ENV } from "../contract.ts";
import { loadTopology, type Topology } from "../cluster/topology.ts";
import {
  addPassword,
  addShard,
  applyLiveSettings,
  applyTopology,
  dropPreviousPasswords,
  handover,
  PERSISTENCE_MODES,
  persistenceSettings,
  everyNodeAccepts,
  rollCluster,
  waitSynced,
  type Credentials,
  type Persistence,
  type RestartNode,
  checkCluster,
  createCluster,
  fixCluster,
  isGateRefusal,
  progressReporter,
  rebalanceCluster,
  removeShard,
  type AdminOptions,
} from "../cluster/admin/index.ts";
import { formatMovesTable } from "../cluster/admin/plan-table.ts";
import { parseMemorySize, resizeMemory } from "../cluster/admin/memory.ts";
import { splitAddress, withPool } from "../cluster/admin/node-pool.ts";
import { parseSettings } from "../local/node-settings.ts";
import { readSecretFile } from "./secret-file.ts";
import { addTlsFlags, tlsFromFlags, type TlsFlags } from "./tls-flags.ts";

interface CommonFlags extends TlsFlags {
  topology: string;
  json?: boolean;
  dryRun?: boolean;
  maxKeysPerSecond?: number;
  bigKeyBytes?: number;
  parallelBatches?: number;
  slotsPerBatch?: number;
  slotMigration?: "auto" | "atomic" | "legacy";
  atomicMaxTries?: number;
  shard?: string;
  restart?: string;
  allowDowntime?: boolean;
  syncTimeoutMs?: number;
}

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
};

/** Registers `dredis cluster ...`. */
export function registerClusterCommands(program: Command): void {
  const cluster = program
    .command("cluster")
    .description(
      "administer the Redis Cluster: create, apply a topology, add/remove shards, rebalance, check, fix",
    );

  const command = (
    name: string,
    description: string,
    options: { plan?: boolean; migrate?: boolean; shard?: boolean } = {},
  ) => {
    const cmd = cluster
      .command(name)
      .description(description)
      .requiredOption(
        "--topology <json-or-file>",
        'desired topology: JSON {"shards":[...]} or a path to a JSON file',
      )
      .option("--json", "print the result as JSON");
    addTlsFlags(cmd);
    if (options.shard) cmd.requiredOption("--shard <name>", "the shard's name in the topology");
    if (options.plan) cmd.option("--dry-run", "print the plan only; change nothing");
    if (options.migrate)
      cmd
        .option("--max-keys-per-second <n>", "throttle slot migration (default: unlimited)", positiveInt)
        .option(
          "--big-key-bytes <n>",
          "report keys at least this big before moving them (default: 16 MiB)",
          positiveInt,
        )
        .option("--parallel-batches <n>", "slot batches migrated at once (default: 4)", positiveInt)
        .option("--slots-per-batch <n>", "slots per pipelined batch (default: 64)", positiveInt)
        // Atomic slot migration (issue 16).
        .addOption(
          new Option(
            "--slot-migration <how>",
            "atomic (Valkey 9 MIGRATESLOTS), legacy (MIGRATE key by key), or auto: atomic when every node has it",
          )
            .choices(["auto", "atomic", "legacy"])
            .default("auto"),
        )
        .option(
          "--atomic-max-tries <n>",
          "tries of one atomic migration job before the run stops (default: 5)",
          positiveInt,
        );
    return cmd;
  };

  command("create", "create the cluster from empty cluster-mode nodes", { plan: true }).action(
    run(async (topology, options, flags) => {
      const assignment = await createCluster(topology, options);
      print(
        flags,
        assignment,
        () => assignment.map((a) => `${a.shard} (${a.master}): slots ${a.slots}`).join("\n") + "\n",
      );
    }),
  );

  command("apply", "make the cluster match the topology (create, add shards, rebalance, drain and forget)", {
    plan: true,
    migrate: true,
  })
    .option(
      "--maxmemory <size>",
      'then set every node\'s maxmemory (e.g. "512mb"; default: $DREDIS_MAXMEMORY); refused below what a node holds',
    )
    .option(
      "--persistence <mode>",
      "then switch every node's persistence live: aof, rdb or none (default: $DREDIS_PERSISTENCE)",
    )
    .option(
      "--config <key=value>",
      "then set a redis.conf setting live on every node (repeatable); one that needs a restart is refused",
      collect,
      [],
    )
    .option(
      "--password-file <file>",
      "the password the nodes must accept (replaces $DREDIS_PASSWORD); with --previous-password-file, step 1 of a rotation",
    )
    .option(
      "--previous-password-file <file>",
      "rotation step 1: the password the nodes accept now (default: $DREDIS_PREVIOUS_PASSWORD); they accept both afterwards, replicas use the new one",
    )
    .option(
      "--drop-previous-password",
      "rotation step 2, once every client uses the new password: the nodes accept only --password-file's",
    )
    .action(
      run(async (topology, options, flags) => {
        // Checked before anything changes: bad input is an input error.
        const day2 = flags as Day2Flags;
        const size = day2.maxmemory ?? process.env[ENV.maxmemory];
        const maxmemory = size !== undefined && size !== "" ? parseMemorySize(size) : undefined;
        const settings = { ...persistenceFlag(day2.persistence), ...parseSettings(day2.config ?? []) };
        const rotation = await passwordFlags(day2);
        if (rotation.password !== undefined) options.password = rotation.admin;
        if (rotation.add && (await everyNodeAccepts(topology, rotation.password!, options)))
          options.password = rotation.password;
        if (rotation.add && !options.dryRun) await addPassword(topology, rotation.password!, options);
        const { plan, moved } = await applyTopology(topology, options);
        if (maxmemory !== undefined) await resizeMemory(topology, maxmemory, options);
        await applyLiveSettings(topology, settings, options);
        if (rotation.drop && !options.dryRun)
          await dropPreviousPasswords(topology, rotation.password!, options);
        print(flags, flags.dryRun ? plan : { plan, moved: moved.length }, () => {
          if (!plan.changes) return "the cluster already matches the topology\n";
          const lines = [
            ...plan.create.map((a) => `create: ${a.shard} (${a.master}) gets slots ${a.slots}`),
            ...plan.join.map((a) => `join: ${a}`),
            ...plan.attach.map((a) => `attach: ${a.replica} as a replica of ${a.master}`),
            ...plan.remove.map((a) => `remove (after its drain): ${a}`),
            ...plan.forgetFailed.map((a) => `forget failed node: ${a}`),
          ];
          return `${lines.join("\n")}${lines.length ? "\n" : ""}${formatMovesTable([...plan.rebalance.resume, ...plan.rebalance.moves])}`;
        });
      }),
    );

  command("add-shard", "join a shard's master and replicas to the cluster (no slots yet)", {
    plan: true,
    shard: true,
  }).action(
    run(async (topology, options, flags) => {
      const joined = await addShard(topology, flags.shard!, options);
      print(flags, { joined }, () =>
        joined.length ? `joined: ${joined.join(", ")}\n` : "the shard is already in the cluster\n",
      );
    }),
  );

  command("remove-shard", "drain a shard's slots to the others, then forget its nodes", {
    plan: true,
    migrate: true,
    shard: true,
  }).action(
    run(async (topology, options, flags) => {
      const { plan, moved } = await removeShard(topology, flags.shard!, options);
      print(flags, flags.dryRun ? plan : { plan, moved: moved.length }, () =>
        formatMovesTable(plan.rebalance.moves).concat(
          plan.remove.map((a) => `remove (after its drain): ${a}\n`).join(""),
        ),
      );
    }),
  );

  command("rebalance", "move slots so every shard of the topology owns an even share", {
    plan: true,
    migrate: true,
  }).action(
    run(async (topology, options, flags) => {
      const { plan, moved } = await rebalanceCluster(topology, options);
      print(
        flags,
        flags.dryRun ? plan : { plan, moved: moved.length },
        () =>
          formatMovesTable([...plan.resume, ...plan.moves]) +
          (plan.moves.length > 0
            ? `slots move with: ${plan.method === "atomic" ? "atomic migration (MIGRATESLOTS)" : "MIGRATE, key by key"}\n`
            : ""),
      );
    }),
  );

  command(
    "roll",
    "restart every node one at a time: replicas first, each master after a handover to a caught-up replica",
  )
    .requiredOption(
      "--restart <how>",
      '"shutdown" (SHUTDOWN the node; its supervisor starts it again: Docker restart policy, Kubernetes, systemd) ' +
        'or a shell command run for each node, with {address}, {host} and {port} replaced (e.g. "docker restart {host}")',
    )
    .option("--allow-downtime", "also restart masters that have no replica (their slots are down meanwhile)")
    .option(
      "--sync-timeout-ms <n>",
      "how long a restarted node may take to come back and sync (default: 300000)",
      positiveInt,
    )
    .action(
      run(async (topology, options, flags) => {
        const result = await rollCluster(topology, restarter(flags.restart!, options), {
          ...options,
          allowDowntime: flags.allowDowntime,
          syncTimeoutMs: flags.syncTimeoutMs,
        });
        print(
          flags,
          result,
          () =>
            `restarted: ${result.restarted.join(", ")}\n` +
            result.handovers.map((h) => `handed over: ${h.from} -> ${h.to}\n`).join(""),
        );
      }),
    );

  const nodeCommand = (name: string) => addTlsFlags(cluster.command(name));
  nodeCommand("handover")
    .description(
      "if the node is a master, hand its slots to its most caught-up replica (CLUSTER FAILOVER, no FORCE) and wait " +
        "until that replica is master and the cluster ok; for a platform about to stop the node (e.g. a preStop hook)",
    )
    .requiredOption("--node <host:port>", "the node about to stop")
    .option(
      "--sync-timeout-ms <n>",
      "how long to wait for a replica to catch up (default: 300000)",
      positiveInt,
    )
    .action(async (o: { node: string; syncTimeoutMs?: number } & TlsFlags) => {
      await withPool(credentials(o), async (pool) => {
        const to = await handover(pool, o.node, {
          ...credentials(o),
          onProgress: progressReporter(process.stderr),
          syncTimeoutMs: o.syncTimeoutMs,
        });
        process.stdout.write(
          to ? `handed over to ${to}\n` : `${o.node} is not a master owning slots; nothing to hand over\n`,
        );
      });
    });

  nodeCommand("wait-synced")
    .description(
      "wait until the node is in the cluster, cluster_state is ok, and (for a replica) its link is up, " +
        "it is not loading or syncing, and it has caught up with its master's offset",
    )
    .requiredOption("--node <host:port>", "the node just (re)started")
    .option("--sync-timeout-ms <n>", "how long to wait (default: 300000)", positiveInt)
    .action(async (o: { node: string; syncTimeoutMs?: number } & TlsFlags) => {
      await withPool(credentials(o), async (pool) => {
        const { offset } = await waitSynced(pool, o.node, { syncTimeoutMs: o.syncTimeoutMs });
        process.stdout.write(`${o.node} is in sync (offset ${offset})\n`);
      });
    });

  command("check", "verify slots, open slots, agreement, failed nodes and replicas").action(
    run(async (topology, options, flags) => {
      const report = await checkCluster(topology, options);
      print(flags, report, () => {
        const shards = report.shards.map(
          (s) =>
            `${s.name}: master ${s.master}, ${s.slots} slots, ${s.keys} keys, replicas ${s.replicas.join(", ") || "none"}`,
        );
        const problems = report.problems.map((p) => `  - ${p.message}\n    fix: ${p.fix}`);
        return `${shards.join("\n")}\n${report.ok ? "ok: all slots covered, all nodes agree\n" : `${problems.length} problem(s):\n${problems.join("\n")}\n`}`;
      });
      if (!report.ok) process.exitCode = 1;
    }),
  );

  command("fix", "repair open slots, unowned or doubly claimed slots, and lingering failed nodes", {
    plan: true,
  }).action(
    run(async (topology, options, flags) => {
      const result = await fixCluster(topology, options);
      print(flags, result, () => {
        const { finish, close, assign, forget } = result.plan;
        const done = `${finish.length} migrations finished, ${close.length} slots closed, ${assign.length} slots assigned, ${forget.length} failed nodes forgotten`;
        const left = result.problems.map((p) => `  - ${p.message}\n    fix: ${p.fix}`);
        return `${flags.dryRun ? "would do: " : ""}${done}\n${left.length ? `still wrong:\n${left.join("\n")}\n` : ""}`;
      });
      if (!flags.dryRun && result.problems.length > 0) process.exitCode = 1;
    }),
  );
}

/** Wraps an action: loads the topology, builds options, maps refusals to exit code 2 and Ctrl-C to a clean stop. */
function run(action: (topology: Topology, options: AdminOptions, flags: CommonFlags) => Promise<void>) {
  return async (flags: CommonFlags) => {
    const topology = await loadTopology(flags.topology);
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once("SIGINT", stop).once("SIGTERM", stop);
    const options: AdminOptions = {
      ...credentials(flags),
      onProgress: progressReporter(process.stderr),
      signal: abort.signal,
      dryRun: flags.dryRun,
      maxKeysPerSecond: flags.maxKeysPerSecond,
      bigKeyBytes: flags.bigKeyBytes,
      parallelBatches: flags.parallelBatches,
      slotsPerBatch: flags.slotsPerBatch,
      slotMigration: flags.slotMigration,
      atomicMaxTries: flags.atomicMaxTries,
    };
    try {
      await action(topology, options, flags);
    } catch (err) {
      if (isGateRefusal(err)) {
        console.error(`dredis: ${err.message}`);
        process.exit(2);
      }
      if (abort.signal.aborted)
        throw new DredisError(
          ErrorCodes.INTERRUPTED,
          "interrupted; the cluster is left resumable: re-run the same command to finish",
        );
      throw err;
    } finally {
      process.off("SIGINT", stop).off("SIGTERM", stop);
    }
  };
}

/** Admin credentials from the environment, as every command takes them, and TLS from the flags. */
function credentials(flags: TlsFlags): Credentials {
  return {
    username: process.env[ENV.username] || undefined,
    password: process.env[ENV.password] || undefined,
    tls: tlsFromFlags(flags),
  };
}

/** Commander's accumulator for a repeatable option. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface Day2Flags {
  maxmemory?: string;
  persistence?: string;
  config?: string[];
  passwordFile?: string;
  previousPasswordFile?: string;
  dropPreviousPassword?: boolean;
}

function persistenceFlag(flag: string | undefined): Record<string, string> {
  const mode = flag ?? process.env[ENV.persistence];
  if (mode === undefined || mode === "") return {};
  if (!(PERSISTENCE_MODES as readonly string[]).includes(mode))
    throw new DredisError(
      ErrorCodes.SETTING,
      `--persistence must be one of ${PERSISTENCE_MODES.join(", ")}, got "${mode}"`,
    );
  return persistenceSettings(mode as Persistence);
}

/**
 * What the password flags ask for: `admin` is the password to connect with (the nodes accept the
 * previous one until step 2, and the new one from step 1 on). Each file has an environment
 * variable beside it for workloads that get secrets as variables: DREDIS_PASSWORD (the new one)
 * and DREDIS_PREVIOUS_PASSWORD.
 */
async function passwordFlags(
  flags: Day2Flags,
): Promise<{ password?: string; admin?: string; add: boolean; drop: boolean }> {
  const password =
    flags.passwordFile !== undefined
      ? await readSecretFile(flags.passwordFile)
      : process.env[ENV.password] || undefined;
  const previous =
    flags.previousPasswordFile !== undefined
      ? await readSecretFile(flags.previousPasswordFile)
      : process.env[ENV.previousPassword] || undefined;
  if ((previous !== undefined || flags.dropPreviousPassword) && password === undefined)
    throw new DredisError(
      ErrorCodes.SETTING,
      "a previous password (--previous-password-file, $DREDIS_PREVIOUS_PASSWORD) and --drop-previous-password " +
        "need the new password (--password-file or $DREDIS_PASSWORD)",
    );
  if (previous !== undefined && flags.dropPreviousPassword)
    throw new DredisError(
      ErrorCodes.SETTING,
      "a previous password and --drop-previous-password are two steps: run step 1, move every client (the proxies) " +
        "to the new password, then run step 2 without the previous password",
    );
  const add = previous !== undefined && previous !== password;
  return { password, admin: add ? previous : password, add, drop: flags.dropPreviousPassword === true };
}

/** How `cluster roll` restarts a node: SHUTDOWN (a supervisor starts it again) or a shell command. */
function restarter(how: string, credentials: Credentials): RestartNode {
  if (how === "shutdown")
    return (address) =>
      withPool(credentials, async (pool) => {
        // The connection closes as the node exits: that is the success.
        await pool
          .get(address)
          .call("SHUTDOWN")
          .catch(() => {});
      });
  return async (address) => {
    const { host, port } = splitAddress(address);
    const command = how
      .replaceAll("{address}", address)
      .replaceAll("{host}", host)
      .replaceAll("{port}", String(port));
    const result = spawnSync("sh", ["-c", command], { stdio: ["ignore", "inherit", "inherit"] });
    if (result.status !== 0)
      throw new DredisError(
        ErrorCodes.ROLL,
        `the restart command for ${address} failed (exit ${result.status}): ${command}`,
      );
  };
}

function print(flags: CommonFlags, data: unknown, human: () => string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}
