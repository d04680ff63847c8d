/**
 * Shows progress of a long run: a progress bar when stderr is a terminal, JSON lines otherwise
 * (for the Pulumi migration workload's logs and for scripts).
 */
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
  let slots = 0;
  let keys = 0;
  let slotsDone = 0;
  let keysMoved = 0;
  let startedAt = Date.now();
  let drawnAt = 0;
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - drawnAt < 100) return;
    drawnAt = now;
    const width = 30;
    const fraction = slots === 0 ? 1 : slotsDone / slots;
    const filled = Math.round(fraction * width);
    const seconds = (now - startedAt) / 1000;
    const rate = seconds > 0 ? Math.round(keysMoved / seconds) : 0;
    stream.write(
      `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${slotsDone}/${slots} slots, ` +
        `${keysMoved}/${keys} keys, ${rate} keys/s, ${seconds.toFixed(1)} s`,
    );
  };
  return (event) => {
    switch (event.type) {
      case "migration-start":
        ({ slots, keys } = event);
        slotsDone = keysMoved = 0;
        startedAt = Date.now();
        draw(true);
        break;
      case "keys-moved":
        keysMoved = event.totalMoved;
        draw();
        break;
      case "slot-done":
        slotsDone = event.slotsDone;
        draw();
        break;
      case "migration-done":
        keysMoved = event.keys;
        slotsDone = event.slots;
        draw(true);
        stream.write("\n");
        break;
      case "step":
        stream.write(`${event.message}\n`);
        break;
      case "warning":
        stream.write(`warning: ${event.message}\n`);
        break;
    }
  };
}
