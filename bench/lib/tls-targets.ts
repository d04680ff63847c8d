/**
 * The TLS pair of the side-by-side benchmark: a 3-master cluster serving TLS only (the local
 * platform's `--tls` nodes, certificates from its local CA) reached directly with
 * `redis-benchmark --cluster --tls`, and our proxy host (2 workers, compiled) serving TLS to
 * redis-benchmark and speaking TLS to those shards. Both read and write the same nodes, so the
 * pair shows what the proxy costs over TLS, as "cluster direct" and "dredis 2w" do in the clear.
 */
import { join } from "node:path";
import { Redis } from "ioredis";
import { down, stopPid, topologyOf, up } from "../../src/local/platform.ts";
import { freePorts } from "../../src/local/ports.ts";
import { localClientTls, localProxyTls } from "../../src/tls/local.ts";
import { startProxyHost, type Cleanups, type Target } from "./targets.ts";

export async function startTlsTargets(cleanups: Cleanups, dir: string): Promise<Target[]> {
  const platformDir = join(dir, "tls-cluster");
  const [port] = await freePorts(1);
  cleanups.after(async () => void (await down(platformDir)));
  const state = await up({
    dir: platformDir,
    shards: 3,
    replicas: 0,
    workers: 1,
    port: port!,
    basePort: 30_000 + Math.floor(Math.random() * 10_000),
    tls: true,
  });
  // The platform's own proxy runs from the sources; the measured one is the compiled build, as for the plain pair.
  await stopPid(state.proxy.pid);
  const masters = topologyOf(state).shards.map((s) => s.master);
  // Same persistence as the plain cluster of the benchmark (none), so SETs cost alike.
  for (const address of masters) {
    const client = new Redis({
      host: "127.0.0.1",
      port: Number(address.split(":")[1]),
      tls: localClientTls(state.tls),
    });
    await client.config("SET", "appendonly", "no");
    client.disconnect();
  }
  const [proxyPort] = await freePorts(1);
  const proxy = await startProxyHost(cleanups, dir, masters.slice(0, 1), 2, {
    config: localProxyTls(state.tls!, proxyPort!),
  });
  const files = {
    ca: join(state.tls!.dir, "ca.crt"),
    cert: join(state.tls!.dir, "client.crt"),
    key: join(state.tls!.dir, "client.key"),
  };
  const serverPids = () => state.nodes.map((n) => n.pid);
  const counterSources = () =>
    masters.map((address) => ({ port: Number(address.split(":")[1]), tls: localClientTls(state.tls) }));
  return [
    {
      id: "cluster-tls",
      label: "cluster direct, TLS",
      port: Number(masters[0]!.split(":")[1]),
      cluster: true,
      tls: files,
      proxyPids: () => [],
      serverPids,
      counterSources,
    },
    {
      id: "proxy-tls",
      label: "dredis 2w, TLS",
      port: proxyPort!,
      cluster: false,
      tls: files,
      proxyPids: proxy.pids,
      serverPids,
      counterSources,
    },
  ];
}
