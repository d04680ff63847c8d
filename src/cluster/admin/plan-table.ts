/**
 * Renders plans for people: slot moves grouped into contiguous ranges per source -> target.
 */
import type { SlotMove } from "./plan.ts";

export function formatMovesTable(moves: readonly SlotMove[]): string {
  if (moves.length === 0) return "no slot moves\n";
  const rows: {
    from: string;
    to: string;
    first: number;
    last: number;
    count: number;
    keys: number;
    bytes: number;
  }[] = [];
  for (const move of [...moves].sort((a, b) => a.slot - b.slot)) {
    const row = rows.at(-1);
    if (row && row.from === move.from && row.to === move.to && row.last === move.slot - 1) {
      row.last = move.slot;
      row.count++;
      row.keys += move.keys;
      row.bytes += move.bytes;
    } else
      rows.push({
        from: move.from,
        to: move.to,
        first: move.slot,
        last: move.slot,
        count: 1,
        keys: move.keys,
        bytes: move.bytes,
      });
  }
  const table = [
    ["slots", "count", "from", "to", "keys", "bytes"],
    ...rows.map((r) => [
      r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`,
      `${r.count}`,
      r.from,
      r.to,
      `${r.keys}`,
      `${r.bytes}`,
    ]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const total = moves.reduce((acc, m) => ({ keys: acc.keys + m.keys, bytes: acc.bytes + m.bytes }), {
    keys: 0,
    bytes: 0,
  });
  return (
    table
      .map((row) =>
        row
          .map((cell, c) => cell.padEnd(widths[c]!))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + `\ntotal: ${moves.length} slots, ${total.keys} keys, ${total.bytes} bytes\n`
  );
}
