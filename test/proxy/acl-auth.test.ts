/**
 * Authentication with ACL users: the default user from `clientPassword` (as Redis's requirepass
 * makes it) or from `users.default`, AUTH / HELLO AUTH / RESET against redis-server with the same
 * users, config errors that name the bad rule, and users changed by a SIGHUP reload.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { startCluster, startStandalone, until, type Cleanup } from "../support/redis.ts";
import { startProxyHost, startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { parseProxyConfig } from "../../src/proxy/config.ts";
import { CATEGORIES } from "../../src/proxy/acl/command-acl.ts";
import { splitRules } from "../../src/proxy/acl/rules.ts";

const APP = "on >app-pass ~app:* +@read +@connection +acl|whoami";

/** A proxy with `config`, and a standalone redis given the same users (`setup` run as its default user). */
async function pair(
  t: Cleanup,
  config: Record<string, unknown>,
  setup: string[][],
): Promise<[number, number]> {
  const cluster = await startCluster(t, { masters: 1, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, config);
  const redis = await startStandalone(t);
  const admin = await RawClient.connect(redis.port);
  for (const command of setup) assert.match((await admin.command(...command)).toString(), /^\+OK/);
  admin.close();
  return [proxy.port, redis.port];
}

/** Each command on a fresh connection to each, in order; HELLO's map masked (ids and mode differ by design). */
async function sameReplies(ports: [number, number], commands: string[][]): Promise<string[]> {
  const [viaProxy, direct] = await Promise.all(
    ports.map(async (port) => {
      const client = await RawClient.connect(port);
      const replies: string[] = [];
      for (const command of commands) {
        const reply = (await client.command(...command)).toString("latin1");
        replies.push(
          `${command.join(" ")} -> ${reply.startsWith("%") || reply.startsWith("*14") ? "(hello)" : reply}`,
        );
      }
      client.close();
      return replies;
    }),
  );
  assert.deepEqual(viaProxy, direct);
  return viaProxy!;
}

test("with users and clientPassword, the default user needs that password as with requirepass, other users their own", async (t) => {
  const ports = await pair(t, { clientPassword: "secret", users: { app: APP } }, [
    ["ACL", "SETUSER", "app", ...splitRules(APP)],
    ["CONFIG", "SET", "requirepass", "secret"],
  ]);
  const replies = await sameReplies(ports, [
    ["GET", "app:1"],
    ["GET"],
    ["NOSUCH"],
    ["CLIENT", "NOSUCH"],
    ["RESET"],
    ["HELLO", "3"],
    ["AUTH", "wrong"],
    ["AUTH", "default", "wrong"],
    ["AUTH", "secret"],
    ["ACL", "WHOAMI"],
    ["AUTH", "app", "app-pass"],
    ["ACL", "WHOAMI"],
    ["GET", "other"],
    ["RESET"],
    ["ACL", "WHOAMI"],
    ["HELLO", "3", "AUTH", "app", "wrong"],
    ["HELLO", "2", "AUTH", "app", "app-pass"],
    ["ACL", "WHOAMI"],
  ]);
  assert.match(replies[0]!, /NOAUTH/);
  assert.match(replies[11]!, /\$3\r\napp/);
  assert.match(replies[12]!, /NOPERM/);
});

test("users.default defines the default user: off, everyone must AUTH as a user of their own", async (t) => {
  const ports = await pair(t, { users: { default: "off", app: APP } }, [
    ["ACL", "SETUSER", "app", ...splitRules(APP)],
    ["ACL", "SETUSER", "default", "reset", "off"],
  ]);
  await sameReplies(ports, [
    ["PING"],
    ["AUTH", "anything"],
    ["AUTH", "default", "anything"],
    ["HELLO", "3", "AUTH", "default", "x"],
    ["AUTH", "app", "app-pass"],
    ["PING"],
    ["ACL", "WHOAMI"],
  ]);
  // CLIENT INFO and CLIENT LIST name each client's user, as Redis's do.
  const client = await RawClient.connect(ports[0]);
  await client.command("AUTH", "app", "app-pass");
  assert.match((await client.command("CLIENT", "INFO")).toString(), / user=app resp=2 /);
  client.close();
});

test("a bad rule, or two sources for the default user's password, fail the config with the rule and the fix named", () => {
  const problem = (users: Record<string, string>, extra: Record<string, unknown> = {}) => {
    try {
      parseProxyConfig({ seeds: ["127.0.0.1:7000"], users, ...extra });
    } catch (err) {
      return (err as Error).message;
    }
    return "accepted";
  };
  const categories = CATEGORIES.map((c) => "@" + c).join(" ");
  assert.equal(
    problem({ app: "on >p ~app:* +@reads" }),
    `invalid proxy config:\n  - users.app: rule '+@reads': Unknown command or category name in ACL (no category 'reads'; the categories are ${categories})`,
  );
  assert.equal(
    problem({ app: "on +gett" }),
    "invalid proxy config:\n  - users.app: rule '+gett': Unknown command or category name in ACL (no command 'gett')",
  );
  assert.match(
    problem({ app: "on allkeys ~app:*" }),
    /users\.app: rule '~app:\*': Adding a pattern after the \* pattern \(or the 'allkeys' flag\)/,
  );
  assert.match(
    problem({ app: "on &* &x" }),
    /users\.app: rule '&x': Adding a pattern after the \* pattern \(or the 'allchannels' flag\)/,
  );
  assert.match(
    problem({ app: "on %X~app:*" }),
    /users\.app: rule '%X~app:\*': Syntax error \(a key permission is %R~, %W~ or %RW~/,
  );
  assert.match(
    problem({ app: "on #abc" }),
    /users\.app: rule '#abc': The password hash must be exactly 64 characters/,
  );
  assert.match(
    problem({ app: "on <never-set" }),
    /users\.app: rule '<never-set': The password you are trying to remove/,
  );
  assert.match(problem({ app: "on (~a +get" }), /users\.app: rule '\(~a \+get': Unmatched parenthesis/);
  assert.match(
    problem({ app: "on +config|get|x" }),
    /users\.app: rule '\+config\|get\|x': Allowing first-arg of a subcommand/,
  );
  assert.match(problem({ app: "on sometimes" }), /users\.app: rule 'sometimes': Syntax error/);
  assert.match(
    problem({ "two words": "on" }),
    /users\.two words: rule 'two words': a user name can't be empty or contain spaces/,
  );
  assert.equal(
    problem({ default: "on >p" }, { clientPassword: "q" }),
    "invalid proxy config:\n  - clientPassword and users.default both set the default user's password: put it in users.default ('>password' or '#<sha256>') and remove clientPassword, or drop users.default to keep clientPassword",
  );
  assert.equal(
    problem({ app: "on >p ~app:* %R~x:* %W~y:* %RW~z:* &c:* +@read -get +client|id +select|0 (~b:* +set)" }),
    "accepted",
  );
});

test("SIGHUP reload: new rules apply to connected clients and new AUTHs; a removed user's clients, and subscribers whose channels changed, are disconnected", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  // One worker: once a client sees the new rules, the reload reached every client.
  const host = await startProxyHost(t, cluster, {
    workers: 1,
    users: {
      app: "on >one ~app:* +get",
      ops: "on >ops ~* +@all",
      sub: "on >sub &news:* +subscribe +ping",
      keep: "on >keep &news:* +subscribe +ping",
    },
  });
  const [app, ops, sub, keep] = await Promise.all([1, 2, 3, 4].map(() => RawClient.connect(host.port)));
  assert.equal((await app!.command("AUTH", "app", "one")).toString(), "+OK\r\n");
  assert.equal((await ops!.command("AUTH", "ops", "ops")).toString(), "+OK\r\n");
  for (const [client, name] of [
    [sub!, "sub"],
    [keep!, "keep"],
  ] as const) {
    assert.equal((await client.command("AUTH", name, name)).toString(), "+OK\r\n");
    assert.match((await client.command("SUBSCRIBE", "news:1")).toString(), /subscribe/);
  }
  assert.match((await app!.command("GET", "other:1")).toString(), /^-NOPERM/);

  const config = JSON.parse(await readFile(host.configFile, "utf8"));
  const users = {
    app: "on >two ~* +get",
    sub: "on >sub &sport:* +subscribe +ping",
    keep: "on >keep &news:* +subscribe +ping",
  };
  await writeFile(host.configFile, JSON.stringify({ ...config, users }));
  host.process.kill("SIGHUP");
  await until(
    async () => (await app!.command("GET", "other:1")).toString() === "$-1\r\n",
    10_000,
    "app's new rules",
  );
  await ops!.closed;
  await sub!.closed;
  // A subscriber whose channels stayed the same stays subscribed (a subscribed RESP2 PING).
  assert.equal((await keep!.command("PING")).toString(), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  keep!.close();
  const fresh = await RawClient.connect(host.port);
  assert.equal(
    (await fresh.command("AUTH", "app", "one")).toString(),
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
  );
  assert.equal((await fresh.command("AUTH", "app", "two")).toString(), "+OK\r\n");
  fresh.close();
  app!.close();
});
