/**
 * A proxy host: a primary process that forks `workers` proxy workers sharing one listening port,
 * restarts any that die (with backoff), serves health on an admin port, drains on SIGTERM, and on
 * SIGHUP re-reads its config file and hands the fields that apply live to its workers and busy proxy.
 *
 * Node 20 has no SO_REUSEPORT for `net`, so the workers share the port through node:cluster.
 * Several workers get connections round-robin (SCHED_RR): measured on our machines, letting workers
 * race on accept (SCHED_NONE) often left one worker with every connection. That costs a hop per
 * connection, though: the primary accepts, hands the socket to a worker over IPC and waits for its
 * ack. A host of one worker has no one to balance, so its worker accepts for itself (SCHED_NONE:
 * the primary still holds the listening socket, as under round-robin). Short-lived connections
 * (redis-benchmark -k 0, 20 clients) through one worker: 56-72 us of CPU each, against 119-134 us
 * round-robin (twemproxy 18-22 us; bench/README.md, "Connections: what one costs").
 */
import cluster, { type Worker } from "node:cluster";
import { parentPort, Worker as Thread } from "node:worker_threads";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { pino, type Logger } from "pino";
import type { LiveConfig, ProxyConfig } from "./config.ts";
import type { ProxyWorker } from "./worker.ts";
import type { BusyProxy } from "./busy-proxy.ts";
import type { LeaderElector } from "./leader-election.ts";
import type { clusterMetricsRegistry } from "./metrics.ts";

type ClusterMetrics = ReturnType<typeof clusterMetricsRegistry>;

/**
 * The forked processes' own entry (role-main.ts beside this file) when it exists; a bundle of the
 * command line alone has none, and then they run the command line again, as the primary did.
 */
interface ChildEntry {
  exec: string;
  args: string[];
  execArgv: string[];
  /** Whether exec is role-main (else the command line again). */
  roleMain: boolean;
  /** What the busy proxy's thread runs: `exec`, or from the sources a script that loads tsx first. */
  thread: { code: string; eval: boolean };
}

function childEntry(): ChildEntry {
  const source = import.meta.url.endsWith(".ts");
  const entry = fileURLToPath(new URL(`./role-main${source ? ".ts" : ".js"}`, import.meta.url));
  if (!existsSync(entry)) {
    const exec = process.argv[1]!;
    return {
      exec,
      args: process.argv.slice(2),
      execArgv: process.execArgv,
      roleMain: false,
      thread: { code: exec, eval: false },
    };
  }
  // From the sources, the primary may have registered tsx through its API (bin/dredis.js does), which
  // a forked process does not inherit: it needs the loader on its command line.
  const loader = source && !process.execArgv.some((arg) => arg.includes("tsx")) ? ["--import", "tsx"] : [];
  // A thread gets no loader from `--import tsx` on node 20 (its hooks stay in the main thread's
  // loader): it registers tsx itself before importing the entry.
  const thread = source
    ? {
        code: `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then(({ register }) => {
          register();
          return import(${JSON.stringify(pathToFileURL(entry).href)});
        });`,
        eval: true,
      }
    : { code: entry, eval: false };
  return { exec: entry, args: [], execArgv: [...process.execArgv, ...loader], roleMain: true, thread };
}
/** What `dredis proxy` asks of the thread that reads its config file (role-main.ts answers). */
export interface ConfigRequest {
  file: string;
  /** Command-line overrides of listen.port and workers. */
  port?: number | undefined;
  workers?: number | undefined;
  /** The config running, to name the fields of the new one that need a restart. */
  running?: ProxyConfig | undefined;
}
export type ConfigAnswer =
  | { config: ProxyConfig; reload: ConfigReload }
  | { error: { name: string; message: string; code?: unknown } };

/**
 * Reads and validates the config file in a thread that ends once it has answered: the parser (zod,
 * yaml, the schemas; 6-10 MB of heap once loaded) never loads in the primary, which lives as long
 * as the host. Where there is no role-main (a bundle of the command line alone), in this thread.
 */
export async function loadConfigOffThread(request: ConfigRequest): Promise<ConfigAnswer> {
  const entry = childEntry();
  if (!entry.roleMain) return answerConfigRequest(request);
  const thread = new Thread(entry.thread.code, {
    eval: entry.thread.eval,
    workerData: { configRequest: request },
    stdout: false,
    stderr: false,
    name: "config reader",
  });
  return new Promise<ConfigAnswer>((resolve, reject) => {
    thread.once("message", (answer: ConfigAnswer) => resolve(answer));
    thread.once("error", reject);
    thread.once("exit", (code) =>
      reject(new Error(`the config reader thread exited (${code}) without an answer`)),
    );
  });
}

/** What the config reader answers (in its thread): the config, or why it is not valid. */
export async function answerConfigRequest(request: ConfigRequest): Promise<ConfigAnswer> {
  const { fieldsNeedingRestart, liveFields, loadProxyConfig } = await import("./config.ts");
  try {
    const config = await loadProxyConfig(request.file);
    if (request.port !== undefined) config.listen.port = request.port;
    if (request.workers !== undefined) config.workers = request.workers;
    const restart = request.running ? fieldsNeedingRestart(request.running, config) : [];
    return { config, reload: { live: liveFields(config), restart } };
  } catch (err) {
    const { name, message, code } = err as Error & { code?: unknown };
    return { error: { name, message, code } };
  }
}

import { checkTlsFiles, listenersPerWorker } from "../tls/proxy-listen.ts";

/** Messages between the primary and its workers. */
type ToWorker =
  | { type: "drain"; timeoutMs: number }
  | { type: "status"; id: number }
  | { type: "reload"; live: LiveConfig };
type FromWorker = { type: "status"; id: number; status: WorkerStatus };
/** Messages from the primary to its busy proxy thread. */
type ToBusy = { type: "reload"; live: LiveConfig } | { type: "close" };

export interface WorkerStatus {
  index: number;
  pid: number;
  clients: number;
  ready: boolean;
  /** Why the worker is not ready (no slot map, a shard not answering, a TLS handshake refused). */
  reason?: string | undefined;
  draining: boolean;
}

/** prom-client's message from the primary asking a worker for its metrics (its lib/cluster.js). */
const METRICS_REQUEST = "prom-client:getMetricsReq";

const RESTART_BASE_MS = 100;
const RESTART_CAP_MS = 5000;
/** A worker that lived this long resets its restart backoff. */
const STABLE_AFTER_MS = 30_000;
/** How long SIGTERM waits for in-flight requests before closing connections. @default */
export const DRAIN_TIMEOUT_MS = 10_000;

export interface HostHandle {
  /** Resolves once every worker listens. */
  ready: Promise<void>;
  /** The admin HTTP port actually bound (when the config asked for 0). */
  adminPort(): number | undefined;
  stop(): Promise<void>;
}

/** Entry point for `dredis proxy`: the primary forks; in a forked worker this runs the worker. */
export interface HostOptions {
  /** Campaign for the Kubernetes Lease of a master-backup pair (see leader-election.ts). */
  leaderElection?: boolean;
  /** Re-reads the config (from its file) on SIGHUP; without it, SIGHUP is logged and ignored. */
  reloadConfig?: (running: ProxyConfig) => Promise<ConfigReload>;
}

/** A re-read config as the primary applies it: its live fields, and the others that changed. */
export interface ConfigReload {
  live: LiveConfig;
  /** Fields that changed and apply only after a restart. */
  restart: string[];
}

export async function runProxyHost(
  config: ProxyConfig,
  log?: Logger,
  options: HostOptions = {},
): Promise<HostHandle | ProxyWorker | BusyProxy> {
  const logger = log ?? pino({ level: config.logLevel }, pino.destination(2));
  // Each role loads only its own modules (imported here, not at the top): every module a process
  // loads stays in its heap, and the primary, the workers and the busy proxy need different ones.
  if (process.env.DREDIS_ROLE === "busy") return runBusyProcess(config, logger);
  if (cluster.isWorker) return runForkedWorker(config, logger);
  // Checked before anything starts: a pod missing its environment fails at once, with the reason.
  checkTlsFiles(config);
  let elector: LeaderElector | undefined;
  if (options.leaderElection) {
    const { inClusterOptions, LeaderElector } = await import("./leader-election.ts");
    elector = new LeaderElector(inClusterOptions(logger));
  }
  // prom-client loads at the first /metrics request: a host never scraped does without it.
  let registry: Promise<ClusterMetrics> | undefined;
  const metrics = () =>
    (registry ??= import("./metrics.ts").then(({ clusterMetricsRegistry }) => clusterMetricsRegistry()));
  const host = startPrimary(config, logger, metrics, elector, options.reloadConfig);
  void host.ready.then(() => elector?.start());
  return host;
}

function startPrimary(
  config: ProxyConfig,
  log: Logger,
  metrics: () => Promise<ClusterMetrics>,
  elector?: LeaderElector,
  reloadConfig?: (running: ProxyConfig) => Promise<ConfigReload>,
): HostHandle {
  // Before the first fork, which is when node:cluster reads it (see the header).
  cluster.schedulingPolicy = config.workers === 1 ? cluster.SCHED_NONE : cluster.SCHED_RR;
  const entry = childEntry();
  cluster.setupPrimary({ exec: entry.exec, args: entry.args, execArgv: entry.execArgv });
  // The config as the primary runs it (live fields follow SIGHUP): what a restarted child gets.
  let running = config;
  /**
   * SIGHUPs handled, and why the last was refused: in /status, so whoever sent one (`dredis local
   * set`) can wait for it to apply before its next step. Once counted, the workers' and the busy
   * proxy's copies are on their way over their (ordered) channels.
   */
  const reloads: { done: number; error: string | undefined } = { done: 0, error: undefined };
  const childConfig = () => JSON.stringify(running);
  const workers = new Map<number, { worker: Worker; index: number; startedAt: number; failures: number }>();
  let stopping = false;
  let readyCount = 0;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));

  const busySocket = join(tmpdir(), `dredis-busy-${process.pid}.sock`);
  // The busy proxy runs in a thread of this process (its own V8 isolate and event loop, so its own
  // core and heap), not as a fourth process: every node process maps 38-42 MB of node's binary
  // (shared pages, but counted in each process's RSS), which made a 2-worker host 241 MB of RSS at
  // idle against 200 wanted (bench/README.md, Memory). An exception that escapes it ends the thread
  // alone, which is restarted like a dead worker; SIGUSR2 to the primary restarts it by hand (what
  // killing its process did). It must not share the client port, and does not: node:cluster
  // hands the port to cluster workers only.
  let busy: Thread | undefined;
  let busyOnline = false;
  const startBusy = (failures = 0) => {
    const startedAt = Date.now();
    const thread = new Thread(entry.thread.code, {
      eval: entry.thread.eval,
      argv: entry.args,
      // Its own copy of the environment (a thread's process.env is its own).
      env: {
        ...process.env,
        DREDIS_ROLE: "busy",
        DREDIS_BUSY_SOCKET: busySocket,
        DREDIS_PROXY_CONFIG: childConfig(),
      },
      // Its stdout and stderr are its own writes to fd 1 and 2 (pino writes to fd 2 directly).
      stdout: false,
      stderr: false,
      name: "busy proxy",
    });
    busy = thread;
    busyOnline = false;
    thread.once("online", () => (busyOnline = true));
    // An error that escaped it (then it exits and is restarted below): its stack says where.
    thread.on("error", (err) => log.error({ err: err.stack ?? err.message }, "busy proxy failed"));
    thread.once("exit", (code) => {
      if (busy === thread) busyOnline = false;
      if (stopping) return;
      const attempt = Date.now() - startedAt > STABLE_AFTER_MS ? 0 : failures + 1;
      const delay = Math.min(RESTART_CAP_MS, RESTART_BASE_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      log.warn({ code, restartInMs: Math.round(delay) }, "busy proxy died; restarting");
      setTimeout(() => !stopping && startBusy(attempt), delay);
    });
  };
  startBusy();
  process.on("SIGUSR2", () => {
    log.warn("SIGUSR2: restarting the busy proxy");
    void busy?.terminate();
  });

  /**
   * Sends to a worker; `failed` runs instead when its channel is closed. A worker that died is
   * still listed until node:cluster's "exit" event, and a send to it then raises an "error" event
   * on it which, unheard, ended the primary and with it the whole host (a readiness probe in that
   * window did: test/proxy/host-status-race.test.ts).
   */
  const sendTo = (worker: Worker, message: ToWorker, failed?: () => void): void => {
    if (!worker.isConnected()) return failed?.();
    worker.send(message, (err: Error | null) => {
      if (err) failed?.();
    });
  };

  const fork = (index: number, failures = 0) => {
    const worker = cluster.fork({
      DREDIS_WORKER_INDEX: String(index),
      DREDIS_BUSY_SOCKET: busySocket,
      DREDIS_PROXY_CONFIG: childConfig(),
    });
    workers.set(worker.id, { worker, index, startedAt: Date.now(), failures });
    // Whatever else goes wrong on its channel is the worker's end, which "exit" handles.
    worker.on("error", (err) => log.debug({ index, err: err.message }, "worker channel error"));
    let listening = 0;
    worker.on("listening", () => {
      if (++listening === listenersPerWorker(config) && ++readyCount === config.workers) resolveReady();
    });
    worker.on("exit", (code, signal) => {
      const entry = workers.get(worker.id);
      workers.delete(worker.id);
      if (stopping || !entry) return;
      const stable = Date.now() - entry.startedAt > STABLE_AFTER_MS;
      const attempt = stable ? 0 : entry.failures + 1;
      const delay = Math.min(RESTART_CAP_MS, RESTART_BASE_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      log.warn(
        { index, pid: worker.process.pid, code, signal, restartInMs: Math.round(delay) },
        "worker died; restarting",
      );
      setTimeout(() => !stopping && fork(index, attempt), delay);
    });
  };
  for (let i = 0; i < config.workers; i++) fork(i);

  let pending = 0;
  const waiting = new Map<number, (s: WorkerStatus | undefined) => void>();
  cluster.on("message", (_worker, message: FromWorker) => {
    if (message?.type === "status") waiting.get(message.id)?.(message.status);
  });
  const statuses = (): Promise<(WorkerStatus | undefined)[]> =>
    Promise.all(
      [...workers.values()].map(
        ({ worker }) =>
          new Promise<WorkerStatus | undefined>((resolve) => {
            const id = ++pending;
            const timer = setTimeout(() => finish(undefined), 1000);
            const finish = (s: WorkerStatus | undefined) => {
              clearTimeout(timer);
              waiting.delete(id);
              resolve(s);
            };
            waiting.set(id, finish);
            sendTo(worker, { type: "status", id }, () => finish(undefined));
          }),
      ),
    );

  let admin: HttpServer | undefined;
  if (config.admin.port !== 0) {
    admin = createHttpServer(async (req, res) => {
      const url = req.url ?? "/";
      if (url === "/metrics") {
        const registry = await metrics();
        const text = await registry.clusterMetrics().catch((err: Error) => `# error: ${err.message}\n`);
        res.writeHead(200, { "content-type": registry.contentType }).end(text);
      } else if (url === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      } else if (url === "/readyz" || url === "/status") {
        const list = await statuses();
        const isReady =
          !stopping &&
          list.length === config.workers &&
          list.every((s) => s !== undefined && s.ready && !s.draining);
        // pid: the primary's, where the thread runs; threadId tells one busy proxy from its successor.
        const busyProxy = { pid: process.pid, threadId: busy?.threadId, running: busyOnline };
        const body = JSON.stringify({
          ready: isReady,
          draining: stopping,
          workers: list,
          busyProxy,
          reloads,
        });
        res
          .writeHead(url === "/readyz" && !isReady ? 503 : 200, { "content-type": "application/json" })
          .end(body + "\n");
      } else {
        res.writeHead(404).end();
      }
    });
    admin.listen(config.admin.port, config.admin.host);
  }

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Hand the floating endpoint to the other pod first, then drain what is in flight here.
    await elector?.stop();
    log.info("draining: no new connections, waiting for in-flight requests");
    const exits = [...workers.values()].map(
      ({ worker }) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          worker.once("exit", () => resolve());
          sendTo(worker, { type: "drain", timeoutMs: DRAIN_TIMEOUT_MS });
          setTimeout(() => worker.process.kill("SIGKILL"), DRAIN_TIMEOUT_MS + 5000).unref();
        }),
    );
    await Promise.all(exits);
    // Workers have drained, so no multi-key command is left for the busy proxy.
    if (busy && busyOnline) {
      const thread = busy;
      const exited = new Promise((resolve) => thread.once("exit", resolve));
      thread.postMessage({ type: "close" } satisfies ToBusy);
      const timer = setTimeout(() => void thread.terminate(), DRAIN_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => (admin ? admin.close(() => resolve()) : resolve()));
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => void stop().then(() => process.exit(0)));
  }
  const reload = async (): Promise<void> => {
    if (reloadConfig === undefined) {
      log.warn("SIGHUP ignored: this host was started without a config file to re-read");
      reloads.done++;
      reloads.error = "this host was started without a config file to re-read";
      return;
    }
    let next: ConfigReload;
    try {
      next = await reloadConfig(running);
    } catch (err) {
      log.error({ err: (err as Error).message }, "config reload failed; the running config stays");
      reloads.done++;
      reloads.error = (err as Error).message;
      return;
    }
    if (next.restart.length > 0)
      log.warn({ fields: next.restart }, "config fields changed that take effect only after a restart");
    running = { ...running, ...next.live };
    const message: ToWorker = { type: "reload", live: next.live };
    for (const { worker } of workers.values()) sendTo(worker, message);
    if (busyOnline) busy?.postMessage(message);
    reloads.done++;
    reloads.error = undefined;
    log.info(
      { live: Object.keys(next.live) },
      "config reloaded: the live fields apply to new connections, the next AUTH and the next command",
    );
  };
  process.on("SIGHUP", () => void reload());
  return {
    ready,
    adminPort: () => {
      const address = admin?.address();
      return typeof address === "object" && address ? address.port : undefined;
    },
    stop,
  };
}

async function runForkedWorker(config: ProxyConfig, log: Logger): Promise<ProxyWorker> {
  const { startWorker } = await import("./worker.ts");
  const index = Number(process.env.DREDIS_WORKER_INDEX ?? "0");
  const workerLog = log.child({ worker: index });
  const worker = await startWorker(config, {
    log: workerLog,
    workerIndex: index,
    busySocket: process.env.DREDIS_BUSY_SOCKET,
  });
  // prom-client (and its metrics) load at the primary's first request for them (a /metrics
  // scrape), not before: a host never scraped keeps a few MB less in each worker.
  const early: unknown[] = [];
  const firstMetricsRequest = (message: { type?: unknown; requestId?: unknown } | undefined) => {
    if (message?.type !== METRICS_REQUEST) return;
    // Those that come while the module loads are answered once it has (prom-client's own
    // listener, which registerWorkerMetrics installs, answers the later ones).
    if (early.push(message.requestId) > 1) return;
    void import("./metrics.ts").then(({ registerWorkerMetrics, answerMetricsRequest }) => {
      process.off("message", firstMetricsRequest);
      registerWorkerMetrics(worker.context);
      for (const requestId of early) answerMetricsRequest(requestId);
    });
  };
  process.on("message", firstMetricsRequest);
  let draining = false;
  process.on("message", (message: ToWorker) => {
    if (message?.type === "status") {
      const status: WorkerStatus = {
        index,
        pid: process.pid,
        clients: worker.context.clients.size,
        ready: worker.context.router.ready,
        reason: worker.context.router.notReadyReason,
        draining,
      };
      process.send?.({ type: "status", id: message.id, status } satisfies FromWorker);
    } else if (message?.type === "drain") {
      draining = true;
      void worker.drain(message.timeoutMs).then(() => process.exit(0));
    } else if (message?.type === "reload") {
      worker.reload(message.live);
    }
  });
  // The primary owns signals; a worker ignores them so a Ctrl-C reaches it only through the drain.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => {});
  process.on("SIGHUP", () => {});
  return worker;
}

async function runBusyProcess(config: ProxyConfig, log: Logger): Promise<BusyProxy> {
  const socketPath = process.env.DREDIS_BUSY_SOCKET!;
  const { startBusyProxy } = await import("./busy-proxy.ts");
  const busy = await startBusyProxy(config, socketPath, log.child({ role: "busy" }));
  // A thread of the primary (see startPrimary): signals reach the primary, which sends "close".
  // The thread ends with the process, so nothing is left holding its socket.
  parentPort?.on("message", (message: ToBusy) => {
    if (message?.type === "reload") busy.reload(message.live);
    else if (message?.type === "close") void busy.close().then(() => process.exit(0));
  });
  return busy;
}
