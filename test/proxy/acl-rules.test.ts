/**
 * The rule parser and checker on their own: how rules fold into what ACL LIST shows, the wording
 * the proxy picks by the shards' version, and commands newer than the captured table. (What the
 * rules allow is compared with redis-server itself in acl-matrix.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseUser, splitRules } from "../../src/proxy/acl/rules.ts";
import { checkCommand, Denied } from "../../src/proxy/acl/users.ts";
import { permissionDenial } from "../../src/proxy/acl/session.ts";
import { CommandView } from "../../src/proxy/command-view.ts";
import type { CommandSpec, Session } from "../../src/proxy/command-spec.ts";

function view(...args: string[]): CommandView {
  const buf = Buffer.from(args.join(""), "latin1");
  const offsets = new Int32Array(args.length * 2);
  let at = 0;
  args.forEach((arg, i) => {
    offsets[i * 2] = at;
    at += arg.length;
    offsets[i * 2 + 1] = at;
  });
  return new CommandView().set(buf, 0, buf.length, args.length, offsets);
}

test("command rules are kept as given, a repeated one moved to its last place, +@all/-@all starting afresh", () => {
  const describe = (rules: string) => parseUser("u", rules).describe();
  assert.equal(describe("on nopass +get +set -get"), "user u on nopass resetchannels -@all +set -get");
  assert.equal(describe("+@read +get nocommands +ping"), "user u off resetchannels -@all +ping");
  assert.equal(describe("allcommands -@dangerous"), "user u off resetchannels +@all -@dangerous");
  assert.equal(describe("+@all -get nocommands"), "user u off resetchannels -@all");
  assert.equal(describe("~a:* %R~b:* %W~c:* ~b:* allchannels"), "user u off ~a:* ~b:* %W~c:* &* -@all");
  assert.equal(describe("on >x ~a:* &c reset"), "user u off sanitize-payload resetchannels -@all");
  assert.equal(
    describe("+select|0 +select|1 +client|id"),
    "user u off resetchannels -@all +select|0 +select|1 +client|id",
  );
});

test("a selector in parentheses is one rule, spaces inside kept", () => {
  assert.deepEqual(splitRules(" on  (~a:* +get)  (%R~b:*   +mget) +set "), [
    "on",
    "(~a:* +get)",
    "(%R~b:* +mget)",
    "+set",
  ]);
});

test("a command newer than the captured table runs only for a user with every command and every key", () => {
  const newer = view("NEWCMD", "k");
  assert.equal(checkCommand(parseUser("u", "on nopass +@all ~*"), "newcmd", newer).denied, Denied.None);
  assert.equal(checkCommand(parseUser("u", "on nopass +@all ~k*"), "newcmd", newer).denied, Denied.Command);
  assert.equal(
    checkCommand(parseUser("u", "on nopass +@all -get ~*"), "newcmd", newer).denied,
    Denied.Command,
  );
});

test("NOPERM is worded as the shards' Redis words it: 7.0 or 7.2 and later", () => {
  const user = parseUser("app", "on nopass ~app:* &c +get +publish");
  const session = (version: string) =>
    ({ aclUser: user, context: { router: { serverVersion: version } } }) as unknown as Session;
  const spec = (name: string) => ({ name }) as CommandSpec;
  const cases: [string, CommandView, string, string][] = [
    [
      "set",
      view("SET", "app:1", "v"),
      "this user has no permissions to run the 'set' command",
      "User app has no permissions to run the 'set' command",
    ],
    [
      "get",
      view("GET", "x"),
      "this user has no permissions to access one of the keys used as arguments",
      "No permissions to access a key",
    ],
    [
      "publish",
      view("PUBLISH", "d", "m"),
      "this user has no permissions to access one of the channels used as arguments",
      "No permissions to access a channel",
    ],
  ];
  for (const [name, args, v70, v72] of cases) {
    assert.equal(permissionDenial(session("7.0.15"), spec(name), args)?.toString(), `-NOPERM ${v70}\r\n`);
    assert.equal(permissionDenial(session("7.2.4"), spec(name), args)?.toString(), `-NOPERM ${v72}\r\n`);
    assert.equal(permissionDenial(session("8.0.0"), spec(name), args)?.toString(), `-NOPERM ${v72}\r\n`);
  }
  assert.equal(permissionDenial(session("7.0.15"), spec("get"), view("GET", "app:1")), null);
});
