import { test } from "node:test";
import assert from "node:assert/strict";
import { TrackingHub, type TrackingMember, type TrackingRouter } from "../../src/proxy/tracking/hub.ts";

/** A router that never connects: these tests are about the hub's key bookkeeping only. */
const router: TrackingRouter = {
  map: null,
  openSessionConnection: () => assert.fail("no connection expected"),
  openTrackedConnection: () => assert.fail("no connection expected"),
  onMapChange: () => {},
  setTracked: () => {},
  retryHeld: () => {},
};

function member(bcastPrefixes: string[] | null = null) {
  const told: (string[] | null)[] = [];
  const m: TrackingMember = {
    bcastPrefixes,
    keys: new Set(),
    invalidate: (keys) => told.push(keys === null ? null : keys.map(String)),
  };
  return { m, told };
}

test("tracking hub: past its key limit the oldest key is invalidated and forgotten, as Redis's tracking-table-max-keys", () => {
  const hub = new TrackingHub(router, 1, 3);
  const { m, told } = member();
  hub.join(m, () => {});
  for (const key of ["a", "b", "c"]) hub.remember(key, m);
  assert.deepEqual(told, []);
  hub.remember("d", m);
  assert.deepEqual(told, [["a"]]);
  assert.deepEqual([...m.keys].sort(), ["b", "c", "d"]);
  hub.invalidated([Buffer.from("a"), Buffer.from("c")]);
  assert.deepEqual(told, [["a"], ["c"]], "a forgotten key is not reported again");
});

test("tracking hub: an invalidation reaches the clients that read the key and the BCAST clients of its prefix, once each", () => {
  const hub = new TrackingHub(router, 1);
  const reader = member();
  const other = member();
  const bcast = member(["user:"]);
  hub.join(reader.m, () => {});
  hub.join(other.m, () => {});
  let answered = false;
  hub.join(bcast.m, () => (answered = true));
  assert.ok(answered, "no master to set BCAST on: answered at once");
  hub.remember("user:1", reader.m);
  hub.remember("x", other.m);
  hub.invalidated([Buffer.from("user:1"), Buffer.from("user:2"), Buffer.from("y")]);
  assert.deepEqual(reader.told, [["user:1"]]);
  assert.deepEqual(other.told, []);
  assert.deepEqual(bcast.told, [["user:1", "user:2"]]);
  hub.leave(other.m);
  hub.invalidated(null);
  assert.deepEqual(reader.told, [["user:1"], null]);
  assert.deepEqual(other.told, [], "a client that left hears nothing");
});
