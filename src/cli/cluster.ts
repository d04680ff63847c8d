/**
 * `dredis cluster <create|apply|add-shard|remove-shard|rebalance|check|fix>`: cluster
 * administration from the command line. Each command takes the desired topology
 * (`--topology <json-or-file>`); credentials come from DREDIS_USERNAME / DREDIS_PASSWORD.
 *
 * Exit codes: 0 success, 1 failure (or, for check, problems found), 2 refused by a gate.
 */
import { InvalidArgumentError, type Command } from "commander";
import { DredisError } from "../errors.ts";
import { loadTopology, type Topology } from "../cluster/topology.ts";
import {
  addShard,
  applyTopology,
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

interface CommonFlags {
  topology: string;
  json?: boolean;
  dryRun?: boolean;
  maxKeysPerSecond?: number;
  bigKeyBytes?: number;
  parallelBatches?: number;
  slotsPerBatch?: number;
  shard?: string;
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
        .option("--slots-per-batch <n>", "slots per pipelined batch (default: 64)", positiveInt);
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
    .action(
      run(async (topology, options, flags) => {
        // Checked before anything changes: a bad size is an input error.
        const size = (flags as { maxmemory?: string }).maxmemory ?? process.env.DREDIS_MAXMEMORY;
        const maxmemory = size !== undefined && size !== "" ? parseMemorySize(size) : undefined;
        const { plan, moved } = await applyTopology(topology, options);
        if (maxmemory !== undefined) await resizeMemory(topology, maxmemory, options);
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
      print(flags, flags.dryRun ? plan : { plan, moved: moved.length }, () =>
        formatMovesTable([...plan.resume, ...plan.moves]),
      );
    }),
  );

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
      username: process.env.DREDIS_USERNAME || undefined,
      password: process.env.DREDIS_PASSWORD || undefined,
      onProgress: progressReporter(process.stderr),
      signal: abort.signal,
      dryRun: flags.dryRun,
      maxKeysPerSecond: flags.maxKeysPerSecond,
      bigKeyBytes: flags.bigKeyBytes,
      parallelBatches: flags.parallelBatches,
      slotsPerBatch: flags.slotsPerBatch,
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
          "E_INTERRUPTED",
          "interrupted; the cluster is left resumable: re-run the same command to finish",
        );
      throw err;
    } finally {
      process.off("SIGINT", stop).off("SIGTERM", stop);
    }
  };
}

function print(flags: CommonFlags, data: unknown, human: () => string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}
