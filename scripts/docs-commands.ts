/** Writes docs/commands.md from the command table (npm run docs:commands). */
import { writeFileSync } from "node:fs";
import { renderCommandSupport } from "../src/proxy/command-support.ts";

writeFileSync(new URL("../docs/commands.md", import.meta.url), renderCommandSupport());
