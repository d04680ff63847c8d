/**
 * The fixed limits of the proxy's shard side, named and explained in one place. The ones an
 * operator may want to change are in the config instead (config.ts: connectionsPerShard,
 * refreshIntervalMs, retryBudgetMs).
 */

/** MOVED/ASK hops one request may follow before its last redirect goes to the client (a loop guard). */
export const MAX_REDIRECTS = 16;

/** Backoff between TRYAGAIN/CLUSTERDOWN/LOADING retries: 10 ms doubling per retry, at most this. */
export const RETRY_BASE_MS = 10;
export const RETRY_CAP_MS = 200;

/** While requests wait for an unavailable shard, the map is re-read and they are retried this often. */
export const UNAVAILABLE_REFRESH_MS = 100;

/** A new backend connection that has not connected by then is given up (and reconnected with backoff). */
export const CONNECT_TIMEOUT_MS = 2000;
/** TCP keepalive probe delay on backend connections, so a vanished peer is noticed. */
export const KEEPALIVE_MS = 10_000;

/** Reconnect backoff of a shared connection: full jitter between 0 and min(cap, base * 2^failures). */
export const RECONNECT_BASE_MS = 50;
export const RECONNECT_CAP_MS = 2000;
/** At most this many new backend connections per second per process, so a restarted shard meets no storm. */
export const RECONNECTS_PER_SECOND = 20;
/** A reconnect that found the bucket empty tries again after this plus up to the same again at random. */
export const RECONNECT_THROTTLED_MS = 100;

/** Idle connections kept per node for blocking commands (each blocking request borrows one). */
export const MAX_IDLE_DEDICATED = 8;
/** Connections to a node that stopped being a master are closed once idle, or after this at the latest. */
export const RETIRED_CLOSE_MS = 5000;

/**
 * The replicas' state is read (after each map load) only while reads may go to replicas; after
 * this many refresh intervals with none, the reads and their control connections stop, until the
 * next read that may go to a replica.
 */
export const REPLICA_STATE_IDLE_REFRESHES = 12;

/** Slot-map reads (control connections, ./control-connection.ts): connect and command timeouts. */
export const CONTROL_CONNECT_TIMEOUT_MS = 1000;
export const CONTROL_COMMAND_TIMEOUT_MS = 2000;

/**
 * The default retry budget ("auto") covers a shard failover, computed from the cluster's
 * `cluster-node-timeout` (read from the shards with CONFIG GET at every map load):
 *
 *   budget = 2 x cluster-node-timeout + ELECTION_ALLOWANCE_MS
 *
 * Redis marks a silent master PFAIL after node-timeout, and FAIL once a majority of masters agree
 * through gossip, which takes up to about another node-timeout. The replica then waits
 * 500 ms + random(0..500) ms + rank x 1000 ms before it asks for votes; the allowance covers that
 * delay for a rank-0 replica plus one rank step. Measured on the local platform with
 * node-timeout 5 s: promotion about 8 s after the kill, within the 12 s this gives.
 */
export const ELECTION_ALLOWANCE_MS = 2000;
/** Redis's own default node timeout, assumed until one is read (or when CONFIG GET is refused). */
export const DEFAULT_NODE_TIMEOUT_MS = 15_000;

export function failoverBudgetMs(nodeTimeoutMs: number): number {
  return 2 * nodeTimeoutMs + ELECTION_ALLOWANCE_MS;
}

/**
 * The least a request waits for the busy proxy to come back. Its restart (fork, load, first slot
 * map) does not depend on the cluster's node timeout, and took over 6 s on a loaded 2-core machine;
 * an explicit `retryBudgetMs` above this still wins.
 */
export const BUSY_RESTART_BUDGET_MS = 30_000;
