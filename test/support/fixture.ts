/**
 * The servers a proxy test file compares against Redis itself: a cluster of 3 masters with a
 * replica each, a proxy worker over it with its busy proxy, a standalone redis-server holding the
 * same data as the reference, and admin connections to the masters. Stopped by the file's cleanup.
 */
import type { Redis } from "ioredis";
import type { RedisServer } from "../../src/local/redis-server.ts";
import { startTestProxy, type TestProxy } from "./proxy.ts";
import { startCluster, startStandalone, type Cleanup, type TestCluster } from "./redis.ts";

export interface ProxyAndReference {
  cluster: TestCluster;
  proxy: TestProxy;
  /** A standalone redis-server: what a client of one Redis would see. */
  reference: RedisServer;
  /** Admin connections to the cluster's masters, in master order. */
  masters: Redis[];
}

export async function startProxyAndReference(hooks: Cleanup): Promise<ProxyAndReference> {
  const cluster = await startCluster(hooks, { masters: 3, replicas: 1 });
  const proxy = await startTestProxy(hooks, cluster, {}, { busyProxy: true });
  const reference = await startStandalone(hooks);
  return { cluster, proxy, reference, masters: cluster.masters.map((m) => cluster.connect(m)) };
}
