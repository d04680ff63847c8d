/**
 * `dredis`: the runtime's command line. Each family of subcommands lives in its own module.
 */
import { Command } from "commander";
import { DredisError } from "../errors.ts";
import { registerProxyCommands } from "./proxy.ts";
import { registerClusterCommands } from "./cluster.ts";
import { registerLocalCommands } from "./local.ts";

const program = new Command("dredis")
  .description("distributed-redis runtime: proxy host, cluster administration, local platform")
  .showHelpAfterError();

registerProxyCommands(program);
registerClusterCommands(program);
registerLocalCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof DredisError) {
    console.error(`dredis: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
