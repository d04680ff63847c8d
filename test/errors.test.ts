import { test } from "node:test";
import assert from "node:assert/strict";
import { DredisError, ErrorCodes, ProxyErrors, RedisErrors, UpstreamErrors } from "../src/errors.ts";

/** Every text of a catalogue, functions called with sample arguments. */
function texts(catalogue: object, path = ""): [string, string][] {
  return Object.entries(catalogue).flatMap(([key, value]): [string, string][] => {
    const name = path + key;
    if (typeof value === "string") return [[name, value]];
    if (typeof value === "function") {
      const args = Array.from({ length: value.length }, () => "x");
      return [[name, String(value(...args))]];
    }
    return texts(value as object, `${name}.`);
  });
}

test("error codes are distinct, and each is its constant's name with E_", () => {
  const codes = Object.entries(ErrorCodes);
  for (const [name, code] of codes) assert.equal(code, `E_${name}`);
  assert.equal(new Set(codes.map(([, code]) => code)).size, codes.length);
  assert.equal(new DredisError(ErrorCodes.CONFIG, "bad").code, "E_CONFIG");
});

test("every reply text is one line that starts with an upper-case error code, as Redis's do", () => {
  const all = [...texts(RedisErrors), ...texts(ProxyErrors), ...texts(UpstreamErrors)].filter(
    ([name]) => name !== "unexpectedSlotRead",
  );
  assert.ok(all.length > 60, `only ${all.length} texts found`);
  for (const [name, text] of all) {
    assert.match(text, /^[A-Z]+ \S/, name);
    assert.doesNotMatch(text, /[\r\n]/, name);
  }
});
