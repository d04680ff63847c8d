import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { freeNodePorts, freePorts } from "../../src/local/ports.ts";
import { startStandalone } from "../support/redis.ts";

function ephemeralStart(): number {
  return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
}

function bindable(port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
  });
}

test("freePorts gives distinct bindable ports below the ephemeral range, where no outgoing connection can take them", async () => {
  const ports = await freePorts(40);
  assert.equal(new Set(ports).size, 40);
  for (const port of ports) {
    assert.ok(port >= 10_000 && port < ephemeralStart(), `${port} outside [10000, ${ephemeralStart()})`);
    await bindable(port);
  }
});

test("freeNodePorts gives ports whose cluster bus (port + 10000) is bindable and below the ephemeral range too", async () => {
  const ports = await freeNodePorts(20);
  const all = [...ports, ...ports.map((p) => p + 10_000)];
  assert.equal(new Set(all).size, 40, "no port is another's bus port");
  for (const port of all) {
    assert.ok(port >= 10_000 && port < ephemeralStart(), `${port} outside [10000, ${ephemeralStart()})`);
    await bindable(port);
  }
});

test("a standalone test server started cluster-enabled gets a port whose default bus port lies below the ephemeral range", async (t) => {
  // Drawn by freePorts, port + 10000 lands in the ephemeral range about half the time: five
  // servers all below it by chance is about 1 in 20.
  for (let i = 0; i < 5; i++) {
    const server = await startStandalone(t, { "cluster-enabled": true, "cluster-config-file": "nodes.conf" });
    const bus = server.port + 10_000;
    assert.ok(bus < ephemeralStart(), `node ${server.port}: its bus port ${bus} is in the ephemeral range`);
  }
});
