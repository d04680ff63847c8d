/**
 * Runs redis-server as a child process: the local platform's shards, and the test harness's.
 *
 * A server is configured from a plain object (rendered as redis.conf lines), started on a known
 * port, and counted ready only once it answers PING. Every process started here is also
 * registered for a last-chance SIGKILL when this process exits, so a crashed test or a Ctrl-C
 * never leaves servers behind.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdir, writeFile, readFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { connect as connectTls, type ConnectionOptions } from "node:tls";
import { join } from "node:path";
import { missingTool, DredisError, ErrorCodes } from "../errors.ts";
import { renderRedisConf, type RedisConfig } from "../cluster/redis-conf.ts";

export type { RedisConfig };

export interface RedisServerOptions {
  /** TCP port for clients. */
  port: number;
  /** Working directory: redis.conf, logs, nodes.conf and data files live here. Created if missing. */
  dir: string;
  /** Address to bind. @default "127.0.0.1" */
  host?: string;
  /** Extra or overriding redis.conf directives. */
  config?: RedisConfig;
  /** How long to wait for the server to answer PING. @default 10000 */
  readyTimeoutMs?: number;
  /** The server binary (a valkey-server, say). @default findRedisServer() */
  binary?: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

let redisServerPath: string | undefined;

/** Finds redis-server, or throws an error that names the Debian package to install. */
export function findRedisServer(): string {
  if (redisServerPath) return redisServerPath;
  for (const candidate of [process.env.REDIS_SERVER, "redis-server", "/usr/bin/redis-server"]) {
    if (!candidate) continue;
    const probe = spawnSync(candidate, ["--version"], { encoding: "utf8" });
    if (probe.status === 0) return (redisServerPath = candidate);
  }
  throw missingTool("redis-server", "redis-server");
}

export class RedisServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  private readonly binary: string | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(options: RedisServerOptions) {
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port;
    this.dir = options.dir;
    this.binary = options.binary;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(options: RedisServerOptions): Promise<RedisServer> {
    const server = new RedisServer(options);
    await mkdir(options.dir, { recursive: true });
    const config: RedisConfig = {
      bind: server.host,
      port: options.port,
      dir: options.dir,
      logfile: join(options.dir, "redis.log"),
      "protected-mode": false,
      daemonize: false,
      save: "",
      appendonly: false,
      ...options.config,
    };
    await writeFile(join(options.dir, "redis.conf"), renderRedisConf(config));
    await server.launch(options.readyTimeoutMs ?? 10_000);
    return server;
  }

  /** Starts the process again from its redis.conf (after stop or kill), keeping its data dir. */
  async restart(readyTimeoutMs = 10_000): Promise<void> {
    if (this.running)
      throw new DredisError(ErrorCodes.RUNNING, `redis-server ${this.address} is still running`);
    await this.launch(readyTimeoutMs);
  }

  private async launch(readyTimeoutMs: number): Promise<void> {
    installExitHook();
    const child = spawn(this.binary ?? findRedisServer(), [join(this.dir, "redis.conf")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    live.add(child);
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once("exit", () => {
        live.delete(child);
        resolve();
      }),
    );
    try {
      await waitForPong(this.host, this.port, readyTimeoutMs, () => !this.running);
    } catch (err) {
      child.kill("SIGKILL");
      await this.exited;
      const log = await readFile(join(this.dir, "redis.log"), "utf8").catch(() => "");
      throw new DredisError(
        ErrorCodes.REDIS_START,
        `redis-server on ${this.address} did not become ready: ${(err as Error).message}\n` +
          `${stderr}${log.split("\n").slice(-15).join("\n")}`,
      );
    }
  }

  /** Stops the server (SIGTERM, then SIGKILL after the grace period) and waits for it to exit. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Kills the server at once, as a crash would. */
  async kill(): Promise<void> {
    if (!this.child || !this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

/**
 * Resolves once host:port answers PING with PONG (LOADING and refused connections are retried).
 * With a password it authenticates first: a server that requires one answers NOAUTH even while
 * it is still loading. With `tls`, the port is a `tls-port`.
 */
export async function waitForPong(
  host: string,
  port: number,
  timeoutMs: number,
  abort: () => boolean = () => false,
  password?: string,
  tls?: ConnectionOptions,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (abort()) throw new Error("the process exited");
    last = await pingOnce(host, port, password, tls).catch((err: Error) => err.message);
    if (last === "+PONG") return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no PONG within ${timeoutMs} ms (last: ${last})`);
}

function pingOnce(host: string, port: number, password?: string, tls?: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls ? connectTls({ host, port, ...tls }) : createConnection({ host, port });
    let data = "";
    socket.setTimeout(1000, () => socket.destroy(new Error("timeout")));
    const auth =
      password === undefined ? "" : `*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(password)}\r\n${password}\r\n`;
    socket.on(tls ? "secureConnect" : "connect", () => socket.write(`${auth}PING\r\n`));
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8");
      const lines = data.split("\r\n");
      // The AUTH reply comes first; a failed AUTH is the answer.
      if (password !== undefined && lines.length > 1 && lines[0] !== "+OK") {
        socket.destroy();
        resolve(lines[0]!);
      } else if (lines.length > (password === undefined ? 1 : 2)) {
        socket.destroy();
        resolve(lines[password === undefined ? 0 : 1]!);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("closed")));
  });
}
