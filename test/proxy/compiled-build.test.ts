import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startCluster, tempDir } from "../support/redis.ts";
import { startProxyHost } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");

/** Command lines of a process and its descendants, from /proc. */
async function commandLines(pid: number): Promise<string[]> {
  const lines = [(await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ")];
  for (const task of await readdir(`/proc/${pid}/task`)) {
    const children = (await readFile(`/proc/${pid}/task/${task}/children`, "utf8")).trim();
    for (const child of children ? children.split(" ") : [])
      lines.push(...(await commandLines(Number(child))));
  }
  return lines;
}

test("the compiled build (what the image runs: bin/dredis.js with DREDIS_COMPILED=1) serves on plain node, no tsx", async (t) => {
  // `npm run build` into a package folder of its own: dist/ and bin/ as the image lays them out.
  const pkg = await tempDir("dredis-build-");
  t.after(() => rm(pkg, { recursive: true, force: true }));
  execFileSync(
    join(ROOT, "node_modules", ".bin", "tsc"),
    ["-p", "tsconfig.build.json", "--outDir", join(pkg, "dist")],
    {
      cwd: ROOT,
    },
  );
  await writeFile(join(pkg, "package.json"), JSON.stringify({ type: "module" }));
  await symlink(join(ROOT, "node_modules"), join(pkg, "node_modules"));
  await mkdir(join(pkg, "bin"));
  await copyFile(join(ROOT, "bin", "dredis.js"), join(pkg, "bin", "dredis.js"));

  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const host = await startProxyHost(
    t,
    cluster,
    { workers: 2 },
    { argv: [join(pkg, "bin", "dredis.js")], env: { DREDIS_COMPILED: "1" } },
  );
  const client = await RawClient.connect(host.port);
  t.after(() => client.close());
  // A routed command on a worker, and a split one on the busy proxy.
  const replies = await client.pipeline([
    ["SET", "a", "1"],
    ["MSET", "b", "2", "c", "3", "d", "4"],
    ["MGET", "a", "b", "c", "d"],
  ]);
  assert.deepEqual(
    replies.map((r) => r.toString()),
    ["+OK\r\n", "+OK\r\n", "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n"],
  );
  const processes = await commandLines(host.process.pid!);
  // The busy proxy is a thread of the primary (src/proxy/host.ts), running the same build.
  assert.ok(processes.length >= 3, `primary and 2 workers: ${processes.join(" | ")}`);
  assert.equal((await host.status()).busyProxy.running, true);
  for (const line of processes) {
    assert.doesNotMatch(line, /tsx/, `a process runs through tsx: ${line}`);
    // The workers run the build's own entry for forked processes (src/proxy/role-main.ts).
    assert.ok(
      line.includes(join(pkg, "bin", "dredis.js")) ||
        line.includes(join(pkg, "dist", "proxy", "role-main.js")),
      `a process runs something else: ${line}`,
    );
  }
});
