/**
 * The package's components: the entry point `PulumiPlugin.yaml` names, so other languages can
 * use them through `pulumi package add`.
 */
export { DistributedRedis, type DistributedRedisArgs } from "./distributed-redis.ts";
export { ProxyFleet, type ProxyFleetArgs } from "./proxy-fleet.ts";
export { RedisShard, type RedisShardArgs } from "./redis-shard.ts";
export { SlotMigration, type SlotMigrationArgs } from "./slot-migration.ts";
