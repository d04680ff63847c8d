/**
 * A Python Pulumi project for the real engine: a virtualenv the test makes with the `pulumi` SDK
 * from PyPI (pinned to the CLI's version), a local file backend, and the engine's Python host.
 * PyPI is used once: the wheels (the SDK's, and what the generated SDK of a `pulumi package add`
 * needs to install: parver, setuptools, wheel) are kept in ~/.cache/distributed-redis/pip-<version>,
 * and every pip afterwards, ours and the host's, installs from there without an index.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { engineEnv, pulumiRunner, REPO, type Workspace } from "./engine.ts";

/** The CLI's version, which the Python SDK is pinned to. */
export const PULUMI_VERSION = /^PULUMI_VERSION=(\S+)$/m.exec(
  readFileSync(join(REPO, "scripts/pulumi-engine.sh"), "utf8"),
)![1]!;

/** What `pulumi package add`'s pip install of a generated SDK needs besides the SDK. */
const SDK_BUILD_REQUIREMENTS = ["parver", "setuptools", "wheel"];

function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const result = spawnSync(command, args, { ...options, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.status}:\n${result.stdout}\n${result.stderr}`,
    );
  return result.stdout;
}

/**
 * python3 able to make a virtualenv (Debian splits it into python3-venv): scripts/setup.sh
 * installs it as root on Debian, and otherwise fails naming the package.
 */
export function requirePythonVenv(): void {
  const setup = spawnSync("bash", [join(REPO, "scripts/setup.sh"), "python3-venv"], { encoding: "utf8" });
  if (setup.status !== 0)
    throw new Error(`this suite needs python3 with venv (Debian: python3-venv):\n${setup.stderr}`);
}

/** The wheel folder, filled from PyPI on the first run (then complete: a marker file says so). */
function wheelCache(pip: string): string {
  const cache = join(homedir(), ".cache", "distributed-redis", `pip-${PULUMI_VERSION}`);
  if (existsSync(join(cache, "complete"))) return cache;
  const partial = `${cache}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  run(pip, [
    "download",
    "--quiet",
    "--dest",
    partial,
    `pulumi==${PULUMI_VERSION}`,
    ...SDK_BUILD_REQUIREMENTS,
  ]);
  writeFileSync(join(partial, "complete"), `pulumi==${PULUMI_VERSION} ${SDK_BUILD_REQUIREMENTS.join(" ")}\n`);
  rmSync(cache, { recursive: true, force: true });
  renameSync(partial, cache);
  return cache;
}

export interface PythonProject extends Pick<Workspace, "pulumi" | "pulumiOk" | "dispose"> {
  /** The project folder (Pulumi.yaml, requirements.txt, venv/, __main__.py). */
  dir: string;
  writeProgram(source: string): void;
}

/** A Python project named `name`, its virtualenv made and the SDK installed. */
export function createPythonProject(name: string): PythonProject {
  requirePythonVenv();
  const root = mkdtempSync(join(tmpdir(), "dredis-engine-python-"));
  const dir = join(root, "project");
  for (const sub of ["state", "home", "project"]) mkdirSync(join(root, sub));
  writeFileSync(
    join(dir, "Pulumi.yaml"),
    stringify({ name, runtime: { name: "python", options: { virtualenv: "venv" } } }),
  );
  writeFileSync(join(dir, "requirements.txt"), `pulumi==${PULUMI_VERSION}\n`);
  run("python3", ["-m", "venv", join(dir, "venv")]);
  const pip = join(dir, "venv", "bin", "pip");
  const wheels = wheelCache(pip);
  const env: NodeJS.ProcessEnv = {
    ...engineEnv(root),
    // Every pip from here on, including the Python host's, installs from the cache only.
    PIP_NO_INDEX: "1",
    PIP_FIND_LINKS: wheels,
    PIP_DISABLE_PIP_VERSION_CHECK: "1",
  };
  run(pip, ["install", "--quiet", "-r", "requirements.txt"], { cwd: dir, env });
  return {
    dir,
    ...pulumiRunner(dir, env),
    writeProgram(source) {
      writeFileSync(join(dir, "__main__.py"), source);
    },
    dispose() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
