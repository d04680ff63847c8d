/**
 * The resources the staging and prod stacks declare, counted by type: asserted by the mock tests
 * (test/components/stack-*.test.ts) and by the real engine's previews (test/engine/preview.test.ts),
 * so both check the same list.
 */

/** Staging: 3 shards, a master-backup proxy pair with leader election. */
export const STAGING_RESOURCES: Record<string, number> = {
  "distributed-redis:index:DistributedRedis": 1,
  // The ChangeGuard, which every shard waits for.
  "pulumi:index:Stash": 1,
  "random:index/randomPassword:RandomPassword": 1,
  "kubernetes:core/v1:Secret": 1 + 3 + 1,
  "distributed-redis:index:RedisShard": 3,
  "kubernetes:core/v1:Service": 3 + 1,
  "kubernetes:apps/v1:StatefulSet": 3,
  "kubernetes:policy/v1:PodDisruptionBudget": 3 + 1,
  "distributed-redis:index:SlotMigration": 1,
  "kubernetes:batch/v1:Job": 1,
  "distributed-redis:index:ProxyFleet": 1,
  "kubernetes:core/v1:ServiceAccount": 1,
  "kubernetes:rbac.authorization.k8s.io/v1:Role": 1,
  "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": 1,
  "kubernetes:apps/v1:Deployment": 1,
};

/** Prod: 6 shards, a load-balanced proxy fleet (its password given as a config secret). */
export const PROD_RESOURCES: Record<string, number> = {
  "distributed-redis:index:DistributedRedis": 1,
  // The ChangeGuard, which every shard waits for.
  "pulumi:index:Stash": 1,
  "kubernetes:core/v1:Secret": 1 + 6 + 1,
  "distributed-redis:index:RedisShard": 6,
  "kubernetes:core/v1:Service": 6 + 1,
  "kubernetes:apps/v1:StatefulSet": 6,
  "kubernetes:policy/v1:PodDisruptionBudget": 6 + 1,
  "distributed-redis:index:SlotMigration": 1,
  "kubernetes:batch/v1:Job": 1,
  "distributed-redis:index:ProxyFleet": 1,
  "kubernetes:apps/v1:Deployment": 1,
};

/** The same counts without the RandomPassword (the engine tests set the password as a config secret). */
export function withoutRandomPassword(counts: Record<string, number>): Record<string, number> {
  const { "random:index/randomPassword:RandomPassword": _random, ...rest } = counts;
  return rest;
}
