/**
 * The runtime bundle the image carries (scripts/image/bundle.sh), laid out as in the image (bin/,
 * package.json, the bundle's folder) with no node_modules but what the script copies: it serves as
 * a proxy host on plain node, and what it still loads at run time is node's own modules and the
 * command table, nothing of the package's dependencies.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, readFile, readdir, rm } from "node:fs/promises";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { startCluster, tempDir } from "../support/redis.ts";
import { startProxyHost } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** What src/proxy/commands.ts reads through require(), which the bundler leaves to run time. */
const RUNTIME_DATA = "@ioredis/commands/built/commands.json";

test("the image's bundle serves as a proxy host with no node_modules but the command table", async (t) => {
  const app = await tempDir("dredis-bundle-");
  t.after(() => rm(app, { recursive: true, force: true }));
  execFileSync("bash", ["scripts/image/bundle.sh", app], { cwd: REPO, stdio: ["ignore", "ignore", "pipe"] });
  await mkdir(join(app, "bin"));
  await copyFile(join(REPO, "bin", "dredis.js"), join(app, "bin", "dredis.js"));
  await copyFile(join(REPO, "package.json"), join(app, "package.json"));
  assert.deepEqual(await readdir(join(app, "node_modules")), ["@ioredis"]);
  assert.deepEqual(await readdir(join(app, "node_modules", "@ioredis")), ["commands"]);

  // The entries (main.js, role-main.js) and the chunks esbuild split off: every file is loaded by some role.
  const dist = join(app, "dist", "cli");
  const files = (await readdir(dist)).filter((name) => name.endsWith(".js"));
  assert.ok(files.includes("main.js") && files.includes("role-main.js"), files.join(", "));
  const bundle = (await Promise.all(files.map((name) => readFile(join(dist, name), "utf8")))).join("\n");
  const required = new Set(
    [...bundle.matchAll(/\b(?:__require|require\d*)\("([^"]+)"\)/g)].map((m) => m[1]!),
  );
  const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
  assert.deepEqual(
    [...required].filter((name) => !builtins.has(name)),
    [RUNTIME_DATA],
    "the bundle loads only node's modules and the command table at run time",
  );

  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const host = await startProxyHost(
    t,
    cluster,
    { workers: 2 },
    { argv: [join(app, "bin", "dredis.js")], env: { DREDIS_COMPILED: "1" } },
  );
  const client = await RawClient.connect(host.port);
  t.after(() => client.close());
  // A routed command on a worker, a split one on the busy proxy, and one the command table types.
  const replies = await client.pipeline([
    ["SET", "a", "1"],
    ["MSET", "b", "2", "c", "3", "d", "4"],
    ["MGET", "a", "b", "c", "d"],
    ["GET"],
  ]);
  assert.deepEqual(
    replies.map((r) => r.toString()),
    [
      "+OK\r\n",
      "+OK\r\n",
      "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n",
      "-ERR wrong number of arguments for 'get' command\r\n",
    ],
  );
});
