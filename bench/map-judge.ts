/**
 * The CPU a slot-map refresh costs in one proxy process, with and without the judgement of reads
 * by the owners' config epochs (src/proxy/upstream/slot-map-source.ts, `judge`), at 3, 30 and 100
 * masters. The reader is a stand-in answering the same map every time (the steady state: no owner
 * changes, so no CLUSTER NODES is asked after the first read), so what is timed is the source's
 * own work per refresh, the SlotMap built from a reply included; the reply's parse and the round
 * trip are not (`bench/scale.ts` measures a whole refresh against real shards).
 *
 *   node --import tsx bench/map-judge.ts
 *
 * Prints CPU microseconds (process.cpuUsage) per refresh over 2,000 refreshes after 200 of
 * warm-up, three interleaved passes per size, and how many epoch reads the judged source made.
 */
import { pino } from "pino";
import { SlotMap, type ShardInfo } from "../src/cluster/slot-map.ts";
import { SlotMapSource, type MapReader } from "../src/proxy/upstream/slot-map-source.ts";

const REFRESHES = 2_000;

function shards(masters: number): ShardInfo[] {
  const per = Math.floor(16_384 / masters);
  return Array.from({ length: masters }, (_, i) => ({
    ranges: [[i * per, i === masters - 1 ? 16_383 : (i + 1) * per - 1]],
    master: { id: `m${i}`, address: `10.0.0.${i}:6379`, role: "master", health: "online" },
    replicas: [{ id: `r${i}`, address: `10.0.1.${i}:6379`, role: "replica", health: "online" }],
  }));
}

async function usPerRefresh(masters: number, judged: boolean): Promise<{ us: number; epochReads: number }> {
  const layout = shards(masters);
  const epochs = new Map(layout.map((s, i) => [s.master!.id, i]));
  let epochReads = 0;
  const reader: MapReader = {
    read: async () => ({ map: new SlotMap(layout), nodeTimeoutMs: 15_000, version: undefined }),
    ...(judged ? { configEpochs: async () => (epochReads++, epochs) } : {}),
    close: () => {},
  };
  const source = new SlotMapSource(["10.0.0.0:6379"], reader, 1e9, () => {}, pino({ level: "silent" }), 0);
  await source.start();
  for (let i = 0; i < 200; i++) await source.refresh();
  const start = process.cpuUsage();
  for (let i = 0; i < REFRESHES; i++) await source.refresh();
  const used = process.cpuUsage(start);
  source.close();
  return { us: (used.user + used.system) / REFRESHES, epochReads };
}

console.log("| masters | pass | unjudged us/refresh | judged us/refresh | judged epoch reads |");
console.log("|---|---|---|---|---|");
for (const masters of [3, 30, 100])
  for (let pass = 1; pass <= 3; pass++) {
    const plain = await usPerRefresh(masters, false);
    const judged = await usPerRefresh(masters, true);
    console.log(
      `| ${masters} | ${pass} | ${plain.us.toFixed(1)} | ${judged.us.toFixed(1)} | ${judged.epochReads} |`,
    );
  }
