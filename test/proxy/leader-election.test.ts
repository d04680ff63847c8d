import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import { ACTIVE_LABEL, LeaderElector } from "../../src/proxy/leader-election.ts";
import { dredisLaunch } from "../support/proxy.ts";
import { tempDir, until } from "../support/redis.ts";

/**
 * A stand-in for the two Kubernetes API endpoints leader election uses (a Lease, and pod labels),
 * with the API's optimistic concurrency (resourceVersion, 409 on conflict) and bearer tokens. No
 * Kubernetes API server can run on these machines; this is the protocol, not a mock of Redis.
 */
class FakeKubernetes {
  lease: { metadata: { name: string; resourceVersion: string }; spec: Record<string, unknown> } | undefined;
  private version = 0;
  readonly labels = new Map<string, Record<string, string>>();
  /** Tokens whose requests fail, as if that pod were cut off from the API server. */
  readonly partitioned = new Set<string>();
  readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
        if (!["pod-a", "pod-b"].includes(token)) return res.writeHead(401).end();
        if (this.partitioned.has(token)) return res.writeHead(503).end();
        const url = req.url ?? "";
        const send = (status: number, value?: unknown) =>
          res
            .writeHead(status, { "content-type": "application/json" })
            .end(value === undefined ? "" : JSON.stringify(value));
        if (url.startsWith("/apis/coordination.k8s.io/v1/namespaces/ns/leases")) {
          if (req.method === "GET")
            return this.lease ? send(200, this.lease) : send(404, { reason: "NotFound" });
          if (req.method === "POST") {
            if (this.lease) return send(409, { reason: "AlreadyExists" });
            const created = JSON.parse(body);
            this.lease = {
              ...created,
              metadata: { ...created.metadata, resourceVersion: String(++this.version) },
            };
            return send(201, this.lease);
          }
          if (req.method === "PUT") {
            const updated = JSON.parse(body);
            if (!this.lease || updated.metadata.resourceVersion !== this.lease.metadata.resourceVersion)
              return send(409, { reason: "Conflict" });
            this.lease = {
              ...updated,
              metadata: { ...updated.metadata, resourceVersion: String(++this.version) },
            };
            return send(200, this.lease);
          }
        }
        const pod = /^\/api\/v1\/namespaces\/ns\/pods\/([^/]+)$/.exec(url);
        if (pod && req.method === "PATCH") {
          assert.equal(req.headers["content-type"], "application/merge-patch+json");
          const labels = { ...(this.labels.get(pod[1]!) ?? {}) };
          for (const [k, v] of Object.entries(
            JSON.parse(body).metadata.labels as Record<string, string | null>,
          )) {
            if (v === null) delete labels[k];
            else labels[k] = v;
          }
          this.labels.set(pod[1]!, labels);
          return send(200, { metadata: { name: pod[1], labels } });
        }
        send(404, { reason: "NotFound" });
      });
    });
  }

  active(): string[] {
    return [...this.labels]
      .filter(([, labels]) => labels[ACTIVE_LABEL] === "active")
      .map(([pod]) => pod)
      .sort();
  }
}

async function startFake(t: {
  after(fn: () => unknown): void;
}): Promise<{ fake: FakeKubernetes; url: string }> {
  const fake = new FakeKubernetes();
  await new Promise<void>((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((r) => fake.server.close(r)));
  return { fake, url: `http://127.0.0.1:${(fake.server.address() as { port: number }).port}` };
}

function elector(url: string, pod: string): LeaderElector {
  return new LeaderElector({
    apiUrl: url,
    token: pod,
    namespace: "ns",
    leaseName: "cache-proxy-leader",
    podName: pod,
    leaseDurationSeconds: 1,
    renewIntervalMs: 100,
    log: pino({ level: "silent" }),
  });
}

/** Two proxy pods campaigning for one Lease, pod-a elected first. */
async function twoPods(t: { after(fn: () => unknown): void }) {
  const { fake, url } = await startFake(t);
  const a = elector(url, "pod-a");
  const b = elector(url, "pod-b");
  t.after(() => Promise.all([a.stop(), b.stop()]));
  a.start();
  await until(() => a.leader, 5000, "pod-a to lead");
  b.start();
  return { fake, a, b };
}

test("one of two proxy pods holds the Lease and labels itself active; a cut-off leader is replaced after the lease expires", async (t) => {
  const { fake, a, b } = await twoPods(t);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(b.leader, false, "the second pod stays backup while the lease is renewed");
  assert.deepEqual(fake.active(), ["pod-a"]);
  assert.equal(fake.lease!.spec.holderIdentity, "pod-a");

  fake.partitioned.add("pod-a");
  const cut = Date.now();
  await until(() => b.leader && fake.active().includes("pod-b"), 5000, "pod-b to take over");
  const takeover = Date.now() - cut;
  t.diagnostic(`backup took over ${takeover} ms after the leader was cut off (lease 1 s)`);
  assert.ok(takeover >= 900, "not before the lease expired");
  await until(() => !a.leader, 5000, "the cut-off leader to step down");

  fake.partitioned.delete("pod-a");
  await until(() => fake.active().join() === "pod-b", 5000, "the old leader to remove its label once it can");
  assert.equal(fake.lease!.spec.holderIdentity, "pod-b");
  assert.equal(fake.lease!.spec.leaseTransitions, 1);
});

test("a leader that stops (SIGTERM drain) hands over at once, without waiting for the lease to expire", async (t) => {
  const { fake, a, b } = await twoPods(t);
  await new Promise((r) => setTimeout(r, 300));
  const stopped = Date.now();
  await a.stop();
  assert.deepEqual(fake.active(), [], "the leader removed its label");
  await until(() => b.leader && fake.active().join() === "pod-b", 5000, "pod-b to take over");
  t.diagnostic(`handover took ${Date.now() - stopped} ms`);
  assert.ok(Date.now() - stopped < 900, "faster than the lease duration");
});

test("dredis proxy --leader-election outside Kubernetes names what is missing", async () => {
  const dir = await tempDir();
  await writeFile(join(dir, "proxy.yaml"), 'seeds: ["127.0.0.1:7000"]\n');
  const args = [...dredisLaunch.argv, "proxy", "--config", join(dir, "proxy.yaml"), "--leader-election"];
  const result = await promisify(execFile)(process.execPath, args, {
    env: { ...process.env, ...dredisLaunch.env, POD_NAME: "", POD_NAMESPACE: "", LEASE_NAME: "" },
  }).catch((err: { code: number; stderr: string }) => err);
  assert.equal((result as { code: number }).code, 1);
  assert.match(
    (result as { stderr: string }).stderr,
    /dredis: --leader-election needs the environment variables POD_NAME, POD_NAMESPACE, LEASE_NAME/,
  );
});
