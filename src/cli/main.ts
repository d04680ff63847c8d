/**
 * `dredis`: the runtime's command line. Each family of subcommands lives in its own module.
 */
import { Command } from "commander";
import { DredisError } from "../errors.ts";
import { registerProxyCommands } from "./proxy.ts";

const program = new Command("dredis")
  .description("distributed-redis runtime: proxy host, cluster administration, local platform")
  .showHelpAfterError();

registerProxyCommands(program);
// scale (memory): `dredis proxy` lives as long as its host, and every module loaded stays in its
// heap, so it does not load the cluster and local commands it never runs.
if (process.argv[2] !== "proxy") {
  const [{ registerClusterCommands }, { registerLocalCommands }] = await Promise.all([
    import("./cluster.ts"),
    import("./local.ts"),
  ]);
  registerClusterCommands(program);
  registerLocalCommands(program);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof DredisError) {
    console.error(`dredis: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
