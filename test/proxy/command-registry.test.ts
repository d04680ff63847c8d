import { test } from "node:test";
import assert from "node:assert/strict";
import { BROADCAST, CommandTable, LOCAL, Mode, SESSION, type CommandSpec } from "../../src/proxy/commands.ts";
import { BUSY_COMMANDS, INTERNAL_COMMANDS } from "../../src/proxy/busy/commands.ts";

const table = new CommandTable();

/** Every command and subcommand of the table. */
function everySpec(): CommandSpec[] {
  return table.all().flatMap((spec) => [spec, ...(spec.subcommands?.values() ?? [])]);
}

function specNamed(name: string): CommandSpec | undefined {
  const [top, sub] = name.split("|") as [string, string | undefined];
  const spec = table.get(top);
  return sub === undefined ? spec : spec?.subcommands?.get(sub);
}

test("every command the session runs itself has a handler, and only those", () => {
  for (const spec of everySpec()) {
    const own = spec.mode === Mode.Local || spec.mode === Mode.Session;
    assert.equal(typeof spec.handler === "function", own, `${spec.name}: mode and handler disagree`);
  }
});

test("every session handler names a Redis command that runs in its mode", () => {
  for (const [handlers, mode] of [
    [LOCAL, Mode.Local],
    [SESSION, Mode.Session],
  ] as const) {
    for (const name of Object.keys(handlers)) {
      const spec = specNamed(name);
      assert.ok(spec !== undefined, `handler for "${name}", which is not a command`);
      assert.equal(spec.mode, mode, `${name}: its handler's mode is not the command's`);
      assert.equal(spec.handler, handlers[name as keyof typeof handlers]);
    }
  }
});

test("every command the busy proxy runs has a handler there, and every handler a command", () => {
  const sent = everySpec()
    .filter((spec) => spec.mode === Mode.Broadcast || spec.splittable)
    .map((spec) => spec.name);
  assert.deepEqual([...BUSY_COMMANDS.keys()].sort(), [...sent, ...INTERNAL_COMMANDS].sort());
  for (const name of BROADCAST) assert.equal(specNamed(name)?.mode, Mode.Broadcast, name);
});

test("a refused or unsupported command says why", () => {
  for (const spec of everySpec()) {
    if (spec.mode === Mode.Denied || spec.mode === Mode.Unsupported)
      assert.ok(spec.reason, `${spec.name} has no reason for its refusal`);
  }
});
