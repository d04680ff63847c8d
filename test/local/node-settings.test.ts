import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseSettings, writeNodeSettings } from "../../src/local/node-settings.ts";
import { tempDir } from "../support/redis.ts";

test("a node's changed settings replace their directives (any case) in its redis.conf and keep every other line", async () => {
  const file = join(await tempDir("dredis-conf-"), "redis.conf");
  await writeFile(
    file,
    'port 7001\nSave ""\nsave 900 1\nuser default on #abc ~* &* +@all\nrequirepass "old"\n',
  );
  await writeNodeSettings(file, { save: "3600 1", requirepass: "new one", "tcp-backlog": "1024" });
  assert.equal(
    await readFile(file, "utf8"),
    'port 7001\nuser default on #abc ~* &* +@all\nsave "3600 1"\nrequirepass "new one"\ntcp-backlog 1024\n',
  );
});

test("settings are key=value with a redis.conf name; a malformed one is named", () => {
  assert.deepEqual(parseSettings(["TCP-Backlog=1024", "save=", "notify-keyspace-events=Ex=1"]), {
    "tcp-backlog": "1024",
    save: "",
    "notify-keyspace-events": "Ex=1",
  });
  assert.throws(
    () => parseSettings(["=1"]),
    /expected a redis.conf setting as key=value \(e.g. maxmemory-policy=noeviction\), got "=1"/,
  );
  assert.throws(() => parseSettings(["maxmemory"]), /got "maxmemory"/);
});
