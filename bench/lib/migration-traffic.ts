/**
 * The client side of bench/migration.ts, in processes of its own: a proxy worker (`proxy`) and
 * the clients that go through it (`clients`). Separate processes because in one process with the
 * migration driver, the driver's own work (planning with MEMORY USAGE of every key it moves,
 * parsing GETSLOTMIGRATIONS) and its garbage collections hold up the clients' and the proxy's
 * event loop, and those stalls were counted as the migration's. In production the proxy, its
 * clients and `dredis` never share a process either.
 *
 * Each process also watches itself, so a long request can be traced to its cause:
 * - event-loop stalls: a 10 ms timer that fires late by more than STALL_MS (the start and length
 *   of each), and the `monitorEventLoopDelay` maximum;
 * - garbage collections of at least GC_MS (PerformanceObserver "gc");
 * - proxy: MOVED/ASK/TRYAGAIN the router followed (its redirect counter, sampled by the timer)
 *   and each slot map it installed;
 * - clients: each request that took at least TRACE_MS (start, length, command, key, slot).
 *
 * Times are wall-clock ms (Date.now()), so the parent can line them up with its own and the nodes'.
 *
 *   node --import tsx bench/lib/migration-traffic.ts proxy <seed host:port>
 *   node --import tsx bench/lib/migration-traffic.ts clients <proxy port> <keys> <value bytes> <clients>
 *
 * Talks to its parent over the IPC channel: sends {ready, port?}; answers {mark} with the longest
 * request so far (and starts its trace over: what came before was the baseline) and {stop} with
 * its whole trace, then exits.
 */
import calculateSlot from "cluster-key-slot";
import { Redis } from "ioredis";
import { pino } from "pino";
import { parseProxyConfig } from "../../src/proxy/config.ts";
import { startWorker } from "../../src/proxy/worker.ts";
import { watchSelf, type Span } from "./self-watch.ts";

/** Client requests at least this long are traced one by one. */
const TRACE_MS = 50;
/** The clients stop by themselves after this, should the parent be gone. */
const MAX_RUN_MS = 30 * 60_000;

const send = (message: unknown) => process.send?.(message);

async function proxy(seed: string): Promise<void> {
  const config = parseProxyConfig({
    listen: { host: "127.0.0.1", port: 0 },
    seeds: [seed],
    logLevel: "silent",
  });
  const worker = await startWorker(config, { log: pino({ level: "silent" }) });
  const stats = worker.context.stats;
  let redirects = stats.redirects;
  const self = watchSelf((now) => {
    if (stats.redirects !== redirects) {
      self.trace.redirects.push({ at: now, ms: 0, what: `${stats.redirects - redirects} redirects` });
      redirects = stats.redirects;
    }
  });
  worker.context.router.onMapChange(() => self.trace.maps.push(Date.now()));
  process.on("message", (message: { type: string }) => {
    if (message.type !== "stop") return;
    self.stop();
    void worker.drain(1_000).then(() => {
      send({ type: "trace", trace: self.trace });
      process.disconnect();
    });
  });
  send({ type: "ready", port: worker.port });
}

async function clients(port: number, keys: number, valueBytes: number, count: number): Promise<void> {
  const value = "v".repeat(valueBytes);
  const self = watchSelf();
  const trace = self.trace;
  let running = true;
  /** The longest request since the start or the last mark. */
  let longest: Span = { at: 0, ms: 0, what: "" };
  let requests = 0;
  let errors = 0;
  const deadline = Date.now() + MAX_RUN_MS;
  const loops = Array.from({ length: count }, async (_, c) => {
    const client = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    for (let i = c; running && Date.now() < deadline; i += 7919) {
      const key = `key:${i % keys}`;
      for (const command of ["SET", "GET"] as const) {
        const at = Date.now();
        const started = process.hrtime.bigint();
        let error = "";
        try {
          await (command === "SET" ? client.set(key, value) : client.get(key));
        } catch (err) {
          errors++;
          error = ` error: ${(err as Error).message}`;
        }
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        requests++;
        if (ms < TRACE_MS && !error) {
          if (ms > longest.ms) longest = { at, ms, what: "" };
          continue;
        }
        const span = { at, ms, what: `client ${c} ${command} ${key} slot ${calculateSlot(key)}${error}` };
        trace.requests.push(span);
        if (ms > longest.ms) longest = span;
      }
    }
    client.disconnect();
  });
  process.on("message", (message: { type: string }) => {
    if (message.type === "mark") {
      send({ type: "marked", longest });
      longest = { at: 0, ms: 0, what: "" };
      trace.requests.length = 0;
      trace.stalls.length = 0;
      trace.gcs.length = 0;
      requests = 0;
      errors = 0;
    } else if (message.type === "stop") {
      running = false;
      void Promise.all(loops).then(() => {
        self.stop();
        send({
          type: "trace",
          trace: { ...trace, longest, count: requests, errors },
        });
        process.disconnect();
      });
    }
  });
  send({ type: "ready" });
}

const [role, ...rest] = process.argv.slice(2);
if (role === "proxy") await proxy(rest[0]!);
else if (role === "clients")
  await clients(Number(rest[0]), Number(rest[1]), Number(rest[2]), Number(rest[3]));
else throw new Error(`migration-traffic: role ${role}: expected proxy or clients`);
