/**
 * A cross-slot MSET or MGET of 10 keys through `SlotGrouper` (src/proxy/busy/key-split.ts), the
 * splitter the worker (`workerSplitMaxKeys`) and the busy proxy share, in isolation: parser
 * offsets in, part frames written, one request per node handed to a stand-in router, then every
 * part answered as a shard would (`+OK`, or the part's values) and the replies merged. Keys are
 * random 12-digit ones, as redis-benchmark's `__rand_int__` makes them.
 *
 *   node --import tsx bench/split.ts [--mget]
 *
 * Prints the CPU nanoseconds (process.cpuUsage: the machine is shared, wall time would count the
 * others) per command for twelve rounds of 100,000; the first rounds include warm-up.
 */
import { parseArgs } from "node:util";
import { SlotGrouper, splitCommand } from "../src/proxy/busy/key-split.ts";
import type { Request } from "../src/proxy/request.ts";
import type { ClusterRouter } from "../src/proxy/router.ts";
import { RequestParser, encodeCommand } from "../src/resp/request-parser.ts";

const { values } = parseArgs({ options: { mget: { type: "boolean", default: false } } });
const name = values.mget ? "MGET" : "MSET";

let seed = 12345;
const randomKey = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return `mk:${String(seed % 100_000).padStart(12, "0")}`;
};
const commands: { buf: Buffer; argc: number; args: Int32Array }[] = [];
const parser = new RequestParser(
  { maxBulkBytes: 1 << 29, maxArgs: 1 << 20 },
  (buf, _start, _end, argc, args) => commands.push({ buf, argc, args: Int32Array.from(args) }),
  (message) => {
    throw new Error(message);
  },
);
for (let i = 0; i < 64; i++) {
  const argv = [name];
  for (let k = 0; k < 10; k++) argv.push(...(values.mget ? [randomKey()] : [randomKey(), "xxx"]));
  parser.feed(encodeCommand(argv));
}

const masters = ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"];
const sent: Request[] = [];
const router = {
  masterFor: (slot: number) => masters[slot % 3],
  dispatch: (request: Request) => sent.push(request),
  retryRefused: () => false,
} as unknown as ClusterRouter;

/** The replies a shard gives the part commands in `frame`, one slice each as a backend hands them. */
function shardReplies(frame: Buffer): Buffer[] {
  const replies: Buffer[] = [];
  for (let at = 0; at < frame.length;) {
    const lineEnd = frame.indexOf(13, at);
    const argc = Number(frame.toString("latin1", at + 1, lineEnd));
    at = lineEnd + 2;
    for (let a = 0; a < argc; a++) {
      const headerEnd = frame.indexOf(13, at);
      at = headerEnd + 2 + Number(frame.toString("latin1", at + 1, headerEnd)) + 2;
    }
    const keys = argc - 1;
    replies.push(Buffer.from(values.mget ? `*${keys}\r\n${"$3\r\nxxx\r\n".repeat(keys)}` : "+OK\r\n"));
  }
  return replies;
}

const grouper = new SlotGrouper();
// The shards' replies to each command's requests, worked out on its first split (a split of the
// same command sends the same requests in the same order).
const answers: Buffer[][][] = [];
let merged = 0;
const done = () => merged++;
const N = 100_000;
for (let round = 1; round <= 12; round++) {
  const started = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const { buf, argc, args } = commands[i & 63]!;
    grouper.run(splitCommand(buf, args[0]!, args[1]!, argc)!, buf, argc, args, router, 1, 2, done);
    const answer = (answers[i & 63] ??= sent.map((request) => shardReplies(request.frame)));
    for (let r = 0; r < sent.length; r++) {
      const request = sent[r]!;
      const replies = answer[r]!;
      if (request.collect === null) request.sink!.complete(request, replies[0]!);
      else {
        for (const reply of replies) request.collect.push(reply);
        request.sink!.complete(request, replies.at(-1)!);
      }
    }
    sent.length = 0;
  }
  const cpu = process.cpuUsage(started);
  console.log(
    `round ${round}: ${(((cpu.user + cpu.system) * 1000) / N).toFixed(0)} ns CPU per 10-key ${name}`,
  );
}
if (merged !== 12 * N) throw new Error(`${merged} merged replies for ${12 * N} commands`);
