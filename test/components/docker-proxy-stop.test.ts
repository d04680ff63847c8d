/**
 * A Docker proxy host that is replaced (a new password, image or config) or deleted (fewer
 * proxyHosts) drains first. Found by `pulumi up` of the dev stack under the real engine: during
 * the password rotation each proxy container was removed in under half a second, and a writer
 * through the endpoint saw "Server closed the connection". The provider's delete stops a container
 * with `destroyGraceSeconds` as the timeout, 0 when unset: a SIGKILL at once, so the host's drain
 * on SIGTERM (src/proxy/host.ts) never ran.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DRAIN_TIMEOUT_MS } from "../../src/proxy/host.ts";
import { installMocks, ofType, startRun, type Recorded } from "./support/mocks.ts";
import { stackSpec } from "./support/stack-config.ts";

installMocks();
const { createStack } = await import("../../components/stack.ts");

const CONTAINER = "docker:index/container:Container";
/** The host's drain, and the 5 s after it at which the host kills a worker still draining. */
const DRAIN_BUDGET_SECONDS = DRAIN_TIMEOUT_MS / 1000 + 5;

/** The seconds between the provider's SIGTERM and its SIGKILL when it deletes the container. */
function deleteGraceSeconds(container: Recorded): number {
  const grace = container.inputs["destroyGraceSeconds"];
  return typeof grace === "number" && grace > 0 ? grace : 0;
}

async function proxyHosts(mode: "load-balanced" | "master-backup"): Promise<Recorded[]> {
  const run = startRun();
  createStack(
    { name: "redis", spec: { ...stackSpec("dev"), proxyMode: mode }, password: "pw-1234" },
    run.opts,
  );
  const hosts = ofType(await run.settle(), CONTAINER).filter((c) => /^redis-proxy-\d+$/.test(c.name));
  assert.equal(hosts.length, 2);
  return hosts;
}

for (const mode of ["load-balanced", "master-backup"] as const)
  test(`${mode}: a deleted or replaced proxy host gets its whole drain before the kill`, async () => {
    for (const host of await proxyHosts(mode)) {
      assert.ok(
        deleteGraceSeconds(host) > DRAIN_BUDGET_SECONDS,
        `${host.name}: killed ${deleteGraceSeconds(host)} s after SIGTERM; its drain takes up to ${DRAIN_BUDGET_SECONDS} s`,
      );
      // `docker stop` and a stopping Docker engine give it as long.
      assert.equal(host.inputs["stopTimeout"], deleteGraceSeconds(host), host.name);
    }
  });
