import type { Command } from "commander";

/** Registers `dredis proxy ...`. */
export function registerProxyCommands(program: Command): void {
  program.command("proxy").description("(not built yet)");
}
