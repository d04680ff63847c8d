/**
 * A shard container's memory limit against what Docker does with it. Found by `pulumi up` of the
 * dev stack under the real engine (docker.io 20.10, pulumi-docker 5.2): with only `memory` set,
 * Docker gives a container as much swap again (memory + swap = 2 x memory), the provider reads that
 * total back, and
 * - the next `pulumi up` after a shard is created updated its containers (`[diff: -memorySwap]`);
 * - growing shardMemoryMb 128 -> 512 failed on the first container: the provider's in-place update
 *   sends `memory` alone, and Docker refuses a memory above the memory + swap total already set
 *   ("Memory limit should be smaller than already set memoryswap limit").
 * Docker's rules are modelled below (moby daemon/update.go and daemon_unix.go, the provider's
 * resourceDockerContainerUpdate); the plan is the day-2 recorder's (./day2).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { installRecorder, type State } from "./day2/record.ts";
import { stackSpec } from "./support/stack-config.ts";

installRecorder();
const { change } = await import("./day2/scenario.ts");

const dev = stackSpec("dev");
const CONTAINER = "docker:index/container:Container";
const isShardNode = (s: State) => s.type === CONTAINER && /^redis-shard-\d+-\d+$/.test(s.name);

interface Limits {
  memory: number;
  memorySwap?: number;
}
const limits = (s: State): Limits => s.inputs as unknown as Limits;

/** The memory + swap total Docker sets at create (MB): twice the memory when none is given. */
function createdMemorySwap({ memory, memorySwap }: Limits): number {
  return memorySwap === undefined || memorySwap === 0 ? 2 * memory : memorySwap;
}

/**
 * Docker's answer to the provider's in-place update of a container created with `created`: the
 * provider sends memorySwap only when it is set, and Docker then refuses a memory above the total
 * already in force.
 */
function dockerUpdateRefusal(created: Limits, next: Limits): string | undefined {
  const total = next.memorySwap ?? createdMemorySwap(created);
  return next.memory > total
    ? `memory ${next.memory} MB above the memory + swap total ${total} MB already set`
    : undefined;
}

test("no shard node can swap: memory + swap is the memory limit", async () => {
  const { news } = await change({ spec: dev }, { spec: dev });
  const nodes = [...news.values()].filter(isShardNode);
  assert.equal(nodes.length, 6);
  for (const node of nodes) assert.equal(limits(node).memorySwap, limits(node).memory, node.name);
});

test("a re-run changes nothing: Docker keeps the memory + swap total asked for", async () => {
  const { news } = await change({ spec: dev }, { spec: dev });
  for (const node of [...news.values()].filter(isShardNode))
    assert.equal(createdMemorySwap(limits(node)), limits(node).memorySwap, node.name);
});

for (const [from, to] of [
  [128, 512],
  [64, 4096],
  [4096, 256],
] as const)
  test(`shardMemoryMb ${from} -> ${to}: Docker accepts every shard container's in-place update`, async () => {
    const c = await change(
      { spec: { ...dev, shardMemoryMb: from } },
      { spec: { ...dev, shardMemoryMb: to } },
    );
    const nodes = [...c.news.values()].filter(isShardNode);
    assert.equal(nodes.length, 6);
    for (const node of nodes) {
      assert.equal(c.plan.get(node.key)!.action, "update", `${node.name} is not updated in place`);
      const refusal = dockerUpdateRefusal(limits(c.olds.get(node.key)!), limits(node));
      assert.equal(refusal, undefined, `${node.name}: Docker refuses the update: ${refusal}`);
    }
  });
