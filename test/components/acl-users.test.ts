/**
 * DistributedRedis `users` under mocks: the rules reach every proxy host's config (a secret), next
 * to the default user's password; a bad rule or a `default` entry is refused with the user named.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { find, installMocks, startRun, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";
import { checkUsers } from "../../components/plan/proxy-conf.ts";
import { parseProxyConfig } from "../../src/proxy/config.ts";

installMocks();
const { DistributedRedis } = await import("../../components/distributed-redis.ts");

const USERS = {
  app: "on #0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829 ~app:* &events:* +@read +@write -@dangerous",
  reporting: "on >plain-is-hashed-at-load %R~app:* +@read",
};
const CONTAINER = "docker:index/container:Container";
let resources: Recorded[];

before(async () => {
  const run = startRun();
  new DistributedRedis("cache", { ...stackSpec("dev"), password: "pw-123456789", users: USERS }, run.opts);
  resources = await run.settle();
});

test("every proxy host's config carries the users beside the default user's password, as a secret", () => {
  const proxies = resources.filter((r) => r.type === CONTAINER && /^cache-proxy-\d+$/.test(r.name));
  assert.ok(proxies.length >= 2);
  for (const proxy of proxies) {
    const [upload] = proxy.inputs["uploads"] as { file: string; content: string }[];
    const config = parseProxyConfig(parseYaml(upload!.content), proxy.name);
    assert.deepEqual(config.users, USERS);
    assert.equal(config.clientPassword, "pw-123456789");
    assert.ok(proxy.secretInputs.includes("uploads"), `${proxy.name}'s uploads are secret`);
  }
  assert.equal(find(resources, CONTAINER, "cache-proxy-0").inputs["name"], "cache-proxy-0");
});

test("users are checked: a bad rule names the user and the rule, `default` is the deployment's password", () => {
  assert.throws(() => checkUsers({ app: "on +@reads" }, "DistributedRedis args"), {
    message:
      /^invalid DistributedRedis args:\n {2}- users\.app: rule '\+@reads': Unknown command or category name in ACL/,
  });
  assert.throws(() => checkUsers({ default: "off", app: "on" }, "DistributedRedis args"), {
    message:
      "invalid DistributedRedis args:\n  - users.default: the default user is the deployment's `password` " +
      "(health checks and the admin tooling use it); give applications users of their own",
  });
  assert.deepEqual(checkUsers(USERS, "DistributedRedis args"), USERS);
});
