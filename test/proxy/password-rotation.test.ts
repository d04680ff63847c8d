/**
 * The client side of a password rotation: while `previousClientPassword` is set, the proxy's
 * default user takes both passwords (as a Redis user with two `>` passwords does), so clients
 * moving to the new password while proxies roll are never refused; dropping it (SIGHUP reload)
 * refuses the old one again. Found by a Docker stack rotation under the real engine: new endpoint
 * connections failed for ~4 s while each proxy knew only one of the two passwords.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster } from "../support/redis.ts";
import { startTestProxy } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";
import { liveFields, parseProxyConfig } from "../../src/proxy/config.ts";

const WRONGPASS = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

async function authReply(port: number, ...args: string[]): Promise<string> {
  const client = await RawClient.connect(port);
  try {
    return (await client.command("AUTH", ...args)).toString();
  } finally {
    client.close();
  }
}

test("during a rotation the proxy accepts the new and the previous client password, and only the new once it is dropped", async (t) => {
  const cluster = await startCluster(t, { masters: 1, replicas: 0 });
  const proxy = await startTestProxy(t, cluster, {
    clientPassword: "new-pass",
    previousClientPassword: "old-pass",
  });
  assert.equal(await authReply(proxy.port, "new-pass"), "+OK\r\n");
  assert.equal(await authReply(proxy.port, "old-pass"), "+OK\r\n");
  assert.equal(await authReply(proxy.port, "default", "old-pass"), "+OK\r\n");
  assert.equal(await authReply(proxy.port, "other-pass"), WRONGPASS);

  // Rotation step 2: the config loses previousClientPassword and the proxy reloads it.
  const { previousClientPassword: _dropped, ...rest } = proxy.context.config;
  proxy.reload(liveFields({ ...rest, previousClientPassword: undefined }));
  assert.equal(await authReply(proxy.port, "old-pass"), WRONGPASS);
  assert.equal(await authReply(proxy.port, "new-pass"), "+OK\r\n");
});

test("previousClientPassword without clientPassword (also beside users.default) is a config error that says why", () => {
  assert.throws(
    () => parseProxyConfig({ seeds: ["127.0.0.1:7000"], previousClientPassword: "old" }),
    /previousClientPassword is set without clientPassword/,
  );
  assert.throws(
    () =>
      parseProxyConfig({
        seeds: ["127.0.0.1:7000"],
        previousClientPassword: "old",
        users: { default: "on >new ~* +@all" },
      }),
    /previousClientPassword is set without clientPassword: .*give that user both passwords/,
  );
});
