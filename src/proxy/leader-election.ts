/**
 * Lease-based leader election for a master-backup proxy pair on Kubernetes.
 *
 * Both proxy pods run; the one holding the coordination.k8s.io Lease labels its own pod
 * `dredis.io/role=active`, and the fleet's Service selects that label, so clients reach the leader.
 * The holder renews the Lease every `renewIntervalMs`; when it stops (crash, network cut), the
 * other pod takes the Lease once it has gone `leaseDurationSeconds` without renewal and labels
 * itself. A leader that cannot renew steps down after the same time. Proxies are stateless, so a
 * short overlap where both pods carry the label is harmless: both serve correctly.
 *
 * Talks to the API server over plain HTTPS with the pod's service-account token (no client
 * library: five requests, the same everywhere).
 */
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Logger } from "pino";
import { ACTIVE_ROLE as ACTIVE_VALUE, ENV, POD_ROLE_LABEL as ACTIVE_LABEL } from "../contract.ts";
import { DredisError, ErrorCodes } from "../errors.ts";

export { ACTIVE_LABEL, ACTIVE_VALUE };
const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface LeaderElectionOptions {
  /** API server base URL, e.g. https://10.96.0.1:443. */
  apiUrl: string;
  token: string;
  /** CA bundle for the API server's certificate (in-cluster: the service account's ca.crt). */
  ca?: Buffer;
  namespace: string;
  leaseName: string;
  /** This pod's name: the Lease holder identity and the pod to label. */
  podName: string;
  /** @default 10 */
  leaseDurationSeconds?: number;
  /** @default 2000 */
  renewIntervalMs?: number;
  log: Logger;
}

/** Options from the pod's environment (POD_NAME, POD_NAMESPACE, LEASE_NAME) and service account. */
export function inClusterOptions(log: Logger, env: NodeJS.ProcessEnv = process.env): LeaderElectionOptions {
  const missing = [ENV.podName, ENV.podNamespace, ENV.leaseName].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new DredisError(
      ErrorCodes.LEADER_ELECTION,
      `--leader-election needs the environment variables ${missing.join(", ")} (the ProxyFleet component sets them from the pod's fields)`,
    );
  }
  const apiUrl =
    env.DREDIS_KUBERNETES_API ??
    (env.KUBERNETES_SERVICE_HOST
      ? `https://${env.KUBERNETES_SERVICE_HOST.includes(":") ? `[${env.KUBERNETES_SERVICE_HOST}]` : env.KUBERNETES_SERVICE_HOST}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`
      : undefined);
  if (!apiUrl) {
    throw new DredisError(
      ErrorCodes.LEADER_ELECTION,
      "--leader-election runs inside Kubernetes: KUBERNETES_SERVICE_HOST is not set",
    );
  }
  const read = (file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new DredisError(
        ErrorCodes.LEADER_ELECTION,
        `cannot read the service account's ${file}: ${(err as Error).message}`,
      );
    }
  };
  const token = env.DREDIS_KUBERNETES_TOKEN ?? read(`${SERVICE_ACCOUNT}/token`).toString().trim();
  const ca = apiUrl.startsWith("https:") ? read(`${SERVICE_ACCOUNT}/ca.crt`) : undefined;
  return {
    apiUrl,
    token,
    ca,
    namespace: env[ENV.podNamespace]!,
    leaseName: env[ENV.leaseName]!,
    podName: env[ENV.podName]!,
    log,
  };
}

interface Lease {
  metadata: { name: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export class LeaderElector {
  leader = false;
  private timer: NodeJS.Timeout | null = null;
  private lastRenewed = 0;
  private readonly duration: number;
  private readonly interval: number;
  private ticking: Promise<void> | null = null;
  /** The label as last set on our pod (undefined: never set). */
  private labelled: boolean | undefined;

  constructor(private readonly options: LeaderElectionOptions) {
    this.duration = options.leaseDurationSeconds ?? 10;
    this.interval = options.renewIntervalMs ?? 2000;
  }

  start(): void {
    const tick = () => {
      this.ticking = this.tick().catch((err: Error) =>
        this.options.log.warn({ err: err.message }, "leader election"),
      );
    };
    tick();
    this.timer = setInterval(tick, this.interval);
  }

  /** Stops campaigning; a leader gives up the Lease and its label so the other pod takes over at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    if (!this.leader && this.labelled !== true) return;
    this.leader = false;
    await this.setLabel(false).catch(() => {});
    const lease = await this.getLease().catch(() => undefined);
    if (lease && lease.spec.holderIdentity === this.options.podName) {
      lease.spec.holderIdentity = "";
      await this.api("PUT", this.leasePath(), lease).catch(() => {});
    }
  }

  private async tick(): Promise<void> {
    let outcome = { held: false, lost: false };
    try {
      outcome = await this.campaign(new Date());
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, "cannot reach the Kubernetes API for the lease");
    }
    if (outcome.held) this.lastRenewed = Date.now();
    // A leader that cannot renew keeps its role only while its Lease would still be valid.
    const leader =
      outcome.held || (this.leader && !outcome.lost && Date.now() - this.lastRenewed < this.duration * 1000);
    if (leader !== this.leader) {
      this.leader = leader;
      this.options.log.info(
        { pod: this.options.podName, leader },
        leader ? "elected leader" : "no longer leader",
      );
    }
    // The label follows the role; a change the API refused is tried again on the next tick.
    if (this.labelled !== this.leader) {
      await this.setLabel(this.leader);
      this.labelled = this.leader;
    }
  }

  /** One round: create, renew or take over the Lease. `held`: we hold it now; `lost`: another pod does. */
  private async campaign(now: Date): Promise<{ held: boolean; lost: boolean }> {
    let lease = await this.getLease();
    if (lease === undefined) {
      const created = await this.api("POST", this.leasePath(false), {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: this.options.leaseName, namespace: this.options.namespace },
        spec: this.claim(now, 0),
      });
      return { held: created.status === 201 || created.status === 200, lost: false };
    }
    const mine = lease.spec.holderIdentity === this.options.podName;
    const renewed = Date.parse(lease.spec.renewTime ?? "") || 0;
    const expired =
      !lease.spec.holderIdentity ||
      renewed + (lease.spec.leaseDurationSeconds ?? this.duration) * 1000 < now.getTime();
    if (!mine && !expired) return { held: false, lost: true };
    const transitions = (lease.spec.leaseTransitions ?? 0) + (mine ? 0 : 1);
    lease = {
      ...lease,
      spec: mine ? { ...lease.spec, renewTime: now.toISOString() } : this.claim(now, transitions),
    };
    const updated = await this.api("PUT", this.leasePath(), lease);
    // 409: another pod renewed or took it between our read and our write.
    return { held: updated.status === 200, lost: updated.status === 409 };
  }

  private claim(now: Date, transitions: number): Lease["spec"] {
    return {
      holderIdentity: this.options.podName,
      leaseDurationSeconds: this.duration,
      acquireTime: now.toISOString(),
      renewTime: now.toISOString(),
      leaseTransitions: transitions,
    };
  }

  private leasePath(named = true): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases`;
    return named ? `${base}/${this.options.leaseName}` : base;
  }

  private async getLease(): Promise<Lease | undefined> {
    const response = await this.api("GET", this.leasePath());
    if (response.status === 404) return undefined;
    if (response.status !== 200)
      throw new Error(`GET lease: HTTP ${response.status} ${response.body.slice(0, 200)}`);
    return JSON.parse(response.body) as Lease;
  }

  private async setLabel(active: boolean): Promise<void> {
    const patch = { metadata: { labels: { [ACTIVE_LABEL]: active ? ACTIVE_VALUE : null } } };
    const response = await this.api(
      "PATCH",
      `/api/v1/namespaces/${this.options.namespace}/pods/${this.options.podName}`,
      patch,
      "application/merge-patch+json",
    );
    if (response.status !== 200)
      throw new Error(`label pod: HTTP ${response.status} ${response.body.slice(0, 200)}`);
  }

  private api(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<{ status: number; body: string }> {
    const url = new URL(path, this.options.apiUrl);
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          ca: this.options.ca,
          timeout: 5000,
          headers: {
            authorization: `Bearer ${this.options.token}`,
            accept: "application/json",
            ...(payload ? { "content-type": contentType, "content-length": Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end(payload);
    });
  }
}
