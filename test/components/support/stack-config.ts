/** Reads a stack file of `stacks/` as the Pulumi CLI would hand it to the program. */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { parseStackConfig, projectConfig } from "../../../components/stack.ts";
import type { ClusterSpec } from "../../../components/plan/spec.ts";

export function stackFileConfig(stack: "dev" | "staging" | "prod"): Record<string, string> {
  const file = parse(
    readFileSync(new URL(`../../../stacks/Pulumi.${stack}.yaml`, import.meta.url), "utf8"),
  ) as {
    config: Record<string, unknown>;
  };
  // The CLI passes every value as a string.
  return projectConfig(Object.fromEntries(Object.entries(file.config).map(([k, v]) => [k, String(v)])));
}

export function stackSpec(stack: "dev" | "staging" | "prod"): ClusterSpec {
  return parseStackConfig(stackFileConfig(stack));
}
