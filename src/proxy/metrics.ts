/**
 * Prometheus metrics. Each worker keeps plain counters on its hot path (stats.ts) and
 * exposes them through prom-client when scraped; the primary serves `/metrics` on the admin port,
 * summed over the workers by prom-client's AggregatorRegistry.
 */
import { AggregatorRegistry, Counter, Gauge, register, type PrometheusContentType } from "prom-client";
import type { ProxyContext } from "./context.ts";

/** Registers this worker's metrics and answers the primary's requests for them. */
export function registerWorkerMetrics(context: ProxyContext): void {
  new AggregatorRegistry(); // installs the worker's listener for the primary's metric requests
  const { stats, router } = context;
  new Gauge({
    name: "dredis_clients_connected",
    help: "Client connections open on the proxy",
    collect() {
      this.set(context.clients.size);
    },
  });
  new Counter({
    name: "dredis_commands_total",
    help: "Commands received from clients",
    collect() {
      this.reset();
      this.inc(stats.commands);
    },
  });
  new Counter({
    name: "dredis_redirects_total",
    help: "MOVED, ASK, TRYAGAIN and CLUSTERDOWN replies the proxy handled for its clients",
    collect() {
      this.reset();
      this.inc(stats.redirects);
    },
  });
  new Counter({
    name: "dredis_backend_reconnects_total",
    help: "Reconnections to shard nodes after a lost connection",
    collect() {
      this.reset();
      this.inc(stats.reconnects);
    },
  });
  new Counter({
    name: "dredis_slot_map_reads_older_total",
    help: "Slot map reads skipped because their owners' config epochs were older than the map held (a node behind on a failover or a slot move)",
    collect() {
      this.reset();
      this.inc(stats.olderMapReads);
    },
  });
  new Gauge({
    name: "dredis_requests_waiting",
    help: "Requests held for a shard that is unavailable (failover in progress) or for the busy proxy's restart",
    collect() {
      this.set(router.waitingRequests + (context.busyProxy?.waitingRequests ?? 0));
    },
  });
  new Gauge({
    name: "dredis_slot_map_complete",
    help: "1 when a healthy master serves every slot (in every worker)",
    aggregator: "min",
    collect() {
      this.set(router.map?.complete ? 1 : 0);
    },
  });
}

/**
 * Answers the request that made this worker load its metrics (host.ts loads them at the first one,
 * which came before prom-client's own listener): as that listener does, with the global registry.
 */
export function answerMetricsRequest(requestId: unknown): void {
  register.getMetricsAsJSON().then(
    (metrics) => process.send?.({ type: "prom-client:getMetricsRes", requestId, metrics: [metrics] }),
    (err: Error) => process.send?.({ type: "prom-client:getMetricsRes", requestId, error: err.message }),
  );
}

/** The primary's side: metrics of every worker, summed. */
export function clusterMetricsRegistry(): AggregatorRegistry<PrometheusContentType> {
  return new AggregatorRegistry();
}
