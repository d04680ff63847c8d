import { test } from "node:test";
import assert from "node:assert/strict";
import { until } from "../../support/redis.ts";
import { MAX_REDIRECTS } from "../../../src/proxy/upstream/limits.ts";
import { FakeNetwork, FakeReader, Sink, fakeRouter, request, slotMap } from "./fakes.ts";

const twoShards = () =>
  slotMap([
    [0, 8191, "a:1"],
    [8192, 16383, "b:1"],
  ]);

test("MOVED points the slot at the new owner and sends the request there; later requests go there at once", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(twoShards()));
  const sink = new Sink();
  const first = request(sink, 5);
  router.dispatch(first);
  const [a] = net.to("a:1");
  assert.deepEqual(a!.inflight, [first]);

  a!.reply("-MOVED 5 b:1\r\n");
  assert.equal(router.map!.masterFor(5), "b:1", "the map learned the move before any re-read");
  assert.deepEqual(net.sentTo("b:1"), [first]);
  net.to("b:1")[0]!.reply("$1\r\nx\r\n");
  assert.equal(await sink.replyTo(first), "$1\r\nx\r\n");

  const second = request(sink, 5);
  router.dispatch(second);
  assert.equal(net.sentTo("a:1").length, 1, "no second trip to the old owner");
  assert.deepEqual(net.sentTo("b:1"), [first, second]);
});

test("ASK sends the request once to the importing node behind ASKING, and leaves the map as it was", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(twoShards()));
  const sink = new Sink();
  const asked = request(sink, 7);
  router.dispatch(asked);
  net.to("a:1")[0]!.reply("-ASK 7 b:1\r\n");

  const b = net.to("b:1")[0]!;
  assert.deepEqual(
    b.sends.map((s) => [s.request, s.asking]),
    [[asked, true]],
  );
  b.reply("+OK\r\n");
  assert.equal(await sink.replyTo(asked), "+OK\r\n");
  assert.equal(router.map!.masterFor(7), "a:1");

  const next = request(sink, 7);
  router.dispatch(next);
  assert.equal(
    net.to("a:1")[0]!.sends.at(-1)!.request,
    next,
    "the next request for the slot goes to its owner",
  );
  assert.equal(net.to("a:1")[0]!.sends.at(-1)!.asking, false);
});

for (const refusal of [
  "TRYAGAIN Multiple keys request during rehashing of slot",
  "CLUSTERDOWN The cluster is down",
]) {
  const kind = refusal.split(" ")[0]!;
  test(`${kind} is retried with backoff within the budget, then the client gets the refusal itself`, async (t) => {
    const net = new FakeNetwork();
    const router = await fakeRouter(t, net, new FakeReader(twoShards()), { retryBudgetMs: 300 });
    const sink = new Sink();
    const r = request(sink, 9);
    router.dispatch(r);
    const a = net.to("a:1")[0]!;
    let answered = 0;
    // Refuse every attempt until the proxy gives up and answers the client.
    while (!sink.replies.has(r)) {
      await until(
        () => a.inflight.length > 0 || sink.replies.has(r),
        5000,
        `a retry of the ${kind}ed request`,
        5,
      );
      if (a.inflight.length > 0) {
        a.reply(`-${refusal}\r\n`);
        answered++;
      }
    }
    assert.equal(sink.replies.get(r), `-${refusal}\r\n`);
    assert.ok(answered >= 2, `retried before giving up (${answered} attempts)`);
    assert.equal(a.sends.length, answered);
  });
}

test(`a request that keeps being redirected stops after ${MAX_REDIRECTS} redirects and gets the last one`, async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(twoShards()));
  const sink = new Sink();
  const r = request(sink, 3);
  router.dispatch(r);
  for (let hop = 0; !sink.replies.has(r); hop++) {
    const [from, to] = hop % 2 === 0 ? ["a:1", "b:1"] : ["b:1", "a:1"];
    net.to(from)[0]!.reply(`-MOVED 3 ${to}\r\n`);
  }
  assert.match(sink.replies.get(r)!, /^-MOVED 3 /);
  assert.equal(net.sentTo("a:1").length + net.sentTo("b:1").length, MAX_REDIRECTS + 1);
});

test("a request for a slot no master serves waits, and goes as soon as a master appears in the map", async (t) => {
  const net = new FakeNetwork();
  const reader = new FakeReader(
    slotMap([
      [0, 8191, "a:1"],
      [8192, 16383, null],
    ]),
  );
  const router = await fakeRouter(t, net, reader, { retryBudgetMs: 60_000 });
  const sink = new Sink();
  const r = request(sink, 9000);
  router.dispatch(r);
  assert.equal(router.waitingRequests, 1);
  assert.equal(net.sentTo("c:1").length, 0);

  reader.map = slotMap([
    [0, 8191, "a:1"],
    [8192, 16383, "c:1"],
  ]);
  await router.refresh();
  await until(() => net.sentTo("c:1").length === 1, 5000, "the parked request to go to the new master");
  assert.equal(router.waitingRequests, 0);
  net.to("c:1")[0]!.reply(":1\r\n");
  assert.equal(await sink.replyTo(r), ":1\r\n");
});

test("a parked request past its budget fails with CLUSTERDOWN naming the slot and the budget", async (t) => {
  const net = new FakeNetwork();
  const reader = new FakeReader(slotMap([[0, 16383, null]]));
  const router = await fakeRouter(t, net, reader, { retryBudgetMs: 200 });
  const sink = new Sink();
  const r = request(sink, 42);
  router.dispatch(r);
  assert.equal(
    await sink.replyTo(r),
    "-CLUSTERDOWN no reachable master serves slot 42; retried for 200 ms\r\n",
  );
});

test("a lost shard connection: reads in flight go again once it is back, writes in flight get the may-or-may-not-have-run error", async (t) => {
  const net = new FakeNetwork();
  const router = await fakeRouter(t, net, new FakeReader(twoShards()), { retryBudgetMs: 60_000 });
  const sink = new Sink();
  const read = request(sink, 1, { readonly: true });
  const write = request(sink, 2);
  router.dispatch(read);
  router.dispatch(write);
  const lost = net.to("a:1")[0]!;
  lost.fail("read ECONNRESET");

  assert.equal(
    await sink.replyTo(write),
    "-ERR connection to shard a:1 was lost before it replied (read ECONNRESET); the command may or may not have run\r\n",
  );
  await until(() => net.to("a:1").length === 1 && net.to("a:1")[0] !== lost, 5000, "a reconnect to a:1");
  const again = net.to("a:1")[0]!;
  await until(() => again.inflight.includes(read), 5000, "the read to be sent again");
  again.reply("$1\r\nv\r\n");
  assert.equal(await sink.replyTo(read), "$1\r\nv\r\n");
  assert.equal(sink.replies.size, 2);
});

test("the default budget is derived from the cluster's node timeout; an explicit one wins", async (t) => {
  const auto = await fakeRouter(t, new FakeNetwork(), new FakeReader(twoShards(), 5000), {
    retryBudgetMs: "auto",
  });
  assert.equal(auto.retryBudgetMs, 12_000, "2 x 5000 ms + 2000 ms election allowance");
  const fixed = await fakeRouter(t, new FakeNetwork(), new FakeReader(twoShards(), 5000), {
    retryBudgetMs: 700,
  });
  assert.equal(fixed.retryBudgetMs, 700);
  const refused = new FakeReader(twoShards());
  refused.nodeTimeoutMs = undefined;
  const unreadable = await fakeRouter(t, new FakeNetwork(), refused, {
    retryBudgetMs: "auto",
  });
  assert.equal(
    unreadable.retryBudgetMs,
    32_000,
    "Redis's default node timeout (15 s) when CONFIG GET is refused",
  );
});
