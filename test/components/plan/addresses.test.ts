import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { planDockerAddresses } from "../../../components/plan/addresses.ts";

const toInt = (a: string) => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);

test("pinned addresses lie in the subnet but outside Docker's ipRange", () => {
  fc.assert(
    fc.property(
      fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.nat(255)),
      fc.integer({ min: 16, max: 24 }),
      (octets, prefix) => {
        const plan = planDockerAddresses(`${octets.join(".")}/${prefix}`);
        const network = toInt(plan.subnet.split("/")[0]!);
        const size = 2 ** (32 - prefix);
        const [rangeStart, rangePrefix] = plan.ipRange.split("/");
        assert.equal(network % size, 0, "the subnet is aligned");
        assert.equal(toInt(rangeStart!), network + size / 2);
        assert.equal(Number(rangePrefix), prefix + 1);
        const pinned = [plan.floatingIp, ...plan.proxyAddresses];
        assert.equal(new Set([...pinned, plan.gateway]).size, 4);
        for (const address of pinned) {
          const offset = toInt(address) - network;
          assert.ok(offset > 1 && offset < size / 2, `${address} outside ipRange ${plan.ipRange}`);
        }
      },
    ),
  );
});

test("the default network puts the floating IP and proxies at fixed low addresses", () => {
  assert.deepEqual(planDockerAddresses("172.28.0.0/16"), {
    subnet: "172.28.0.0/16",
    prefixLength: 16,
    gateway: "172.28.0.1",
    ipRange: "172.28.128.0/17",
    floatingIp: "172.28.0.5",
    proxyAddresses: ["172.28.0.10", "172.28.0.11"],
  });
});

test("a floating IP inside Docker's ipRange or on a proxy address is refused, naming the key", () => {
  assert.throws(
    () => planDockerAddresses("172.28.0.0/16", "172.28.200.1"),
    /invalid fixedIp "172.28.200.1": .*outside Docker's ipRange/,
  );
  assert.throws(() => planDockerAddresses("172.28.0.0/16", "172.28.0.10"), /invalid fixedIp/);
  assert.throws(() => planDockerAddresses("172.28.0.0/16", "172.28.0.1"), /invalid fixedIp/);
  assert.equal(planDockerAddresses("172.28.0.0/16", "172.28.0.99").floatingIp, "172.28.0.99");
});
