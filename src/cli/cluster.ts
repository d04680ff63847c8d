import type { Command } from "commander";

/** Registers `dredis cluster ...`. */
export function registerClusterCommands(program: Command): void {
  program.command("cluster").description("(not built yet)");
}
