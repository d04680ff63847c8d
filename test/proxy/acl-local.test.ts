/**
 * `dredis local up --users FILE`: a users file in Redis's ACL file format gives the local proxy
 * its users, and `dredis local set --users FILE` replaces them live; a bad line is refused with
 * its line and rule before anything starts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { down } from "../../src/local/platform.ts";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import { parseUsersFile } from "../../src/proxy/acl/file.ts";
import { RawClient } from "../support/raw-client.ts";
import { tempDir, until } from "../support/redis.ts";
import { dredisLaunch } from "../support/proxy.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dredis = (...args: string[]) =>
  run(process.execPath, [...dredisLaunch.argv, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...dredisLaunch.env },
  });

test("a users file's lines, comments and blanks skipped; a bad line named with its number", () => {
  assert.deepEqual(
    parseUsersFile("# team users\n\nuser app on >p ~app:* +@read\n  user default off  \n", "users.acl"),
    { app: "on >p ~app:* +@read", default: "off" },
  );
  assert.throws(
    () => parseUsersFile("user app on\napp on >p\nuser app off\nuser ops on +@nosuch\n", "users.acl"),
    {
      message: new RegExp(
        "^invalid users file:\\n" +
          "  - users.acl:2: expected 'user <name> <rules...>', got 'app on >p'\\n" +
          "  - users.acl:3: duplicate user 'app' \\(a user can only be defined once\\)\\n" +
          "  - users.acl:4: user ops: rule '\\+@nosuch': Unknown command or category name in ACL",
      ),
    },
  );
});

test("dredis local up --users FILE serves those users through the proxy; local set --users changes them live", async (t) => {
  const dir = await tempDir("dredis-local-acl-");
  const [port] = await freePorts(1);
  const basePort = (await freeNodePorts(1))[0]!; // the nodes take the ports from it, and their bus ports: below the ephemeral range
  const file = join(dir, "users.acl");
  await writeFile(file, "user default off\nuser app on >app-pass ~app:* +@read +@write\n");
  t.after(() => down(dir));
  await dredis(
    "local",
    "up",
    "--dir",
    dir,
    "--replicas",
    "0",
    "--workers",
    "1",
    "--port",
    String(port),
    "--base-port",
    String(basePort),
    "--users",
    file,
    "--detach",
  );
  const client = await RawClient.connect(port!);
  const replies = await client.pipeline([
    ["SET", "app:1", "v"],
    ["AUTH", "app", "app-pass"],
    ["SET", "app:1", "v"],
    ["GET", "app:1"],
    ["GET", "other:1"],
  ]);
  client.close();
  assert.deepEqual(
    replies.map((r) => r.toString()),
    [
      "-NOAUTH Authentication required.\r\n",
      "+OK\r\n",
      "+OK\r\n",
      "$1\r\nv\r\n",
      "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
    ],
  );

  // `local set --users` replaces them live: the host reloads, the next AUTH sees the new file.
  const next = join(dir, "users-next.acl");
  await writeFile(next, "user default off\nuser app on >new-pass ~* +@read\n");
  await dredis("local", "set", "--dir", dir, "--users", next);
  await until(
    async () => {
      const c = await RawClient.connect(port!);
      const [auth, get] = await c.pipeline([
        ["AUTH", "app", "new-pass"],
        ["GET", "other:1"],
      ]);
      c.close();
      return auth!.toString() === "+OK\r\n" && get!.toString() === "$-1\r\n";
    },
    10_000,
    "the new users to apply",
  );
});
