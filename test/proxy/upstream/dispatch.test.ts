import { test } from "node:test";
import assert from "node:assert/strict";
import { BusyLink } from "../../../src/proxy/busy-link.ts";
import type { BackendEvents } from "../../../src/proxy/backend.ts";
import { RequestKind } from "../../../src/proxy/request.ts";
import { until } from "../../support/redis.ts";
import {
  FakeConnection,
  FakeNetwork,
  FakeReader,
  Sink,
  connected,
  fakeRouter,
  request,
  silent,
  slotMap,
} from "./fakes.ts";

const threeShards = () =>
  slotMap([
    [0, 5460, "a:1"],
    [5461, 10922, "b:1"],
    [10923, 16383, "c:1"],
  ]);

test("a request goes to the master of its slot; one client's requests to a shard share one connection of the pool", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(threeShards()), { connectionsPerShard: 3 });
  const sink = new Sink();
  const requests = [0, 5460, 5461, 16383].map((slot) => request(sink, slot, { affinity: 7 }));
  for (const r of requests) router.dispatch(r);
  assert.deepEqual(
    requests.map((r) => net.connections.find((c) => c.inflight.includes(r))!.address),
    ["a:1", "a:1", "b:1", "c:1"],
  );
  const [first, second] = requests;
  assert.equal(
    net.connections.find((c) => c.inflight.includes(first!)),
    net.connections.find((c) => c.inflight.includes(second!)),
    "same client, same shard: same connection, so the shard sees them in order",
  );
  assert.equal(net.to("a:1").length, 3);
});

test("keyless requests spread over the masters; a node-targeted request goes to its node whatever its slot", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(threeShards()));
  const sink = new Sink();
  for (let i = 0; i < 3; i++) router.dispatch(request(sink, -1));
  assert.deepEqual(
    ["a:1", "b:1", "c:1"].map((a) => net.sentTo(a).length),
    [1, 1, 1],
  );
  const targeted = request(sink, 0, { target: "c:1" });
  assert.equal(targeted.kind, RequestKind.Node);
  router.dispatch(targeted);
  assert.equal(net.sentTo("c:1").at(-1), targeted);
});

test("a pinned request rides its session connection; once that is lost it fails instead of moving", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(threeShards()));
  const sink = new Sink();
  const session = router.openSessionConnection("b:1", 2) as FakeConnection;
  const watched = request(sink, 0, { pinned: session });
  assert.equal(watched.kind, RequestKind.Pinned);
  router.dispatch(watched);
  await connected();
  assert.deepEqual(session.inflight, [watched], "pinned beats the slot's owner (a:1)");
  session.reply("+OK\r\n");
  session.fail();
  const late = request(sink, 0, { pinned: session });
  router.dispatch(late);
  assert.equal(await sink.replyTo(late), "-ERR the connection this transaction watched on was lost\r\n");
  assert.equal(net.sentTo("a:1").length, 0);
});

test("a blocking request borrows a connection of its own, which is reused by the next one once it replied", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(threeShards()));
  const sink = new Sink();
  const shared = net.to("a:1")[0]!;
  const blocking = request(sink, 1, { dedicated: true });
  router.dispatch(blocking);
  await connected();
  const own = net.connections.find((c) => c.inflight.includes(blocking))!;
  assert.notEqual(own, shared);
  assert.equal(blocking.lentConnection, own);
  const plain = request(sink, 1);
  router.dispatch(plain);
  assert.deepEqual(shared.inflight, [plain], "other requests do not queue behind the blocked one");
  own.reply("*-1\r\n");
  const next = request(sink, 2, { dedicated: true });
  router.dispatch(next);
  assert.deepEqual(own.inflight, [next]);
});

test("requests for a node that refuses connections wait, and go once it answers again", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(threeShards()), { retryBudgetMs: 60_000 });
  const sink = new Sink();
  net.down.add("a:1");
  net.to("a:1")[0]!.fail("read ECONNRESET");
  const r = request(sink, 3);
  router.dispatch(r);
  assert.equal(router.waitingRequests, 1);
  assert.equal(router.ready, false);
  net.down.delete("a:1");
  await until(
    () => net.to("a:1").some((c) => c.inflight.includes(r)),
    5000,
    "the request to go once a:1 answers",
  );
  assert.equal(router.ready, true);
});

test("readiness: not ready, saying why, while the map misses slots or a master is down; ready once neither", async (t) => {
  const net = new FakeNetwork();
  const reader = new FakeReader(
    slotMap([
      [0, 8191, "a:1"],
      [8192, 16383, null],
    ]),
  );
  const router = await fakeRouter(t, net, reader);
  await connected();
  assert.equal(router.ready, false);
  assert.equal(router.notReadyReason, "the slot map does not cover every slot");
  net.down.add("a:1");
  reader.map = threeShards();
  await router.refresh();
  net.to("a:1")[0]?.fail("connect ECONNREFUSED");
  await connected();
  assert.equal(router.ready, false);
  assert.match(router.notReadyReason ?? "", /^a:1: /);
  net.down.delete("a:1");
  await until(() => router.notReadyReason === undefined, 5000, "every master up");
  assert.equal(router.ready, true);
});

/** A busy link over fake connections. */
function fakeLink(budgetMs = 60_000) {
  const connections: FakeConnection[] = [];
  let down = false;
  const link = new BusyLink(
    (protocol, events: BackendEvents) => {
      const c = new FakeConnection("the busy proxy", protocol, events);
      connections.push(c);
      queueMicrotask(() => (down ? c.fail("connect ENOENT") : c.open()));
      return c;
    },
    () => budgetMs,
    silent,
  );
  return { link, connections, setDown: (d: boolean) => (down = d) };
}

test("a CLUSTERDOWN from the busy proxy is passed to the client once, never retried by the worker", async (t) => {
  const { link, connections } = fakeLink();
  t.after(() => link.close());
  const sink = new Sink();
  const r = request(sink, -1, { kind: RequestKind.Busy });
  link.send(r);
  await connected();
  connections[0]!.reply("-CLUSTERDOWN no reachable master serves slot 5; retried for 6000 ms\r\n");
  assert.equal(
    sink.replies.get(r),
    "-CLUSTERDOWN no reachable master serves slot 5; retried for 6000 ms\r\n",
  );
  await new Promise((resolve) => setTimeout(resolve, 300)); // longer than any retry backoff
  assert.equal(connections.length, 1);
  assert.equal(connections[0]!.sends.length, 1, "sent exactly once");
});

test("the busy link: requests wait while the busy proxy is away; a write lost in flight is reported, a read goes again", async (t) => {
  const { link, connections, setDown } = fakeLink();
  t.after(() => link.close());
  const sink = new Sink();
  const write = request(sink, -1, { kind: RequestKind.Busy });
  const read = request(sink, -1, { kind: RequestKind.Busy, readonly: true });
  link.send(write);
  link.send(read);
  await connected();
  setDown(true);
  connections[0]!.fail("read ECONNRESET");
  assert.equal(
    sink.replies.get(write),
    "-ERR connection to the busy proxy was lost before it replied (read ECONNRESET); the command may or may not have run\r\n",
  );
  const later = request(sink, -1, { kind: RequestKind.Busy });
  link.send(later);
  assert.equal(link.waitingRequests, 2);
  setDown(false);
  await until(
    () => connections.some((c) => !c.closed && c.inflight.length === 2),
    5000,
    "the waiting requests to go once the busy proxy is back",
  );
  const back = connections.find((c) => !c.closed)!;
  assert.deepEqual(back.inflight, [read, later]);
});

test("the busy link gives up on a busy proxy that stays away after the budget, with CLUSTERDOWN", async (t) => {
  const { link, connections, setDown } = fakeLink(200);
  t.after(() => link.close());
  const sink = new Sink();
  setDown(true);
  const r = request(sink, -1, { kind: RequestKind.Busy });
  link.send(r);
  assert.equal(
    await sink.replyTo(r),
    "-CLUSTERDOWN the busy proxy (multi-key commands across slots) is not answering; retried for 200 ms\r\n",
  );
  assert.ok(connections.every((c) => c.sends.length === 0 || c.closed));
});
