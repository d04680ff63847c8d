/**
 * Redis's glob matching (`stringmatchlen` in Redis 7.0's util.c), ported line for line, so that
 * SCAN MATCH and PUBSUB CHANNELS patterns filter in the proxy exactly as they filter on a shard:
 * `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes, byte by byte.
 */
export function globMatch(pattern: Buffer, subject: Buffer): boolean {
  return match(pattern, 0, subject, 0, { skipLonger: false }, 0);
}

const STAR = 42;
const QUESTION = 63;
const OPEN = 91;
const CLOSE = 93;
const CARET = 94;
const BACKSLASH = 92;
const DASH = 45;

function match(
  pattern: Buffer,
  p: number,
  subject: Buffer,
  s: number,
  state: { skipLonger: boolean },
  nesting: number,
): boolean {
  // Redis gives up on patterns that nest too deep (CVE-2022-36021).
  if (nesting > 1000) return false;
  const pEnd = pattern.length;
  const sEnd = subject.length;
  while (p < pEnd && s < sEnd) {
    switch (pattern[p]) {
      case STAR:
        while (p + 1 < pEnd && pattern[p + 1] === STAR) p++;
        if (p + 1 === pEnd) return true;
        while (s < sEnd) {
          if (match(pattern, p + 1, subject, s, state, nesting + 1)) return true;
          if (state.skipLonger) return false;
          s++;
        }
        state.skipLonger = true;
        return false;
      case QUESTION:
        s++;
        break;
      case OPEN: {
        p++;
        const not = pattern[p] === CARET;
        if (not) p++;
        let matched = false;
        for (;;) {
          if (pattern[p] === BACKSLASH && pEnd - p >= 2) {
            p++;
            if (pattern[p] === subject[s]) matched = true;
          } else if (pattern[p] === CLOSE) {
            break;
          } else if (p >= pEnd) {
            p--;
            break;
          } else if (pEnd - p >= 3 && pattern[p + 1] === DASH) {
            let start = pattern[p]!;
            let end = pattern[p + 2]!;
            if (start > end) [start, end] = [end, start];
            p += 2;
            const c = subject[s]!;
            if (c >= start && c <= end) matched = true;
          } else if (pattern[p] === subject[s]) {
            matched = true;
          }
          p++;
        }
        if (not) matched = !matched;
        if (!matched) return false;
        s++;
        break;
      }
      case BACKSLASH:
        if (pEnd - p >= 2) p++;
        if (pattern[p] !== subject[s]) return false;
        s++;
        break;
      default:
        if (pattern[p] !== subject[s]) return false;
        s++;
        break;
    }
    p++;
    if (s === sEnd) {
      while (p < pEnd && pattern[p] === STAR) p++;
      break;
    }
  }
  return p === pEnd && s === sEnd;
}
