/**
 * Cluster administration, programmatic API: what `dredis cluster ...` runs, for callers that
 * run it in-process (the local platform). Every function takes the desired topology and
 * `AdminOptions`, and returns plain JSON-able objects.
 */
export { applyTopology, type ApplyPlan, type ApplyResult } from "./apply.ts";
export { checkCluster, type CheckReport, type ShardReport } from "./check.ts";
export { createCluster, createAssignment, type SlotAssignment } from "./create.ts";
export { fixCluster, type FixPlan, type FixResult } from "./fix.ts";
export { isGateRefusal } from "./gates.ts";
export type { AdminOptions, Credentials, ProgressEvent } from "./options.ts";
export { balanceMoves, evenQuotas, type SlotMove } from "./plan.ts";
export type { Problem, ProblemKind } from "./problems.ts";
export { progressReporter } from "./progress-reporter.ts";
export { planRebalance, rebalanceCluster, type RebalancePlan, type RebalanceResult } from "./rebalance.ts";
export { addShard, removeShard } from "./shards.ts";
export { parseMemorySize, resizeMemory, type ResizeResult } from "./memory.ts";
export {
  handover,
  rollCluster,
  waitSynced,
  type RestartNode,
  type RollOptions,
  type RollResult,
} from "./roll.ts";
export {
  addPassword,
  applyLiveSettings,
  dropPreviousPasswords,
  persistenceSettings,
  everyNodeAccepts,
  PERSISTENCE_MODES,
  type Persistence,
} from "./live-settings.ts";
