/**
 * Counters a worker keeps on its hot path (an integer add each), read only when /metrics is
 * scraped (metrics.ts).
 */
export class WorkerStats {
  commands = 0;
  redirects = 0;
  reconnects = 0;
  /** Slot map reads skipped as older than the map held (./upstream/slot-map-source.ts). */
  olderMapReads = 0;
}
