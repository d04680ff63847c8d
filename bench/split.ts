/**
 * The busy proxy's split of one MSET of 10 keys across slots, in isolation: parser offsets in,
 * part frames written and one request per node handed to a stand-in router that drops them.
 *
 *   node --import tsx bench/split.ts
 *
 * Prints nanoseconds per split over five rounds of 300,000 (the first rounds include warm-up).
 */
import { SlotGrouper, splitCommand } from "../src/proxy/busy/key-split.ts";
import type { ClusterRouter } from "../src/proxy/router.ts";
import { RequestParser, encodeCommand } from "../src/resp/request-parser.ts";

const argv = ["MSET"];
for (let i = 0; i < 10; i++) argv.push(`mk:${1000 + i * 37}`, "xxx");
let parsed: { buf: Buffer; argc: number; args: Int32Array } | undefined;
const parser = new RequestParser(
  { maxBulkBytes: 1 << 29, maxArgs: 1 << 20 },
  (buf, _start, _end, argc, args) => (parsed = { buf, argc, args: Int32Array.from(args) }),
  (message) => {
    throw new Error(message);
  },
);
parser.feed(encodeCommand(argv));
const { buf, argc, args } = parsed!;
const masters = ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"];
const router = {
  masterFor: (slot: number) => masters[Math.floor((slot * 3) / 16384)],
  dispatch: () => {},
  retryRefused: () => false,
} as unknown as ClusterRouter;
const command = splitCommand(buf, args[0]!, args[1]!, argc)!;
const grouper = new SlotGrouper();
const N = 300_000;
for (let round = 1; round <= 5; round++) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) grouper.run(command, buf, argc, args, router, 1, 2, () => {});
  console.log(
    `round ${round}: ${(Number(process.hrtime.bigint() - started) / N).toFixed(0)} ns per 10-key split`,
  );
}
