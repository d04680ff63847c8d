/**
 * Connection commands against a standalone redis-server. RESET sent in a pipeline: Redis answers
 * every command before it, in order, then +RESET, then the commands after it in the reset state;
 * each case sends one pipeline to both and compares the replies byte for byte. CLIENT HELP: Redis's
 * text for the subcommands the proxy runs.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { fileCleanup } from "../support/redis.ts";
import { startProxyAndReference, type ProxyAndReference } from "../support/fixture.ts";
import { RawClient } from "../support/raw-client.ts";
import { encodeCommand } from "../../src/resp/request-parser.ts";

const hooks = fileCleanup();
let servers: ProxyAndReference;

before(async () => {
  servers = await startProxyAndReference(hooks);
});

const END = "end-of-pipeline";

/**
 * Sends the commands in one write, then an ECHO marker, and returns every reply before the
 * marker's. Reading up to the marker (not a count) shows a dropped reply as a difference, not a hang.
 */
async function pipelined(port: number, commands: string[][]): Promise<string[]> {
  const client = await RawClient.connect(port);
  try {
    client.send(Buffer.concat([...commands, ["ECHO", END]].map((c) => encodeCommand(c))));
    const replies: string[] = [];
    for (;;) {
      const reply = (await client.next(1))[0]!.toString("latin1");
      if (reply === `$${END.length}\r\n${END}\r\n`) return replies;
      // HELLO's client id differs between the two servers.
      replies.push(reply.replace(/\$2\r\nid\r\n:\d+\r\n/, "$2\r\nid\r\n:N\r\n"));
    }
  } finally {
    client.close();
  }
}

async function sameAsRedis(commands: string[][]): Promise<string[]> {
  const viaProxy = await pipelined(servers.proxy.port, commands);
  const direct = await pipelined(servers.reference.port, commands);
  assert.deepEqual(viaProxy, direct, commands.map((c) => c.join(" ")).join(" | "));
  return viaProxy;
}

test("RESET after pipelined commands comes after their replies, in order (RESP2)", async () => {
  const replies = await sameAsRedis([
    ["SET", "reset:a", "1"],
    ["GET", "reset:a"],
    ["RESET"],
    ["GET", "reset:a"],
  ]);
  assert.deepEqual(replies, ["+OK\r\n", "$1\r\n1\r\n", "+RESET\r\n", "$1\r\n1\r\n"]);
});

test("RESET keeps the earlier replies of keys on every shard and of the busy proxy (RESP2 and RESP3)", async () => {
  const writes = ["x", "y", "z", "w"].map((k) => ["HSET", `reset:h:${k}`, "f", k]);
  const reads = ["x", "y", "z", "w"].map((k) => ["HGETALL", `reset:h:${k}`]);
  const crossSlot = ["MGET", "reset:h:x", "reset:h:y", "reset:h:z"];
  for (const hello of [
    ["HELLO", "2"],
    ["HELLO", "3"],
  ]) {
    // Replies after RESET are RESP2 again: HGETALL's map becomes a flat array.
    await sameAsRedis([hello, ...writes, ...reads, ["DBSIZE"], ["RESET"], ...reads, crossSlot]);
    await sameAsRedis([hello, ...reads, ["RESET"], ["RESET"], crossSlot]);
  }
});

test("RESET ends a transaction after its queued replies, and a WATCH after its reply", async () => {
  await sameAsRedis([
    ["SET", "{reset:t}a", "1"],
    ["MULTI"],
    ["INCR", "{reset:t}a"],
    ["GET", "{reset:t}a"],
    ["RESET"],
    ["EXEC"],
    ["GET", "{reset:t}a"],
  ]);
  await sameAsRedis([
    ["WATCH", "{reset:t}a"],
    ["GET", "{reset:t}a"],
    ["RESET"],
    ["SET", "{reset:t}a", "2"],
    ["MULTI"],
    ["INCR", "{reset:t}a"],
    ["EXEC"],
  ]);
  // A WATCH, a transaction run on its connection, then RESET and a new transaction.
  await sameAsRedis([
    ["WATCH", "{reset:t}a"],
    ["MULTI"],
    ["INCR", "{reset:t}a"],
    ["EXEC"],
    ["WATCH", "{reset:t}a"],
    ["RESET"],
    ["MULTI"],
    ["INCR", "{reset:t}a"],
    ["EXEC"],
  ]);
});

test("RESET after SUBSCRIBE comes after the subscription's confirmation (RESP2 and RESP3)", async () => {
  for (const hello of [
    ["HELLO", "2"],
    ["HELLO", "3"],
  ]) {
    await sameAsRedis([
      hello,
      ["SET", "reset:s", "v"],
      ["SUBSCRIBE", "reset:ch1", "reset:ch2"],
      ["PSUBSCRIBE", "reset:p*"],
      ["RESET"],
      ["GET", "reset:s"],
      ["PUBLISH", "reset:ch1", "nobody"],
    ]);
  }
});

test("RESET after CLIENT TRACKING comes after its replies and turns tracking off", async () => {
  await sameAsRedis([
    ["HELLO", "3"],
    ["CLIENT", "TRACKING", "ON"],
    ["SET", "reset:k", "v"],
    ["GET", "reset:k"],
    ["CLIENT", "TRACKINGINFO"],
    ["RESET"],
    ["CLIENT", "TRACKINGINFO"],
    ["GET", "reset:k"],
  ]);
});

test("RESET turns CLIENT REPLY OFF back on and answers itself, and a SKIP before it mutes it, as redis does", async () => {
  await sameAsRedis([
    ["SET", "reset:r", "1"],
    ["CLIENT", "REPLY", "OFF"],
    ["INCR", "reset:r"],
    ["RESET"],
    ["GET", "reset:r"],
    // Replies on again, in case RESET left them off (so the marker is answered either way).
    ["CLIENT", "REPLY", "ON"],
  ]);
  // SKIP applies to RESET itself, which answers nothing then (Redis clears only SKIP's "next").
  await sameAsRedis([["CLIENT", "REPLY", "SKIP"], ["RESET"], ["PING"]]);
  await sameAsRedis([
    ["SET", "reset:r", "1"],
    ["CLIENT", "REPLY", "SKIP"],
    ["INCR", "reset:r"],
    ["RESET"],
    ["PING"],
  ]);
});

test("CLIENT HELP is redis's text for the CLIENT subcommands the proxy runs (tracking ones included)", async () => {
  // Redis's lines, less CLIENT KILL's TYPE and USER filters (refused by the proxy), plus SETINFO
  // as Redis 7.2 words it (the proxy runs it whatever the shards' version).
  const lines = (reply: string) => reply.split("\r\n").slice(1, -1);
  const [direct] = await pipelined(servers.reference.port, [["CLIENT", "HELP"]]);
  const expected = lines(direct!);
  const filters = expected.findIndex((line) => line === "+    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)");
  assert.match(expected[filters + 2]!, /^\+ {4}\* USER /);
  expected.splice(filters, 4);
  const setname = expected.indexOf("+SETNAME <name>");
  expected.splice(
    setname + 2,
    0,
    "+SETINFO <option> <value>",
    "+    Set client meta attr. Options are:",
    "+    * LIB-NAME: the client lib name.",
    "+    * LIB-VER: the client lib version.",
  );
  for (const hello of [
    ["HELLO", "2"],
    ["HELLO", "3"],
  ]) {
    const [, help] = await pipelined(servers.proxy.port, [hello, ["CLIENT", "HELP"]]);
    assert.equal(help!.split("\r\n")[0], `*${expected.length}`);
    assert.deepEqual(lines(help!), expected);
  }
  for (const name of ["TRACKING", "CACHING", "GETREDIR", "TRACKINGINFO"])
    assert.ok(
      expected.some((line) => line.startsWith(`+${name} `) || line === `+${name}`),
      name,
    );
});
