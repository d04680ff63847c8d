import type { Command } from "commander";

/** Registers `dredis local ...`. */
export function registerLocalCommands(program: Command): void {
  program.command("local").description("(not built yet)");
}
