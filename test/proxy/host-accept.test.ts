import { test } from "node:test";
import assert from "node:assert/strict";
import { startCluster } from "../support/redis.ts";
import { startProxyHost } from "../support/proxy.ts";
import { RawClient } from "../support/raw-client.ts";

/** `promise`, or a rejection saying `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// Round-robin hands every connection from the primary to a worker over IPC (src/proxy/host.ts):
// half of what a short-lived connection costs. A host of one worker has no one to balance, so its
// worker accepts for itself: with the primary stopped, a new client is still served.
test("a host of one worker accepts its own connections: a new client is served while the primary is stopped", async (t) => {
  const cluster = await startCluster(t, { masters: 1, replicas: 0 });
  const host = await startProxyHost(t, cluster, { workers: 1 });
  const warm = await RawClient.connect(host.port);
  assert.equal((await warm.command("PING")).toString(), "+PONG\r\n");
  warm.close();

  const primary = host.process.pid!;
  process.kill(primary, "SIGSTOP");
  try {
    const client = await within(RawClient.connect(host.port), 5000, "connect timed out");
    t.after(() => client.close());
    const reply = await within(
      client.command("SET", "accepted:by", "worker"),
      5000,
      "no reply within 5 s while the primary was stopped: the connection waited for it to hand it over",
    );
    assert.equal(reply.toString(), "+OK\r\n");
    assert.equal((await client.command("GET", "accepted:by")).toString(), "$6\r\nworker\r\n");
  } finally {
    process.kill(primary, "SIGCONT");
  }
});
