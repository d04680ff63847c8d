/**
 * One admin connection per node address, authenticated with the caller's credentials, closed together.
 */
import { Redis } from "ioredis";
import { parseAddress } from "../address.ts";
import type { Credentials } from "./options.ts";
import { describeTlsError, TLS_FLAGS } from "../../tls/backend.ts";

export class NodePool {
  private readonly clients = new Map<string, Redis>();
  private readonly lastErrors = new Map<string, string>();

  constructor(private readonly credentials: Credentials) {}

  /** The connection to "host:port" (created on first use). */
  get(address: string): Redis {
    let client = this.clients.get(address);
    if (!client) {
      const { host, port } = parseAddress(address);
      client = new Redis({
        host,
        port,
        username: this.credentials.username,
        password: this.credentials.password,
        tls: this.credentials.tls,
        connectTimeout: 5_000,
        // An unreachable node must fail fast so the gate can name it, not queue forever.
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt) => (attempt > 3 ? null : 200),
        lazyConnect: false,
      });
      // Kept to explain a failed command better than ioredis's "max retries" text.
      client.on("error", (err: Error) =>
        this.lastErrors.set(
          address,
          this.credentials.tls
            ? describeTlsError(err, address, TLS_FLAGS, this.credentials.tls.cert !== undefined).message
            : err.message,
        ),
      );
      this.clients.set(address, client);
    }
    return client;
  }

  /** Closes and forgets the connection to an address, so the next `get` connects afresh (after its node restarted). */
  drop(address: string): void {
    this.clients.get(address)?.disconnect();
    this.clients.delete(address);
    this.lastErrors.delete(address);
  }

  /** The last connection error seen for the address, if any. */
  lastError(address: string): string | undefined {
    return this.lastErrors.get(address);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.quit().catch(() => c.disconnect())));
    this.clients.clear();
  }
}

/** "host:port" or "[v6]:port" to host and port, for the admin modules (src/cluster/address.ts). */
export { parseAddress as splitAddress };

/** Runs `fn` with a fresh pool and always closes it. */
export async function withPool<T>(credentials: Credentials, fn: (pool: NodePool) => Promise<T>): Promise<T> {
  const pool = new NodePool(credentials);
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}
