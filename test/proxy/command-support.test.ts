import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { list } from "@ioredis/commands";
import { renderCommandSupport } from "../../src/proxy/command-support.ts";

test("docs/commands.md is what the command table renders (run npm run docs:commands)", async () => {
  const committed = await readFile(new URL("../../docs/commands.md", import.meta.url), "utf8");
  assert.equal(committed, renderCommandSupport());
});

test("the support table lists every command of @ioredis/commands", () => {
  const rendered = renderCommandSupport();
  for (const name of list) {
    assert.ok(rendered.includes(`| \`${name.toUpperCase()}`), `${name} is missing`);
  }
  assert.match(rendered, /\| `SCAN` \| broadcast by the busy proxy \|/);
  assert.match(rendered, /\| `MGET` \| routed by slot, split by the busy proxy \|/);
  assert.match(rendered, /\| `FLUSHALL` \| broadcast by the busy proxy \|/);
  assert.match(rendered, /\| `CLUSTER RESET` \| refused \|/);
});
