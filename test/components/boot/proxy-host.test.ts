/**
 * The proxy.yaml the platforms deploy boots as a real `dredis proxy` host (primary, workers, busy
 * proxy) and serves clients over every shard, with the password the platform configured.
 */
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { Redis } from "ioredis";
import { parse } from "yaml";
import { freePorts } from "../../../src/local/ports.ts";
import { slotOf } from "../../../src/cluster/key-slot.ts";
import { RawClient } from "../../support/raw-client.ts";
import { proxyClient, spawnProxyHostFromFile } from "../../support/proxy.ts";
import type { RedisServer } from "../../../src/local/redis-server.ts";
import { startCluster, tempDir, type TestCluster } from "../../support/redis.ts";
import { deployStack, dockerProxyYaml, localizeProxyYaml, requirePassword } from "./deployed.ts";

// Characters that YAML and inline AUTH would both trip over if the rendering quoted them badly.
const PASSWORD = "s3cret: #yes 'x\"";

/** One key per master: the first `key-N` whose slot that master serves. */
async function keysOnEveryMaster(t: TestContext, cluster: TestCluster): Promise<string[]> {
  const admin = directClient(t, cluster.masters[0]!);
  const shards = (await admin.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
  return shards.map(([first, last]) => {
    for (let i = 0; ; i++) {
      const slot = slotOf(`key-${i}`);
      if (slot >= first && slot <= last) return `key-${i}`;
    }
  });
}

/** A connection straight to a shard node, with the cluster's password. */
function directClient(t: TestContext, node: RedisServer): Redis {
  const client = new Redis({ host: node.host, port: node.port, password: PASSWORD });
  t.after(() => client.disconnect());
  return client;
}

async function bootRenderedConfig(t: TestContext, rendered: string, cluster: TestCluster) {
  const [port, adminPort] = await freePorts(2);
  const dir = await tempDir("dredis-boot-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "proxy.yaml");
  await writeFile(
    file,
    localizeProxyYaml(rendered, { seeds: cluster.seeds, port: port!, adminPort: adminPort! }),
  );
  const host = await spawnProxyHostFromFile(t, file, {
    ready: async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200,
  });
  return { host, port: port!, adminPort: adminPort! };
}

describe("the deployed proxy config boots a real proxy host", () => {
  for (const [platform, stack, extract] of [
    ["docker", "dev", (d) => dockerProxyYaml(d, 0)],
    ["kubernetes", "staging", (d) => d.secretData("cache-proxy-config", "proxy.yaml")],
  ] as const satisfies readonly [
    string,
    "dev" | "staging",
    (d: Awaited<ReturnType<typeof deployStack>>) => string,
  ][]) {
    test(`${platform}: ready, password required, SET/GET and MSET/MGET served on every shard`, async (t) => {
      const deployed = await deployStack(stack, { proxyMode: "load-balanced" }, PASSWORD);
      const rendered = extract(deployed);
      const doc = parse(rendered) as { clientPassword?: string; backendAuth?: { password: string } };
      assert.equal(doc.clientPassword, PASSWORD, "the platform sets a client password");
      assert.equal(doc.backendAuth?.password, PASSWORD, "the platform sets backend auth");

      const cluster = await startCluster(t, { masters: 3, replicas: 0 });
      await requirePassword(cluster, PASSWORD);
      const { port } = await bootRenderedConfig(t, rendered, cluster);

      const anonymous = await RawClient.connect(port);
      t.after(() => anonymous.close());
      assert.match(String(await anonymous.command("SET", "k", "v")), /^-NOAUTH/, "no password: refused");
      assert.match(
        String(await anonymous.command("AUTH", "wrong")),
        /^-WRONGPASS/,
        "wrong password: refused",
      );
      assert.equal(String(await anonymous.command("AUTH", PASSWORD)), "+OK\r\n");

      const client = proxyClient(t, port, { password: PASSWORD });
      const keys = await keysOnEveryMaster(t, cluster);
      assert.equal(keys.length, 3);
      for (const key of keys) {
        assert.equal(await client.set(key, `value of ${key}`), "OK");
        assert.equal(await client.get(key), `value of ${key}`);
      }
      // Multi-key commands within one slot go straight to its shard (across slots they need the
      // busy proxy, which this branch does not have yet).
      for (const key of keys) {
        const pair = [`{${key}}:a`, `{${key}}:b`];
        assert.equal(await client.mset(pair[0]!, "A", pair[1]!, "B"), "OK");
        assert.deepEqual(await client.mget(...pair), ["A", "B"]);
      }
      // Each master holds its key and the MSET key sharing its hash slot (read there directly, with the password).
      const owners = await Promise.all(
        cluster.masters.map(async (m) => {
          const direct = directClient(t, m);
          return ((await direct.call("KEYS", "*")) as string[]).sort();
        }),
      );
      assert.deepEqual(
        owners.map((k) => k.length),
        [3, 3, 3],
        `keys per master: ${JSON.stringify(owners)}`,
      );
    });
  }
});
