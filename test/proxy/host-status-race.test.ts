/**
 * A worker's death and the health endpoints at once. Between a worker's death and node:cluster's
 * "exit" event its IPC channel is closed while the primary still lists it; /status and /readyz
 * ask every listed worker for its status, and sending to a closed channel raises an "error" event
 * on the worker that, unheard, used to end the primary: the whole host down because a readiness
 * probe came at the wrong moment.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster, until } from "../support/redis.ts";
import { startProxyHost } from "../support/proxy.ts";

test("health requests while a worker dies: the primary answers throughout and replaces the worker", async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 });
  const host = await startProxyHost(t, cluster, { workers: 2 });
  for (let round = 0; round < 3; round++) {
    const before = await host.status();
    const victim = before.workers.find((w) => w !== null && w.index === 0)!;
    // Probes in flight before, during and after the kill, as a kubelet's and a scraper's would be.
    let stop = false;
    let failed = "";
    const probes = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop) {
          const path = Math.random() < 0.5 ? "/status" : "/readyz";
          await fetch(`http://127.0.0.1:${host.adminPort}${path}`)
            .then((r) => r.arrayBuffer())
            .catch((err: Error) => (failed ||= `${path}: ${err.message}`));
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    process.kill(victim.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await probes;
    assert.equal(failed, "", `round ${round}: every probe answered (the primary stayed up)`);
    await until(
      async () => {
        const now = await host.status();
        return now.workers.every((w) => w !== null && w.ready && w.pid !== victim.pid);
      },
      30_000,
      `round ${round}: the killed worker to be replaced`,
    );
  }
});
