/** The Pulumi program (index.ts) refuses a bad stack config before declaring anything. */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { installMocks } from "./support/mocks.ts";

installMocks();
pulumi.runtime.setAllConfig({
  "distributed-redis:platform": "docker",
  "distributed-redis:shards": "2",
  "distributed-redis:proxyMod": "load-balanced",
});

test("index.ts fails naming each bad key as the stack file spells it", async () => {
  await assert.rejects(import("../../index.ts"), (err: Error) => {
    assert.equal(
      err.message,
      "invalid stack config:\n" +
        "  - distributed-redis:shards: Redis Cluster needs at least 3 shards\n" +
        "  - distributed-redis:proxyMod: unknown key",
    );
    return true;
  });
});
