/**
 * What `pulumi up` would do between two recorded runs, decided as the engine and the providers
 * decide it, from the providers' replace-on-change data (`../data/*.json`, taken from their
 * sources), and what that does to the nodes: how many are down at once, per shard and across shards.
 *
 * The engine rules used (pulumi/pulumi, pkg/resource/deploy/step_generator.go and step_executor.go):
 * - a resource whose changed inputs include a replace-on-change property (the provider's, or the
 *   `replaceOnChanges` option) is replaced; `ignoreChanges` paths are left out of the diff first;
 * - a replacement deletes first when the provider or the `deleteBeforeReplace` option says so,
 *   otherwise the old resource is deleted after every create and update of the run;
 * - a delete-before-replace also replaces each resource with an *input* that came from the
 *   replaced one, if that input is replace-on-change for it (calculateDependentReplacements):
 *   `dependsOn` alone never replaces a dependent;
 * - a step starts once the steps of everything the resource depends on (and its parent's
 *   dependencies) are done; steps that do not wait for each other run in parallel;
 * - deletes of resources gone from the program run last, after every create and update.
 */
import dockerData from "../data/docker-replace-on-change.json" with { type: "json" };
import kubernetesData from "../data/kubernetes-replace-on-change.json" with { type: "json" };
import type { State } from "./record.ts";

export type Path = (string | number)[];
export type Action = "same" | "create" | "update" | "replace" | "delete";

export interface Step {
  key: string;
  action: Action;
  /** Replace only: the old resource is deleted before the new one is created. */
  deleteBeforeReplace: boolean;
  /** Changed input paths (after ignoreChanges), e.g. `uploads[0].content`. */
  changed: string[];
  /** Replace only: why (the paths that forced it, or the replaced resource an input came from). */
  replaceBecause: string[];
}

export type Plan = Map<string, Step>;

/** Plans the update from `olds` to `news`, keyed like the recorded states. */
export function planUpdate(olds: Map<string, State>, news: Map<string, State>): Plan {
  const plan: Plan = new Map();
  for (const next of news.values()) {
    const old = olds.get(next.key);
    plan.set(next.key, old ? diffState(old, next) : emptyStep(next.key, "create"));
  }
  for (const old of olds.values()) if (!news.has(old.key)) plan.set(old.key, emptyStep(old.key, "delete"));
  replaceDependents(plan, olds, news);
  return plan;
}

function emptyStep(key: string, action: Action): Step {
  return { key, action, deleteBeforeReplace: false, changed: [], replaceBecause: [] };
}

export function diffState(old: State, next: State): Step {
  if (!next.custom) return emptyStep(next.key, "same");
  const changed = changedPaths(old.inputs, next.inputs).filter(
    (path) => !next.ignoreChanges.some((ignored) => covers(parsePath(ignored), path)),
  );
  if (changed.length === 0) return emptyStep(next.key, "same");
  const forced = [
    ...providerReplaces(next, changed),
    ...changed.filter((path) => next.replaceOnChanges.some((p) => covers(parsePath(p), path))),
  ];
  const replaceBecause = [...new Set(forced.map(formatPath))];
  return {
    key: next.key,
    action: replaceBecause.length ? "replace" : "update",
    deleteBeforeReplace:
      replaceBecause.length > 0 && (next.deleteBeforeReplace || providerDeletesFirst(old, next)),
    changed: changed.map(formatPath),
    replaceBecause,
  };
}

/** A delete-before-replace replaces the dependents whose replace-on-change inputs came from it. */
function replaceDependents(plan: Plan, olds: Map<string, State>, news: Map<string, State>): void {
  for (let grew = true; grew;) {
    grew = false;
    const deletedFirst = new Set(
      [...plan.values()].filter((s) => s.action === "replace" && s.deleteBeforeReplace).map((s) => s.key),
    );
    for (const next of news.values()) {
      const step = plan.get(next.key)!;
      const old = olds.get(next.key);
      if (!old || !next.custom || deletedFirst.has(next.key)) continue;
      const inputs = Object.entries(next.propertyDependencies)
        .filter(([, deps]) => deps.some((d) => deletedFirst.has(d)))
        .map(([input]) => [input]);
      if (inputs.length === 0) continue;
      const forced = providerReplaces(next, inputs);
      if (forced.length === 0) continue;
      plan.set(next.key, {
        ...step,
        action: "replace",
        deleteBeforeReplace: next.deleteBeforeReplace || providerDeletesFirst(old, next),
        replaceBecause: [
          ...step.replaceBecause,
          ...forced.map(
            (p) => `${formatPath(p)} (from ${next.propertyDependencies[String(p[0])]!.join(", ")})`,
          ),
        ],
      });
      grew = true;
    }
  }
}

/** The changed paths the provider replaces the resource for. */
function providerReplaces(state: State, changed: Path[]): Path[] {
  const [pkg] = state.type.split(":");
  if (pkg === "docker") {
    const rules = (dockerData.resources as Record<string, DockerRules>)[state.type];
    if (!rules) throw new Error(`no replace-on-change data for ${state.type}`);
    return changed.filter((path) => {
      const property = String(path[0]);
      if (rules.replaceOnChanges.includes(property)) return true;
      if (rules.updateInPlace.includes(property)) return false;
      throw new Error(`${state.type}: ${property} is in neither list of the provider's schema data`);
    });
  }
  if (pkg === "kubernetes") {
    const forceNew = kubernetesForceNew(state.type).map(parsePath);
    return changed.filter((path) => forceNew.some((f) => covers(f, path) || covers(path, f)));
  }
  // The engine's built-in Stash (components/change-guard.ts): a changed `input` is an update in
  // place, never a replacement (test/engine/skip-preview-guard.test.ts deploys one changed); it
  // runs no node.
  if (state.type === "pulumi:index:Stash") return [];
  throw new Error(`no replace-on-change data for ${state.type}`);
}

interface DockerRules {
  deleteBeforeReplace: boolean;
  replaceOnChanges: string[];
  updateInPlace: string[];
}

function kubernetesForceNew(type: string): string[] {
  const kinds = kubernetesData.kinds as Record<string, string[]>;
  if (!(type in kinds)) throw new Error(`no replace-on-change data for ${type}`);
  const own =
    type === "kubernetes:core/v1:Secret"
      ? kubernetesData.secretUnlessMutable
      : type === "kubernetes:core/v1:ConfigMap"
        ? kubernetesData.configMapUnlessMutable
        : kinds[type]!;
  return [...kubernetesData.always, ...own];
}

function providerDeletesFirst(old: State, next: State): boolean {
  const [pkg] = next.type.split(":");
  if (pkg === "docker")
    return (dockerData.resources as Record<string, DockerRules>)[next.type]!.deleteBeforeReplace;
  if (pkg === "kubernetes") {
    const meta = (s: State) => (s.inputs["metadata"] ?? {}) as { name?: string; namespace?: string };
    return (
      meta(next).name !== undefined &&
      meta(next).name === meta(old).name &&
      meta(next).namespace === meta(old).namespace
    );
  }
  return false;
}

// ---- paths ----

/** Every path at which `a` and `b` differ (a whole value when its kind or length differs). */
export function changedPaths(a: unknown, b: unknown, at: Path = []): Path[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length)
    return a.flatMap((v, i) => changedPaths(v, b[i], [...at, i]));
  if (isObject(a) && isObject(b))
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) =>
      changedPaths(a[k], b[k], [...at, k]),
    );
  return [at];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** `a.b[0].c`, `.spec.containers[*].image` or `["a"].b` as path segments ("*" matches any index). */
export function parsePath(text: string): Path {
  return [...text.matchAll(/\[(\d+|\*)\]|\["([^"]+)"\]|([^.[\]]+)/g)].map(([, index, quoted, plain]) =>
    index !== undefined ? (index === "*" ? "*" : Number(index)) : (quoted ?? plain!),
  );
}

export function formatPath(path: Path): string {
  return path.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

/** Whether `prefix` is `path` or one of its ancestors. */
function covers(prefix: Path, path: Path): boolean {
  return prefix.length <= path.length && prefix.every((s, i) => s === "*" || s === path[i]);
}

// ---- what the steps do to the nodes ----

/** What a resource is to the service: a shard's data-holding node(s), a proxy host, or the endpoint. */
export interface Role {
  role: "data" | "proxy" | "endpoint";
  /** The shard, or the proxy host, the resource belongs to. */
  group: string;
  /** Nodes (pods) the resource runs. */
  nodes: number;
}

export type Classify = (state: State) => Role | undefined;

export interface Outage {
  step: Step;
  role: Role;
  /** Nodes down at once while the step runs. */
  down: number;
}

export interface Disruption {
  /** Per role: the most nodes of one group down at once, and the most groups with a node down at once. */
  maxDownInGroup: Record<Role["role"], number>;
  maxGroupsDown: Record<Role["role"], number>;
  /** Steps that take nodes down (replacements, rolling restarts), deletes of retired groups excluded. */
  outages: Outage[];
  /** Groups none of whose resources remain (removed shards): deleted after the run's other steps, not outages. */
  retired: string[];
}

/** Which steps take which nodes down, and which of them may overlap in time. */
export function disruption(
  plan: Plan,
  olds: Map<string, State>,
  news: Map<string, State>,
  classify: Classify,
): Disruption {
  const outages: Outage[] = [];
  const liveGroups = new Set(
    [...news.values()]
      .map(classify)
      .filter((r) => r)
      .map((r) => `${r!.role}:${r!.group}`),
  );
  const retired = new Set<string>();
  for (const step of plan.values()) {
    const state = news.get(step.key) ?? olds.get(step.key)!;
    const role = classify(state);
    if (!role) continue;
    if (step.action === "delete" && !liveGroups.has(`${role.role}:${role.group}`)) {
      retired.add(role.group);
      continue;
    }
    const down = nodesDown(step, news.get(step.key), role);
    if (down > 0) outages.push({ step, role, down });
  }
  const before = precedence(plan, olds, news);
  const overlap = (a: Outage, b: Outage) =>
    !before(a.step.key, b.step.key) && !before(b.step.key, a.step.key);
  const maxDownInGroup = { data: 0, proxy: 0, endpoint: 0 };
  const maxGroupsDown = { data: 0, proxy: 0, endpoint: 0 };
  for (const clique of maximalCliques(outages, overlap)) {
    for (const role of ["data", "proxy", "endpoint"] as const) {
      const mine = clique.filter((o) => o.role.role === role);
      const perGroup = new Map<string, number>();
      for (const o of mine) perGroup.set(o.role.group, (perGroup.get(o.role.group) ?? 0) + o.down);
      maxDownInGroup[role] = Math.max(maxDownInGroup[role], ...perGroup.values());
      maxGroupsDown[role] = Math.max(maxGroupsDown[role], perGroup.size);
    }
  }
  return { maxDownInGroup, maxGroupsDown, outages, retired: [...retired].sort() };
}

/**
 * Nodes a step takes down at once: all of a resource's nodes when it is replaced (delete first)
 * or deleted. A changed pod template is rolled out by the controller: a StatefulSet one pod at a
 * time (none with OnDelete), a Deployment `maxUnavailable` pods (default 25%, rounded down; all
 * with Recreate). A Docker update (`docker update`: memory, restart policy) leaves the container
 * running.
 */
function nodesDown(step: Step, next: State | undefined, role: Role): number {
  if (step.action === "delete" || (step.action === "replace" && step.deleteBeforeReplace)) return role.nodes;
  if (step.action !== "update" || !next || !step.changed.some((p) => p.startsWith("spec.template"))) return 0;
  const spec = next.inputs["spec"] as {
    updateStrategy?: { type?: string };
    strategy?: { type?: string; rollingUpdate?: { maxUnavailable?: number | string } };
  };
  if (next.type === "kubernetes:apps/v1:StatefulSet") return spec.updateStrategy?.type === "OnDelete" ? 0 : 1;
  if (next.type !== "kubernetes:apps/v1:Deployment") return 0;
  if (spec.strategy?.type === "Recreate") return role.nodes;
  const maxUnavailable = spec.strategy?.rollingUpdate?.maxUnavailable ?? "25%";
  return typeof maxUnavailable === "number"
    ? maxUnavailable
    : Math.floor((parseFloat(maxUnavailable) * role.nodes) / 100);
}

/**
 * `before(a, b)`: b's step cannot start before a's is done. Creates, updates and replacements wait
 * for the steps of what they depend on, transitively (through parents too); deletes come after
 * all of them, each after the deletes of what depended on it.
 */
function precedence(
  plan: Plan,
  olds: Map<string, State>,
  news: Map<string, State>,
): (a: string, b: string) => boolean {
  const inOld = ancestry(olds);
  const inNew = ancestry(news);
  const isDelete = (key: string) => plan.get(key)?.action === "delete";
  return (a, b) => {
    if (isDelete(a) !== isDelete(b)) return isDelete(b);
    return isDelete(a) ? inOld(a).has(b) : inNew(b).has(a);
  };
}

/** Everything a resource waits for in `graph`: its dependencies and parent, transitively. */
function ancestry(graph: Map<string, State>): (key: string) => Set<string> {
  const memo = new Map<string, Set<string>>();
  const up = (key: string): Set<string> => {
    const known = memo.get(key);
    if (known) return known;
    const found = new Set<string>();
    memo.set(key, found);
    const state = graph.get(key);
    for (const dep of [...(state?.dependencies ?? []), ...(state?.parent ? [state.parent] : [])]) {
      found.add(dep);
      for (const a of up(dep)) found.add(a);
    }
    return found;
  };
  return up;
}

/** Bron–Kerbosch: every maximal set of pairwise-overlapping items. */
function maximalCliques<T>(items: T[], adjacent: (a: T, b: T) => boolean): T[][] {
  const cliques: T[][] = [];
  const extend = (clique: T[], candidates: T[], excluded: T[]) => {
    if (candidates.length === 0 && excluded.length === 0) cliques.push(clique);
    for (const item of [...candidates]) {
      const near = (x: T) => x !== item && adjacent(item, x);
      extend([...clique, item], candidates.filter(near), excluded.filter(near));
      candidates = candidates.filter((x) => x !== item);
      excluded = [...excluded, item];
    }
  };
  extend([], items, []);
  return cliques;
}
