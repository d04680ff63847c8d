/** The Pulumi program (index.ts) run under mocks with the dev stack's config, as `pulumi up` runs it. */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { installMocks, unwrap } from "./support/mocks.ts";
import { stackFileConfig } from "./support/stack-config.ts";

installMocks();
pulumi.runtime.setAllConfig(
  Object.fromEntries(
    Object.entries({ ...stackFileConfig("dev"), name: "app-cache", password: "s3cret" }).map(([k, v]) => [
      `distributed-redis:${k}`,
      v,
    ]),
  ),
  ["distributed-redis:password"],
);

test("index.ts builds the stack from its config and exports what apps need", async () => {
  const program = await import("../../index.ts");
  assert.equal(await unwrap(program.endpoint), "127.0.0.1:6380");
  assert.deepEqual(await unwrap(program.proxyAddresses), [
    "app-cache-proxy-0:6380",
    "app-cache-proxy-1:6380",
  ]);
  assert.equal((await unwrap(program.seedNodes)).length, 6);
  assert.equal(await unwrap(program.password), "s3cret");
  assert.equal(await pulumi.isSecret(program.password), true);
  assert.match(await unwrap(program.topologyHash), /^[0-9a-f]{16}$/);
  assert.equal(await unwrap(program.dockerNetwork), "app-cache-net");
});
