import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const PROXY = resolve(dirname(fileURLToPath(import.meta.url)), "../../src/proxy");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Every src/proxy file to the src/proxy files it imports, `import type` and re-exports included. */
function importGraph(): Map<string, string[]> {
  const files = sourceFiles(PROXY);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    // TypeScript's own scanner: it sees every import and export-from, type-only ones too.
    const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    const targets = importedFiles
      .map(({ fileName }) => fileName)
      .filter((name) => name.startsWith("."))
      .map((name) => resolve(dirname(file), name))
      .filter((target) => target.startsWith(PROXY + "/"));
    graph.set(relative(PROXY, file), [...new Set(targets.map((t) => relative(PROXY, t)))]);
  }
  return graph;
}

/** The strongly connected components of more than one file (or a file importing itself): the cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    onStack.add(node);
    for (const target of graph.get(node) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) low.set(node, Math.min(low.get(node)!, index.get(target)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || graph.get(node)!.includes(node)) found.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

test("the import graph finds a cycle when there is one", () => {
  const graph = new Map([
    ["a.ts", ["b.ts"]],
    ["b.ts", ["c.ts"]],
    ["c.ts", ["a.ts"]],
    ["d.ts", ["a.ts"]],
  ]);
  assert.deepEqual(cycles(graph), [["a.ts", "b.ts", "c.ts"]]);
});

test("the import graph sees src/proxy's imports, type-only ones included", () => {
  const graph = importGraph();
  // context.ts imports ClientSession only as a type: that edge must be there.
  assert.ok(graph.get("context.ts")?.includes("client.ts"), "context.ts -> client.ts (import type)");
  assert.ok(graph.get("busy/commands.ts")?.includes("busy/handler.ts"));
});

test("src/proxy files import each other without a cycle, import type included", () => {
  assert.deepEqual(cycles(importGraph()), []);
});
