/**
 * DistributedRedis args the component tests share: a Kubernetes cluster in namespace "redis" whose
 * shard certificate a cert-manager ClusterIssuer "internal-ca" signs (a Certificate "<name>-shard-tls"
 * fills the Secret the nodes mount). test/components/shard-tls.test.ts asserts what it renders;
 * change-guard.test.ts that its Secret and Certificate wait for the change guard.
 */
import type { DistributedRedisArgs } from "../../components/distributed-redis.ts";

export function kubernetesWithIssuer(): DistributedRedisArgs {
  return {
    platform: "kubernetes",
    image: "registry.example/dredis@sha256:abc",
    password: "pw",
    namespace: "redis",
    shardTls: { issuerRef: { name: "internal-ca", kind: "ClusterIssuer" } },
  };
}
