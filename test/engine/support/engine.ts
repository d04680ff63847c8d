/**
 * Runs the real Pulumi engine (built by scripts/pulumi-engine.sh) on this repository's program:
 * each workspace is a temporary project folder (Pulumi.yaml and the stack file copied, the code and
 * node_modules linked) with its own file backend, PULUMI_HOME and passphrase, fully offline.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";

export const REPO = fileURLToPath(new URL("../../../", import.meta.url));

let binDir: string | undefined;
/**
 * The folder of the engine's binaries. Building is scripts/pulumi-engine.sh's job (npm run
 * test:engine runs it first); here it only answers from its cache, and an engine that cannot be
 * built fails the suite with the script's own reasons, never skips it.
 */
export function engineBin(): string {
  if (binDir) return binDir;
  const run = spawnSync("bash", [join(REPO, "scripts/pulumi-engine.sh"), "--bin-dir"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (run.status !== 0)
    throw new Error(`the Pulumi engine is not available (scripts/pulumi-engine.sh):\n${run.stderr}`);
  binDir = run.stdout.trim();
  return binDir;
}

export interface PulumiResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface Workspace {
  dir: string;
  stack: string;
  /** Runs `pulumi ARGS` in the project; never throws: check `status`. */
  pulumi(args: string[]): PulumiResult;
  /** Like pulumi(), but throws with the output when the command fails. */
  pulumiOk(args: string[]): PulumiResult;
  /** Rewrites the stack's config (`distributed-redis:<key>` or a full `ns:key`) and saves it. */
  setConfig(values: Record<string, string | number>): void;
  dispose(): void;
}

const PASSPHRASE = "engine-test-passphrase";

/**
 * The environment of an offline engine whose backend, PULUMI_HOME and (absent) kubeconfig live in
 * `dir` (it needs the folders `state` and `home`).
 */
export function engineEnv(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${engineBin()}:${process.env["PATH"] ?? ""}`,
    PULUMI_HOME: join(dir, "home"),
    PULUMI_BACKEND_URL: `file://${join(dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "1",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    // No kubeconfig: the Kubernetes provider previews without a cluster, or renders manifests.
    KUBECONFIG: join(dir, "no-kubeconfig"),
    NO_COLOR: "1",
  };
  delete env["NODE_OPTIONS"];
  delete env["NODE_TEST_CONTEXT"];
  return env;
}

/** `pulumi ARGS` in `cwd`: pulumi() never throws (check `status`), pulumiOk() throws with the output. */
export function pulumiRunner(cwd: string, env: NodeJS.ProcessEnv): Pick<Workspace, "pulumi" | "pulumiOk"> {
  const pulumi = (args: string[]): PulumiResult => {
    const run = spawnSync("pulumi", [...args, "--non-interactive"], {
      cwd,
      env,
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    });
    if (run.error) throw run.error;
    return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
  };
  const pulumiOk = (args: string[]): PulumiResult => {
    const result = pulumi(args);
    if (result.status !== 0)
      throw new Error(
        `pulumi ${args.join(" ")} exited ${result.status}:\n${result.stdout.slice(-20000)}\n${result.stderr.slice(-20000)}`,
      );
    return result;
  };
  return { pulumi, pulumiOk };
}

/** A project folder for `stack`, its config taken from stacks/Pulumi.<stack>.yaml. */
export function createWorkspace(stack: "staging" | "prod" | "dev"): Workspace {
  const dir = mkdtempSync(join(tmpdir(), `dredis-engine-${stack}-`));
  const project = join(dir, "project");
  mkdirSync(join(project, "stacks"), { recursive: true });
  mkdirSync(join(dir, "state"));
  mkdirSync(join(dir, "home"));
  for (const entry of ["index.ts", "components", "src", "package.json", "tsconfig.json", "node_modules"])
    symlinkSync(join(REPO, entry), join(project, entry));
  // The project file as it is, but with this workspace's backend instead of ~/.pulumi-local.
  const projectFile = parse(readFileSync(join(REPO, "Pulumi.yaml"), "utf8")) as Record<string, unknown>;
  projectFile["backend"] = { url: `file://${join(dir, "state")}` };
  writeFileSync(join(project, "Pulumi.yaml"), stringify(projectFile));
  const stackFile = join(project, "stacks", `Pulumi.${stack}.yaml`);
  copyFileSync(join(REPO, "stacks", `Pulumi.${stack}.yaml`), stackFile);

  const { pulumi, pulumiOk } = pulumiRunner(project, engineEnv(dir));

  pulumiOk(["stack", "init", stack, "--secrets-provider", "passphrase"]);
  pulumiOk(["config", "set", "--secret", "password", "engine-test-password", "--stack", stack]);

  return {
    dir,
    stack,
    pulumi,
    pulumiOk,
    setConfig(values) {
      const file = parse(readFileSync(stackFile, "utf8")) as { config: Record<string, unknown> };
      for (const [key, value] of Object.entries(values))
        file.config[key.includes(":") ? key : `distributed-redis:${key}`] = value;
      writeFileSync(stackFile, stringify(file));
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One step of `pulumi preview --json`. */
export interface PreviewStep {
  op: string;
  urn: string;
  newState?: { type: string; parent?: string; inputs?: Record<string, unknown> };
}

export interface Preview {
  steps: PreviewStep[];
  changeSummary: Record<string, number>;
}

export function parsePreview(stdout: string): Preview {
  return JSON.parse(stdout) as Preview;
}

/** `urn:pulumi:stack::project::a$b$type::name` -> its name. */
export function urnName(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}

/** `urn:pulumi:stack::project::a$b$type::name` -> its (innermost) type. */
export function urnType(urn: string): string {
  const qualified = urn.split("::")[2]!;
  return qualified.slice(qualified.lastIndexOf("$") + 1);
}

/** One engine event that starts or ends a step, in the engine's order. */
export interface StepEvent {
  phase: "pre" | "outputs" | "failed";
  op: string;
  urn: string;
}

/** The step events of `pulumi up --json`, which streams the engine's events one JSON per line. */
export function stepEvents(stdout: string): StepEvent[] {
  const events: StepEvent[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const event = JSON.parse(line) as Record<string, { metadata?: { op: string; urn: string } }>;
    for (const [key, phase] of [
      ["resourcePreEvent", "pre"],
      ["resOutputsEvent", "outputs"],
      ["resOpFailedEvent", "failed"],
    ] as const) {
      const metadata = event[key]?.metadata;
      if (metadata) events.push({ phase, op: metadata.op, urn: metadata.urn });
    }
  }
  return events;
}

/** Runs a command and returns its stdout (for the engine's version in messages). */
export function output(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8" }).trim();
}
