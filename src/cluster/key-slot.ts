/**
 * Key to hash slot, as Redis Cluster computes it (CRC16/XMODEM of the key or its hash tag, mod 16384).
 *
 * Hand-written rather than taken from cluster-key-slot for two reasons: it runs for every routed
 * request on bytes the proxy already holds (no string or subarray is created), and
 * cluster-key-slot 1.1.2 hashes keys whose first braces are empty (`foo{}{bar}`) to the wrong slot,
 * where Redis hashes the whole key. Tests check it against Redis's own CLUSTER KEYSLOT.
 */

export const SLOT_COUNT = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(buf: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ buf[i]!) & 0xff]!;
  return crc;
}

/** Slot of the key at buf[start..end). */
export function keySlot(buf: Uint8Array, start = 0, end = buf.length): number {
  // Redis: hash only between the first '{' and the first '}' after it, if that is non-empty.
  for (let i = start; i < end; i++) {
    if (buf[i] === 123) {
      for (let j = i + 1; j < end; j++) {
        if (buf[j] === 125) {
          if (j > i + 1) return crc16(buf, i + 1, j) & (SLOT_COUNT - 1);
          break;
        }
      }
      break;
    }
  }
  return crc16(buf, start, end) & (SLOT_COUNT - 1);
}

/** Slot of a key given as a string (UTF-8) or Buffer. */
export function slotOf(key: string | Uint8Array): number {
  const buf = typeof key === "string" ? Buffer.from(key) : key;
  return keySlot(buf, 0, buf.length);
}
