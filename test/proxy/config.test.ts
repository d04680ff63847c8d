import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseProxyConfig } from "../../src/proxy/config.ts";
import { dredisLaunch } from "../support/proxy.ts";
import { tempDir } from "../support/redis.ts";

const run = promisify(execFile);
const dredis = (...args: string[]) =>
  run(process.execPath, [...dredisLaunch.argv, ...args], { env: { ...process.env, ...dredisLaunch.env } });

test("a valid config gets documented defaults", () => {
  const config = parseProxyConfig({ seeds: ["10.0.0.5:6379"] });
  assert.equal(config.listen.port, 6380);
  assert.equal(config.workers, 2);
  assert.equal(config.limits.maxBulkBytes, 512 * 1024 * 1024);
  assert.equal(config.admin.port, 0);
});

test("each bad field is named with what was expected", () => {
  const cases: [unknown, RegExp][] = [
    [{}, /seeds: Invalid input: expected array, received undefined/],
    [{ seeds: [] }, /seeds: at least one seed node is needed/],
    [{ seeds: ["localhost"] }, /seeds\.0: expected "host:port"/],
    [{ seeds: ["a:1"], workers: 0 }, /workers: Too small: expected number to be >=1/],
    [{ seeds: ["a:1"], listen: { port: 70000 } }, /listen\.port: Too big/],
    [
      { seeds: ["a:1"], limits: { maxClients: "many" } },
      /limits\.maxClients: Invalid input: expected number, received string/,
    ],
    [{ seeds: ["a:1"], logLevel: "loud" }, /logLevel: Invalid option/],
    [{ seeds: ["a:1"], sedes: [] }, /\(root\): Unrecognized key: "sedes"/],
    [{ seeds: ["a:1"], backendAuth: { username: "u" } }, /backendAuth\.password: Invalid input/],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => parseProxyConfig(input), message, JSON.stringify(input));
  }
});

test("dredis proxy with a bad config file exits 1 with the problem named", async () => {
  const dir = await tempDir();
  const file = join(dir, "proxy.yaml");
  await writeFile(file, 'seeds: ["127.0.0.1:7000"]\nworkers: -1\n');
  const result = await dredis("proxy", "--config", file).catch((e) => e);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`dredis: invalid proxy config ${file}:\\n  - workers: Too small`));

  const missing = await dredis("proxy", "--config", join(dir, "nope.yaml")).catch((e) => e);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read proxy config .*nope\.yaml: ENOENT/);

  await writeFile(file, "seeds: [unclosed\n");
  const bad = await dredis("proxy", "--config", file).catch((e) => e);
  assert.match(bad.stderr, /is not valid YAML\/JSON/);
});
