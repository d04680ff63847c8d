/**
 * What every client session of a worker shares: configuration, command table, router, the link to
 * the busy proxy, flushing, and the worker-wide answers (INFO, CLIENT INFO lines).
 */
import type { Logger } from "pino";
import { encodeReply, VerbatimString, type Protocol } from "../resp/encode.ts";
import type { ProxyConfig } from "./config.ts";
import type { CommandTable } from "./commands.ts";
import type { ClusterRouter } from "./router.ts";
import type { BusyLink } from "./busy-link.ts";
import type { FlushScheduler } from "./request.ts";
import type { ClientSession } from "./client.ts";
import type { WorkerStats } from "./stats.ts";
import { proxySectionLines, requestedSections } from "./info-sections.ts";
import { AclUsers } from "./acl/users.ts";

export class ProxyContext {
  readonly startedAt = Date.now();
  readonly clients = new Set<ClientSession>();
  /** The port the worker listens on (the configured one may be 0: any free port). */
  listenPort: number;
  private clientCounter = 0;
  /** The ACL users; a config reload replaces them (see ./worker.ts). */
  acl: AclUsers;

  constructor(
    readonly config: ProxyConfig,
    readonly commands: CommandTable,
    readonly router: ClusterRouter,
    readonly flusher: FlushScheduler,
    readonly log: Logger,
    /** Distinguishes workers of one host so client ids stay unique across them. */
    readonly workerIndex = 0,
    /** The link to the busy proxy that runs multi-key commands across slots; unset: CROSSSLOT. */
    readonly busyProxy: BusyLink | undefined = undefined,
  ) {
    this.listenPort = config.listen.port;
    this.acl = AclUsers.fromConfig(config.users, config.clientPassword, config.previousClientPassword);
  }

  /** Counters for /metrics (the router counts redirects and reconnects, clients count commands). */
  get stats(): WorkerStats {
    return this.router.stats;
  }

  nextClientId(): number {
    return this.workerIndex * 1_000_000_000 + ++this.clientCounter;
  }

  clientClosed(client: ClientSession): void {
    this.clients.delete(client);
  }

  /** A CLIENT LIST / CLIENT INFO line, with the fields Redis prints that mean something here. */
  describeClient(c: ClientSession): string {
    const now = Date.now();
    return (
      `id=${c.id} addr=${c.remoteAddress} laddr=${c.localAddress} name=${c.name ?? ""} ` +
      `age=${Math.floor((now - c.createdAt) / 1000)} idle=${Math.floor((now - c.lastActivity) / 1000)} ` +
      `flags=N db=${c.db} user=${c.aclUser.name} resp=${c.protocol} lib-name=${c.libName} lib-ver=${c.libVersion}`
    );
  }

  /**
   * INFO's sections as a standalone Redis would list them for INFO's arguments, describing the
   * proxy; the shards' sections (Memory, Stats, Keyspace, ...) are left for the busy proxy to fill.
   */
  infoSections(args: readonly string[]): InfoSection[] {
    const figures = {
      serverVersion: this.router.serverVersion,
      serverEngine: this.router.serverEngine,
      serverEngineVersion: this.router.serverEngineVersion,
      port: this.listenPort,
      startedAt: this.startedAt,
      connectedClients: this.clients.size,
      blockedClients: [...this.clients].filter((c) => c.blockedOn() !== null).length,
      maxClients: this.config.limits.maxClients,
    };
    return requestedSections(args).map((name) => [name, proxySectionLines(name, figures)]);
  }

  /** INFO answered by the worker alone (no busy proxy to add the shards' figures). */
  info(args: readonly string[], protocol: Protocol): Buffer {
    return encodeReply(renderInfo(this.infoSections(args)), protocol);
  }
}

/** One INFO section: its lower-case name and its `field:value` lines. */
export type InfoSection = [name: string, lines: string[]];

/** INFO text as Redis prints it ("# Name" headers, CRLF lines, a blank line between sections). */
export function renderInfo(sections: readonly InfoSection[]): VerbatimString {
  return new VerbatimString(
    sections
      .map(
        ([name, lines]) =>
          `# ${name[0]!.toUpperCase()}${name.slice(1)}\r\n${lines.map((l) => `${l}\r\n`).join("")}`,
      )
      .join("\r\n"),
  );
}
