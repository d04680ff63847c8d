#!/usr/bin/env node
// @ts-check
/**
 * Builds native/io.c, the proxy's batched socket I/O (see the file's header), into
 * native/build/dredis-io.node with the machine's C compiler and the Node headers that come with
 * the running node. Run by `npm install` / `npm ci` (the package's install script) and by
 * `npm test` (scripts/test.sh, with --required).
 *
 *   node scripts/build-native.mjs [--required]
 *
 * Without a compiler or headers the proxy still works: src/proxy/io.ts falls back to Node's
 * streams (a tenth or more CPU per request at pipeline 1, bench/README.md). So a failed build
 * warns and exits 0, unless --required (the test suite, which checks the native path) is given.
 * CC names the compiler (default cc); DREDIS_NODE_HEADERS the folder holding node_api.h.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const source = join(root, "native", "io.c");
const output = join(root, "native", "build", "dredis-io.node");
const required = process.argv.includes("--required");

/** @param {string} reason */
function fail(reason) {
  const fix =
    "Install a C compiler (Debian: apt-get install gcc, or npm run setup as root) and run " +
    "`node scripts/build-native.mjs`.";
  if (required) {
    console.error(`distributed-redis: the native socket I/O did not build: ${reason}. ${fix}`);
    process.exit(1);
  }
  console.warn(
    `distributed-redis: the native socket I/O was not built (${reason}); the proxy uses Node's ` +
      `streams instead, at more CPU per request. ${fix}`,
  );
  process.exit(0);
}

const headerDirs = [
  process.env.DREDIS_NODE_HEADERS,
  join(dirname(dirname(process.execPath)), "include", "node"),
  "/usr/include/node",
  "/usr/local/include/node",
].filter((dir) => dir !== undefined && dir !== "");
const headers = headerDirs.find((dir) => existsSync(join(/** @type {string} */ (dir), "node_api.h")));
if (headers === undefined) fail(`no node_api.h in ${headerDirs.join(", ")} (set DREDIS_NODE_HEADERS)`);

if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) process.exit(0);

mkdirSync(dirname(output), { recursive: true });
const compiler = process.env.CC || "cc";
const partial = `${output}.${process.pid}.tmp`;
const args = ["-O2", "-fPIC", "-shared", "-Wall", "-Wextra", `-I${headers}`, source, "-o", partial];
const run = spawnSync(compiler, args, { stdio: ["ignore", "inherit", "inherit"] });
if (run.error) fail(`${compiler}: ${run.error.message}`);
if (run.status !== 0) fail(`${compiler} ${args.join(" ")} exited with ${run.status}`);
renameSync(partial, output);
