/**
 * Shows progress of a long run: a progress bar when stderr is a terminal, JSON lines otherwise
 * (for the Pulumi migration workload's logs and for scripts).
 */
import { MultiBar, Presets, type SingleBar } from "cli-progress";
import type { ProgressEvent } from "./options.ts";

/** JSON mode emits per-slot events at most this often (the latest wins), all others at once. */
const JSON_SLOT_EVENT_INTERVAL_MS = 200;

export function progressReporter(
  stream: NodeJS.WriteStream = process.stderr,
): (event: ProgressEvent) => void {
  return stream.isTTY ? barReporter(stream) : jsonReporter(stream);
}

function jsonReporter(stream: NodeJS.WritableStream): (event: ProgressEvent) => void {
  const lastAt = new Map<string, number>();
  return (event) => {
    if (event.type === "keys-moved" || event.type === "slot-start" || event.type === "slot-done") {
      const now = Date.now();
      if (now - (lastAt.get(event.type) ?? 0) < JSON_SLOT_EVENT_INTERVAL_MS) return;
      lastAt.set(event.type, now);
    }
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  };
}

function barReporter(stream: NodeJS.WriteStream): (event: ProgressEvent) => void {
  const bars = new MultiBar(
    {
      stream,
      // {sent}: bytes an atomic migration's sources sent so far (empty on the legacy path).
      format: "[{bar}] {value}/{total} slots, {keysMoved}/{keys} keys, {rate} keys/s{sent}, {duration}s",
      barCompleteChar: "#",
      barIncompleteChar: ".",
      barsize: 30,
      hideCursor: false,
      // Steps and warnings print above the bar while it runs (MultiBar.log).
      forceRedraw: true,
    },
    Presets.legacy,
  );
  let bar: SingleBar | null = null;
  let startedAt = Date.now();
  let sent = "";
  const figures = (keysMoved: number, keys: number) => {
    const seconds = (Date.now() - startedAt) / 1000;
    return { keysMoved, keys, rate: seconds > 0 ? Math.round(keysMoved / seconds) : 0, sent };
  };
  let keys = 0;
  let keysMoved = 0;
  const line = (text: string) => (bar === null ? stream.write(`${text}\n`) : bars.log(`${text}\n`));
  return (event) => {
    switch (event.type) {
      case "migration-start":
        keys = event.keys;
        keysMoved = 0;
        sent = "";
        startedAt = Date.now();
        bar = bars.create(event.slots, 0, figures(0, keys));
        break;
      case "keys-moved":
        keysMoved = event.totalMoved;
        bar?.update(figures(keysMoved, keys));
        break;
      case "slot-done":
        bar?.update(event.slotsDone, figures(keysMoved, keys));
        break;
      case "migration-done":
        bar?.update(event.slots, figures(event.keys, keys));
        bars.update(); // a last render, which also prints lines logged since the one before
        bars.stop();
        bar = null;
        break;
      case "bytes-moved":
        sent = `, ${megabytes(event.bytesSent)} sent${event.pendingReplBytes > 0 ? ` (${megabytes(event.pendingReplBytes)} queued)` : ""}`;
        bar?.update(figures(keysMoved, keys));
        break;
      case "step":
        line(event.message);
        break;
      case "warning":
        line(`warning: ${event.message}`);
        break;
    }
  };
}

const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
