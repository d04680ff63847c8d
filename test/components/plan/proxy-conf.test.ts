import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "yaml";
import { parseProxyConfig } from "../../../src/proxy/config.ts";
import { clusterSpecSchema } from "../../../components/plan/spec.ts";
import { PROXY_ADMIN_PORT } from "../../../src/contract.ts";
import { planCluster } from "../../../components/plan/topology.ts";
import { renderProxyConf } from "../../../components/plan/proxy-conf.ts";

test("the rendered proxy config parses with the proxy's own schema", () => {
  const plan = planCluster("redis", clusterSpecSchema.parse({ platform: "docker", shards: 3 }));
  const text = renderProxyConf({ seeds: plan.seeds, port: 6379, workers: 4, password: "s3cret: yes" });
  const config = parseProxyConfig(parse(text), "rendered proxy config");
  assert.deepEqual(config.seeds, plan.seeds);
  assert.deepEqual(config.listen, { host: "0.0.0.0", port: 6379 });
  assert.deepEqual(config.admin, { host: "0.0.0.0", port: PROXY_ADMIN_PORT });
  assert.equal(config.workers, 4);
  assert.equal(config.clientPassword, "s3cret: yes");
  assert.deepEqual(config.backendAuth, { password: "s3cret: yes" });
});
