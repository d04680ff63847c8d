/**
 * A shard on Docker: per node, a volume and a redis-server container on the cluster's network,
 * reachable under its stable hostname (a network alias), restarted by Docker when it dies.
 *
 * Settings Redis takes live (password, persistence; memory below) stay out of the container's
 * inputs, every one of which replaces it: a one-shot "settings" container per node writes them
 * into a folder of the node's volume, which redis.conf includes and the health check and the
 * entrypoint read. A new password or persistence mode replaces only that writer: the running
 * node keeps going (the migration sets the change live and CONFIG REWRITE saves it into
 * redis.conf, after the includes, so a restart keeps it), and a node created later reads the
 * current files.
 *
 * Replacing a container (a new image, say) stops that node. So each container waits for the one
 * before it, replicas before their master, the first after the previous shard's master: the
 * engine starts a replacement only once the previous one's create completed, and a create
 * completes only when the health check says the node is back in the cluster and, as a replica,
 * synced (`wait`). One node of the cluster is down at a time. (dependsOn-only edges do not make
 * the engine replace dependents.)
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../plan/spec.ts";
import { shardHealthCheckScript } from "../plan/health-check.ts";
import {
  renderShardEntrypoint,
  SHARD_HANDOVER_TIMEOUT_SECONDS,
  SHARD_STOP_GRACE_SECONDS,
  shardEntrypointCommand,
} from "../plan/shard-entrypoint.ts";
import { REDIS_PORT, type ShardPlan } from "../plan/topology.ts";
import { shardTlsFiles } from "../plan/shard-tls.ts";
import { TLS_FILES } from "../plan/tls.ts";
import type { ShardTlsSpec } from "../shard-tls.ts";
import {
  REDIS_CONF_DIR,
  REDIS_DATA_DIR,
  renderAuthConf,
  renderMemoryConf,
  renderPersistenceConf,
  renderShardRedisConf,
} from "../plan/redis-conf.ts";

export interface DockerShardInputs {
  shard: ShardPlan;
  persistence: ClusterSpec["persistence"];
  image: pulumi.Input<string>;
  network: pulumi.Input<string>;
  password: pulumi.Input<string>;
  drainGuard?: pulumi.ResourceHook;
  /** What the first container waits for: the previous shard's master. */
  rollAfter: pulumi.Resource[];
  /** TLS-only nodes: the certificate files go with the other settings. */
  tls?: Extract<ShardTlsSpec, { platform: "docker" }>;
}

export interface DockerShard {
  volumes: docker.Volume[];
  /** In roll order: the replicas, then the master. */
  containers: docker.Container[];
}

const MEMORY_CONF = `${REDIS_CONF_DIR}/memory.conf`;
/** On the node's volume: written by the settings container, read by the node. */
const SETTINGS_DIR = `${REDIS_DATA_DIR}/.dredis`;
const SETTINGS_UPLOAD_DIR = "/tmp/dredis-settings";
/** The node's settings files; the TLS ones with `tls`. */
type SettingsFile =
  "auth.conf" | "persistence.conf" | "password" | (typeof TLS_FILES)[keyof typeof TLS_FILES];

/** Seconds a new node gets to become healthy: a full sync of a few GB at 10 MB/s. */
const HEALTHY_SECONDS = 900;

export function createDockerShard(
  name: string,
  inputs: DockerShardInputs,
  parent: pulumi.Resource,
): DockerShard {
  const password = pulumi.secret(inputs.password);
  const hooks = inputs.drainGuard ? { beforeDelete: [inputs.drainGuard] } : undefined;
  const volumes: docker.Volume[] = [];
  const containers: docker.Container[] = [];
  let previous = inputs.rollAfter;
  // With TLS, the certificate files are settings too: a renewed certificate replaces only the
  // writer, and the running node keeps serving (the entrypoint reloads it, see TLS there).
  const tls = inputs.tls === undefined ? undefined : shardTlsFiles(SETTINGS_DIR);
  // The node's entrypoint: on SIGTERM a master hands its slots to a caught-up replica, then stops.
  const entrypoint = renderShardEntrypoint({
    configPath: `${REDIS_CONF_DIR}/redis.conf`,
    handoverTimeoutSeconds: SHARD_HANDOVER_TIMEOUT_SECONDS,
    passwordFile: `${SETTINGS_DIR}/password`,
    tls,
  });
  const settings: Partial<Record<SettingsFile, pulumi.Input<string>>> = {
    "auth.conf": password.apply(renderAuthConf),
    "persistence.conf": renderPersistenceConf(inputs.persistence),
    password,
    ...(inputs.tls === undefined
      ? {}
      : {
          [TLS_FILES.certificate]: pulumi.secret(inputs.tls.certificate),
          [TLS_FILES.privateKey]: pulumi.secret(inputs.tls.privateKey),
          [TLS_FILES.clientCa]: inputs.tls.ca,
        }),
  };
  const settingsFiles = Object.keys(settings) as SettingsFile[];
  const written = new pulumi.ResourceHook(`${name}-settings-written`, (args) => {
    const { exitCode, containerLogs } = (args.newOutputs ?? {}) as {
      exitCode?: number;
      containerLogs?: string;
    };
    if (exitCode !== undefined && exitCode !== 0)
      throw new Error(
        `${args.name}: writing the node's settings failed (exit ${exitCode}):\n${containerLogs ?? ""}`,
      );
  });
  const [master, ...replicas] = inputs.shard.nodes;
  for (const node of [...replicas, master!]) {
    const volume = new docker.Volume(
      `${name}-${node.ordinal}-data`,
      { name: `${node.resourceName}-data` },
      // The data outlives a container replacement; deleting the shard is what deletes it.
      { parent, hooks },
    );
    volumes.push(volume);
    const writer = new docker.Container(
      `${name}-${node.ordinal}-settings`,
      {
        name: `${node.resourceName}-settings`,
        image: inputs.image,
        // Whole files swapped in by rename: a node starting meanwhile reads the old or the new one.
        command: [
          "sh",
          "-c",
          `set -e; umask 077; mkdir -p ${SETTINGS_DIR}; for f in ${settingsFiles.join(" ")}; do ` +
            `cp ${SETTINGS_UPLOAD_DIR}/$f ${SETTINGS_DIR}/$f.new; mv ${SETTINGS_DIR}/$f.new ${SETTINGS_DIR}/$f; done`,
        ],
        uploads: settingsFiles.map((file) => ({
          file: `${SETTINGS_UPLOAD_DIR}/${file}`,
          content: settings[file]!,
        })),
        volumes: [{ volumeName: volume.name, containerPath: REDIS_DATA_DIR }],
        networkMode: "none",
        attach: true,
        logs: true,
        // A failed write is reported by the hook with its logs.
        mustRun: false,
        restart: "no",
      },
      { parent, hooks: { ...hooks, afterCreate: [written] } },
    );
    containers.push(
      new docker.Container(
        `${name}-${node.ordinal}`,
        {
          name: node.resourceName,
          hostname: node.hostname,
          image: inputs.image,
          // Not redis-server directly: the image's entrypoint runs this shell as root, which also lets
          // CONFIG REWRITE save live changes into the uploaded (root-owned) redis.conf.
          command: shardEntrypointCommand(entrypoint),
          uploads: [
            {
              file: `${REDIS_CONF_DIR}/redis.conf`,
              content: renderShardRedisConf({
                persistence: inputs.persistence,
                maxmemoryMb: inputs.shard.maxmemoryMb,
                announceHostname: node.hostname,
                memoryConfPath: MEMORY_CONF,
                persistenceConfPath: `${SETTINGS_DIR}/persistence.conf`,
                authConfPath: `${SETTINGS_DIR}/auth.conf`,
                tls,
              }),
            },
            // Index 1: see ignoreChanges below.
            { file: MEMORY_CONF, content: renderMemoryConf(inputs.shard.maxmemoryMb) },
          ],
          networksAdvanced: [{ name: inputs.network, aliases: [node.hostname] }],
          volumes: [{ volumeName: volume.name, containerPath: REDIS_DATA_DIR }],
          healthcheck: {
            // The password from the settings file: never on a command line, and current after a rotation.
            tests: ["CMD-SHELL", shardHealthCheckScript(REDIS_PORT, `${SETTINGS_DIR}/password`, tls)],
            interval: "5s",
            timeout: "3s",
            retries: 5,
            startPeriod: "10s",
          },
          memory: inputs.shard.memoryLimitMb,
          // No swap (memory + swap = memory). Left unset, Docker allows as much swap again, and a later
          // in-place update that raises `memory` above that first total is refused by Docker ("Memory
          // limit should be smaller than already set memoryswap limit"), so growing shardMemoryMb more
          // than about twofold failed; the provider only sends both when both are set.
          memorySwap: inputs.shard.memoryLimitMb,
          restart: "unless-stopped",
          // Healthy before anything that depends on the node (the next node, the migration) starts.
          wait: true,
          waitTimeout: HEALTHY_SECONDS,
          // A replacement or delete stops the node (SIGTERM, so the handover, then this long) before
          // it removes it; without destroyGraceSeconds the provider removes it without a stop.
          stopTimeout: SHARD_STOP_GRACE_SECONDS,
          destroyGraceSeconds: SHARD_STOP_GRACE_SECONDS,
        },
        // The container name is fixed (it is the node's identity), so a replacement must free it first.
        {
          parent,
          deleteBeforeReplace: true,
          hooks,
          // Its settings are written before it first starts.
          dependsOn: [...previous, writer],
          // A new size is no reason to stop a node: the container's limit is updated in place, and
          // the migration sets maxmemory live on every node and saves it (CONFIG SET + REWRITE),
          // so the file keeps the size the node was created with.
          ignoreChanges: ["uploads[1].content"],
        },
      ),
    );
    previous = [containers.at(-1)!];
  }
  return { volumes, containers };
}
