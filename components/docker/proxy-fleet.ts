/**
 * A proxy fleet on Docker.
 * - load-balanced: N proxy containers behind one HAProxy container (TCP mode) whose port is
 *   published on the Docker host. HAProxy finds the hosts through a network alias they all share
 *   and checks each one's readiness on its admin port, so its config names neither the hosts nor
 *   the password: adding hosts or rotating the password leaves HAProxy running (a changed config
 *   would replace it, and the endpoint would be down meanwhile);
 * - master-backup: two proxy containers at static addresses, each with keepalived beside it in
 *   its network namespace, holding a floating IP by VRRP (unicast) that moves when one fails.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { DockerAddressPlan } from "../plan/addresses.ts";
import { virtualRouterIdFor } from "../plan/addresses.ts";
import { renderHaproxyCfg } from "../plan/haproxy.ts";
import { proxyHealthCheckCommand } from "../plan/health-check.ts";
import { renderKeepalivedConf } from "../plan/keepalived.ts";
import { PROXY_CONFIG_PATH, renderProxyConf, type ProxySettings } from "../plan/proxy-conf.ts";
import { PROXY_ADMIN_PORT } from "../../src/contract.ts";
import { argError } from "../plan/spec.ts";
import { PROXY_TLS_DIR, proxyTlsHealthCheckCommand, TLS_FILES } from "../plan/tls.ts";
import type { ProxyTlsSpec } from "../tls.ts";
import type { ShardTlsSpec } from "../shard-tls.ts";
import { shardTlsUploads } from "./shard-tls-files.ts";

export interface DockerProxyFleetInputs {
  mode: "master-backup" | "load-balanced";
  hosts: number;
  workers: number;
  /** Proxy settings of the spec (crossSlot, readFrom). */
  settings?: ProxySettings | undefined;
  port: number;
  seeds: string[];
  password: pulumi.Input<string>;
  users?: pulumi.Input<Record<string, string>> | undefined;
  previousPassword?: pulumi.Input<string> | undefined;
  image: pulumi.Input<string>;
  haproxyImage: pulumi.Input<string>;
  network: pulumi.Input<string>;
  addresses: DockerAddressPlan;
  /** TLS for clients: the certificate files are written into each proxy container. */
  tls?: Extract<ProxyTlsSpec, { platform: "docker" }>;
  /** TLS-only shards: their CA and the client certificate are written into each proxy container. */
  shardTls?: Extract<ShardTlsSpec, { platform: "docker" }>;
}

export interface DockerProxyFleet {
  proxies: docker.Container[];
  /** keepalived containers (master-backup) or the HAProxy container (load-balanced). */
  balancers: docker.Container[];
  endpointHost: string;
  proxyAddresses: string[];
}

const KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf";
/** HAProxy's server slots: the most hosts a load-balanced fleet may have (`proxyHosts`). */
const MAX_PROXY_HOSTS = 64;

/** The network alias every proxy host of fleet `name` shares: HAProxy resolves it to all of them. */
function hostsAlias(name: string): string {
  return `${name}-hosts`;
}
const HAPROXY_CFG = "/usr/local/etc/haproxy/haproxy.cfg";
/**
 * What a stopping proxy host gets before it is killed: its drain (the host's DRAIN_TIMEOUT_MS, 10 s,
 * and the 5 s after which it kills a worker that has not drained), then the busy proxy's stop.
 */
export const PROXY_STOP_GRACE_SECONDS = 20;

export function createDockerProxyFleet(
  name: string,
  inputs: DockerProxyFleetInputs,
  parent: pulumi.Resource,
): DockerProxyFleet {
  const password = pulumi.secret(inputs.password);
  if (inputs.tls?.verifyClients && inputs.mode === "master-backup")
    throw argError(
      "ProxyFleet args",
      "tls.verifyClients",
      "not supported with master-backup on Docker yet: keepalived's check of the proxy cannot present a client certificate",
    );
  const hostCount = inputs.mode === "master-backup" ? 2 : inputs.hosts;
  const hostnames = Array.from({ length: hostCount }, (_, i) => `${name}-${i}`);
  const [first, second] = inputs.addresses.proxyAddresses;
  const proxies: docker.Container[] = [];
  const keepalived: docker.Container[] = [];
  // Each host waits for the one before (proxies report healthy only once they serve), so a change
  // that replaces proxies replaces one host at a time while the others keep serving.
  let previous: pulumi.Resource[] = [];
  hostnames.forEach((hostname, i) => {
    const proxy = createProxyContainer(
      name,
      hostname,
      inputs,
      password,
      parent,
      inputs.mode === "master-backup" ? inputs.addresses.proxyAddresses[i] : undefined,
      previous,
    );
    proxies.push(proxy);
    previous = [proxy];
    if (inputs.mode === "master-backup") {
      keepalived.push(
        createKeepalivedContainer(`${hostname}-keepalived`, {
          proxy,
          self: i === 0 ? first : second,
          peer: i === 0 ? second : first,
          // The first host starts as master; the other takes the floating IP when it fails.
          priority: i === 0 ? 150 : 100,
          virtualRouterId: virtualRouterIdFor(name),
          inputs,
          password,
          parent,
        }),
      );
      previous.push(keepalived.at(-1)!);
    }
  });
  if (inputs.mode === "master-backup") {
    return {
      proxies,
      balancers: keepalived,
      endpointHost: inputs.addresses.floatingIp,
      proxyAddresses: [first, second].map((a) => `${a}:${inputs.port}`),
    };
  }
  const haproxy = new docker.Container(
    `${name}-lb`,
    {
      name: `${name}-lb`,
      hostname: `${name}-lb`,
      image: inputs.haproxyImage,
      uploads: [
        {
          file: HAPROXY_CFG,
          content: renderHaproxyCfg({
            bind: { host: "0.0.0.0", port: inputs.port },
            backends: [],
            discover: { host: hostsAlias(name), port: inputs.port, slots: MAX_PROXY_HOSTS },
            httpCheck: { port: PROXY_ADMIN_PORT, path: "/readyz" },
            check: { intervalMs: 2000, fall: 3, rise: 2 },
          }),
        },
      ],
      networksAdvanced: [{ name: inputs.network, aliases: [`${name}-lb`] }],
      ports: [{ internal: inputs.port, external: inputs.port }],
      restart: "unless-stopped",
    },
    { parent, dependsOn: proxies, deleteBeforeReplace: true },
  );
  return {
    proxies,
    balancers: [haproxy],
    endpointHost: "127.0.0.1",
    proxyAddresses: hostnames.map((h) => `${h}:${inputs.port}`),
  };
}

function createProxyContainer(
  fleetName: string,
  hostname: string,
  inputs: DockerProxyFleetInputs,
  password: pulumi.Output<string>,
  parent: pulumi.Resource,
  staticAddress: string | undefined,
  after: pulumi.Resource[],
): docker.Container {
  return new docker.Container(
    hostname,
    {
      name: hostname,
      hostname,
      image: inputs.image,
      command: ["proxy", "--config", PROXY_CONFIG_PATH],
      uploads: [
        {
          file: PROXY_CONFIG_PATH,
          content: pulumi
            .all([password, inputs.users, inputs.previousPassword])
            .apply(([p, users, previous]) =>
              renderProxyConf({
                seeds: inputs.seeds,
                port: inputs.port,
                workers: inputs.workers,
                settings: inputs.settings,
                password: p,
                users,
                previousPassword: previous,
                ...(inputs.tls ? { tls: inputs.tls } : {}),
                ...(inputs.shardTls ? { shardTls: { serverName: inputs.shardTls.serverName } } : {}),
              }),
            ),
        },
        ...tlsUploads(inputs.tls),
        ...shardTlsUploads(inputs.shardTls),
      ],
      networksAdvanced: [
        {
          name: inputs.network,
          // Load-balanced: the alias HAProxy finds every host by.
          aliases: inputs.mode === "load-balanced" ? [hostname, hostsAlias(fleetName)] : [hostname],
          ...(staticAddress ? { ipv4Address: staticAddress } : {}),
        },
      ],
      healthcheck: {
        tests: [
          "CMD",
          "node",
          "-e",
          `fetch("http://127.0.0.1:${PROXY_ADMIN_PORT}/readyz").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
        ],
        interval: "5s",
        timeout: "3s",
        retries: 3,
        startPeriod: "10s",
      },
      restart: "unless-stopped",
      wait: true,
      waitTimeout: 120,
      // A replaced or deleted host drains (SIGTERM): without destroyGraceSeconds the provider stops
      // it with no grace at all, a SIGKILL that cuts the requests in flight on it.
      stopTimeout: PROXY_STOP_GRACE_SECONDS,
      destroyGraceSeconds: PROXY_STOP_GRACE_SECONDS,
    },
    { parent, deleteBeforeReplace: true, dependsOn: after },
  );
}

interface KeepalivedInputs {
  proxy: docker.Container;
  self: string;
  peer: string;
  priority: number;
  virtualRouterId: number;
  inputs: DockerProxyFleetInputs;
  password: pulumi.Output<string>;
  parent: pulumi.Resource;
}

function createKeepalivedContainer(name: string, k: KeepalivedInputs): docker.Container {
  return new docker.Container(
    name,
    {
      name,
      image: k.inputs.image,
      entrypoints: ["keepalived"],
      command: ["--dont-fork", "--log-console", "--vrrp", `--use-file=${KEEPALIVED_CONF}`],
      // Beside its proxy, in the proxy's network namespace: the floating IP lands on the proxy's interface.
      networkMode: pulumi.interpolate`container:${k.proxy.id}`,
      capabilities: { adds: ["NET_ADMIN", "NET_RAW", "NET_BROADCAST"] },
      user: "root",
      uploads: [
        {
          file: KEEPALIVED_CONF,
          content: k.password.apply((p) =>
            renderKeepalivedConf({
              instance: "dredis",
              interface: "eth0",
              virtualRouterId: k.virtualRouterId,
              vip: k.inputs.addresses.floatingIp,
              vipPrefixLength: k.inputs.addresses.prefixLength,
              selfAddress: k.self,
              peerAddresses: [k.peer],
              priority: k.priority,
              healthCheck: {
                // redis-cli exits 0 on any reply, NOAUTH or -ERR included; this check needs +PONG.
                command: k.inputs.tls
                  ? proxyTlsHealthCheckCommand(k.inputs.port, p)
                  : proxyHealthCheckCommand({ port: k.inputs.port, password: p }),
                intervalSeconds: 1,
                fall: 2,
                rise: 2,
              },
              // No VRRP PASS authentication: it needs VRRP v2, whose whole-second adverts would make
              // failover take 3 s or more; unicast VRRP v3 only accepts adverts from the known peer.
            }),
          ),
        },
      ],
      restart: "unless-stopped",
    },
    { parent: k.parent, deleteBeforeReplace: true },
  );
}

/** The proxy's certificate files, written into its container (secrets: the key never shows in a diff). */
function tlsUploads(tls: DockerProxyFleetInputs["tls"]): { file: string; content: pulumi.Input<string> }[] {
  if (tls === undefined) return [];
  const files: [string, pulumi.Input<string> | undefined][] = [
    [TLS_FILES.certificate, tls.certificate],
    [TLS_FILES.privateKey, tls.privateKey],
    [TLS_FILES.clientCa, tls.clientCa],
  ];
  return files
    .filter((f): f is [string, pulumi.Input<string>] => f[1] !== undefined)
    .map(([file, content]) => ({ file: `${PROXY_TLS_DIR}/${file}`, content: pulumi.secret(content) }));
}
