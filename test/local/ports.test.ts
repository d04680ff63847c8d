import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { freePorts } from "../../src/local/ports.ts";

test("freePorts gives distinct bindable ports below the ephemeral range, where no outgoing connection can take them", async () => {
  const ephemeralStart = Number(
    readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
  );
  const ports = await freePorts(40);
  assert.equal(new Set(ports).size, 40);
  for (const port of ports) {
    assert.ok(port >= 10_000 && port < ephemeralStart, `${port} outside [10000, ${ephemeralStart})`);
    await new Promise<void>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
    });
  }
});
