/**
 * A shard's primary changing under a slot move (a failover of the source's or the target's shard):
 * what a node says it is now, and the error that names the change. The node that was a primary
 * when the move was planned is asked itself: once demoted, its own `CLUSTER NODES` names the
 * primary it now replicates, which is the shard's primary to move slots with from then on.
 */
import type { ErrorCodes } from "../../errors.ts";
import { DredisError } from "../../errors.ts";
import { isMaster, parseClusterNodes } from "./cluster-nodes.ts";
import type { NodePool } from "./node-pool.ts";

/** What a node says of itself: its id and, as a replica, its primary's id and address. */
export interface NodeRole {
  id: string;
  primary: boolean;
  primaryId?: string;
  primaryAddress?: string;
}

/** The node's own role, or undefined when it cannot be read (down, unreachable). */
export async function readRole(pool: NodePool, address: string): Promise<NodeRole | undefined> {
  let text: string;
  try {
    text = String(await pool.get(address).call("CLUSTER", "NODES"));
  } catch {
    return undefined;
  }
  const view = parseClusterNodes(text);
  const self = view.find((e) => e.flags.includes("myself"));
  if (!self) return undefined;
  if (isMaster(self)) return { id: self.id, primary: true };
  const primary = view.find((e) => e.id === self.masterId);
  return { id: self.id, primary: false, primaryId: self.masterId, primaryAddress: primary?.address };
}

/** A shard's primary at plan time: its shard name, node id and address. */
export interface PlannedPrimary {
  shard: string;
  id: string;
  address: string;
}

export type PrimaryCheck =
  | { changed: false }
  /** The node is a replica now and its new primary answers as a primary: move slots with it. */
  | { changed: true; id: string; address: string }
  /** The node changed but its successor cannot be used; `detail` says why. */
  | { changed: true; id?: undefined; address?: string; detail: string };

/**
 * Whether `planned` is still its shard's primary. Unchanged also when the node cannot be read: a
 * node that is down is the caller's other error (the source lost, the target unreachable).
 */
export async function checkPrimary(pool: NodePool, planned: PlannedPrimary): Promise<PrimaryCheck> {
  const role = await readRole(pool, planned.address);
  if (!role) return { changed: false };
  if (role.id !== planned.id)
    return {
      changed: true,
      address: planned.address,
      detail: `${planned.address} is now node ${role.id}, not ${planned.id}: it was reset or replaced`,
    };
  if (role.primary) return { changed: false };
  if (!role.primaryAddress)
    return {
      changed: true,
      detail: `${planned.address} is now a replica of ${role.primaryId ?? "no primary"}, a node it cannot give an address for`,
    };
  const successor = await readRole(pool, role.primaryAddress);
  if (!successor?.primary || successor.id !== role.primaryId)
    return {
      changed: true,
      address: role.primaryAddress,
      detail: `${planned.address} is now a replica of ${role.primaryAddress}, which ${successor ? "is not a primary itself" : "cannot be read"}`,
    };
  return { changed: true, id: successor.id, address: role.primaryAddress };
}

/** A primary of the plan that is no longer its shard's primary: who took over (if known) and why it cannot be followed. */
export interface PrimaryChange {
  planned: PlannedPrimary;
  now: string | undefined;
  detail: string;
}

/**
 * The exact error for primaries that changed during a move and could not be followed (or, for
 * the legacy driver, are not followed: its open slots name the old primary).
 */
export function primaryChangedError(
  code: typeof ErrorCodes.ATOMIC_MIGRATION | typeof ErrorCodes.MIGRATE,
  changes: readonly PrimaryChange[],
  slots: string,
  consequence: string,
): DredisError {
  const what = changes
    .map(
      ({ planned, now, detail }) =>
        `shard ${planned.shard}'s primary changed from ${planned.address} to ${now ?? "an unknown node"} (${detail})`,
    )
    .join("; ");
  return new DredisError(
    code,
    `${what} during the move of slots ${slots}. ${consequence} Check the cluster with: dredis cluster check ` +
      "--topology <topology>, then re-run the same command (dredis cluster apply or rebalance): it plans from the " +
      "cluster as it is, with each shard's current primary",
  );
}
