/**
 * Pulumi mocks for component tests: records every resource's inputs (as the engine would get
 * them) and, through a legacy `transformations` option that runs client-side, its options
 * (parent, dependsOn, hooks), which mocks do not otherwise expose.
 *
 * Import this before any module that declares resources, and load those with `import()` after
 * `installMocks()`: one test file is one Pulumi runtime.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Recorded {
  type: string;
  name: string;
  /** Inputs as the provider would receive them, with secrets unwrapped. */
  inputs: Record<string, unknown>;
  /** Top-level input keys whose value is or contains a secret. */
  secretInputs: string[];
  /** Reference (`urn::id`) of the explicit provider the resource was registered with. */
  provider?: string;
  urn: string;
  /** Name of the parent resource (undefined at the top). */
  parent?: string;
  /** Names of the resources named in `dependsOn`. */
  dependsOn: string[];
  /** Names of the hooks bound per lifecycle event. */
  hooks: Record<string, string[]>;
  /** The `replacementTrigger` option, resolved: the engine replaces the resource when it changes. */
  replacementTrigger?: unknown;
  /** The options that decide how the engine replaces, waits for and diffs the resource. */
  options: Pick<pulumi.CustomResourceOptions, "customTimeouts" | "ignoreChanges" | "deleteBeforeReplace">;
}

interface Registration {
  resource: pulumi.Resource;
  type: string;
  name: string;
  opts: pulumi.ResourceOptions;
}

export interface MockRun {
  /** Pass to the component under test: it records every descendant's options. */
  opts: pulumi.ComponentResourceOptions;
  /** Waits for every registration, then returns what was recorded. */
  settle(): Promise<Recorded[]>;
  /**
   * A named hook this run bound to some resource, to call as the engine would (mocks never run
   * hooks). The engine finds a delete hook by the name stored with the resource in an earlier run.
   */
  hook(name: string): pulumi.ResourceHook;
}

/** Returned by providers in the real world; tests assert they are wired through. */
const providerOutputs: Record<
  string,
  (name: string, inputs: Record<string, unknown>) => Record<string, unknown>
> = {
  "random:index/randomPassword:RandomPassword": () => ({ result: "generated-password-0123456789abcd" }),
  "docker:index/image:Image": (_name, inputs) => ({
    imageName: inputs["imageName"],
    repoDigest: "sha256:built",
  }),
  "docker:index/remoteImage:RemoteImage": (_name, inputs) => ({
    imageId: `sha256:id-of-${String(inputs["name"])}`,
  }),
  "docker:index/container:Container": () => ({ exitCode: 0, containerLogs: "" }),
  "kubernetes:core/v1:Service": () => ({ status: { loadBalancer: { ingress: [{ ip: "203.0.113.10" }] } } }),
};

/** Makes the mock provider of `type` report other outputs, e.g. a rebuilt image's new ID. */
export function setProviderOutputs(
  type: string,
  outputs: (name: string, inputs: Record<string, unknown>) => Record<string, unknown>,
): void {
  providerOutputs[type] = outputs;
}

let inputsByUrn = new Map<string, { inputs: Record<string, unknown>; provider?: string }>();
const urnOf = (type: string, name: string) => `${type}::${name}`;

export function installMocks(): void {
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        inputsByUrn.set(urnOf(args.type, args.name), {
          inputs: args.inputs,
          provider: args.provider || undefined,
        });
        const extra = providerOutputs[args.type]?.(args.name, args.inputs) ?? {};
        return { id: `${args.name}-id`, state: { ...args.inputs, ...extra } };
      },
      call: (args) => args.inputs,
    },
    "distributed-redis",
    "test",
  );
  // Node's mock monitor lacks registerResourceHook (Go's and Python's have it as a no-op).
  const monitor = pulumi.runtime.getMonitor() as unknown as Record<string, unknown>;
  monitor["registerResourceHook"] = (_request: unknown, callback: (err: null, res: object) => void) =>
    callback(null, {});
}

/** Starts recording one program run (one `createStack(...)`). */
export function startRun(): MockRun {
  inputsByUrn = new Map();
  const registrations: Registration[] = [];
  const record: pulumi.ResourceTransformation = (args) => {
    registrations.push({ resource: args.resource, type: args.type, name: args.name, opts: args.opts });
    return undefined;
  };
  return {
    opts: { transformations: [record] },
    async settle() {
      const urns = await Promise.all(registrations.map((r) => unwrap(r.resource.urn)));
      const nameOf = new Map(registrations.map((r) => [r.resource, r.name]));
      const resolveDeps = async (deps: pulumi.ResourceOptions["dependsOn"]) => {
        const list =
          deps === undefined ? [] : await unwrap(pulumi.output(deps as pulumi.Input<pulumi.Resource[]>));
        return (Array.isArray(list) ? list : [list]).map((d) => nameOf.get(d as pulumi.Resource) ?? "?");
      };
      return Promise.all(
        registrations.map(async (r, i) => ({
          type: r.type,
          name: r.name,
          ...splitSecrets(inputsByUrn.get(urnOf(r.type, r.name))?.inputs ?? {}),
          provider: inputsByUrn.get(urnOf(r.type, r.name))?.provider,
          urn: urns[i]!,
          parent: r.opts.parent ? nameOf.get(r.opts.parent) : undefined,
          dependsOn: await resolveDeps(r.opts.dependsOn),
          replacementTrigger:
            r.opts.replacementTrigger === undefined
              ? undefined
              : await unwrap(pulumi.output(r.opts.replacementTrigger)),
          options: Object.fromEntries(
            (["customTimeouts", "ignoreChanges", "deleteBeforeReplace"] as const)
              .filter((key) => (r.opts as pulumi.CustomResourceOptions)[key] !== undefined)
              .map((key) => [key, (r.opts as pulumi.CustomResourceOptions)[key]]),
          ),
          hooks: Object.fromEntries(
            Object.entries(r.opts.hooks ?? {}).map(([event, list]) => [
              event,
              (list as unknown[]).map((h) => (h instanceof pulumi.ResourceHook ? h.name : "(anonymous)")),
            ]),
          ),
        })),
      );
    },
    hook(name) {
      const bound = registrations.flatMap((r) => Object.values(r.opts.hooks ?? {}).flat() as unknown[]);
      const found = bound.find(
        (h): h is pulumi.ResourceHook => h instanceof pulumi.ResourceHook && h.name === name,
      );
      if (!found) throw new Error(`no hook named ${name} was bound in this run`);
      return found;
    },
  };
}

/** The wire form of a secret value in mock inputs. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function splitSecrets(inputs: Record<string, unknown>): {
  inputs: Record<string, unknown>;
  secretInputs: string[];
} {
  const secretInputs: string[] = [];
  const plain = Object.fromEntries(
    Object.entries(inputs).map(([key, value]) => {
      const found = { secret: false };
      const unwrapped = unsecret(value, found);
      if (found.secret) secretInputs.push(key);
      return [key, unwrapped];
    }),
  );
  return { inputs: plain, secretInputs };
}

function unsecret(value: unknown, found: { secret: boolean }): unknown {
  if (Array.isArray(value)) return value.map((v) => unsecret(v, found));
  if (value === null || typeof value !== "object") return value;
  const object = value as Record<string, unknown>;
  if (SECRET_SIG in object) {
    found.secret = true;
    return unsecret(object["value"], found);
  }
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, unsecret(v, found)]));
}

export function unwrap<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

/** The one recorded resource of `type` named `name`; fails listing what exists otherwise. */
export function find(resources: Recorded[], type: string, name: string): Recorded {
  const found = resources.find((r) => r.type === type && r.name === name);
  if (!found)
    throw new Error(
      `no ${type} named ${name}; have: ${resources
        .filter((r) => r.type === type)
        .map((r) => r.name)
        .join(", ")}`,
    );
  return found;
}

export function ofType(resources: Recorded[], type: string): Recorded[] {
  return resources.filter((r) => r.type === type);
}

/** Counts resources per type, for whole-graph assertions. */
export function countByType(resources: Recorded[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of resources) counts[r.type] = (counts[r.type] ?? 0) + 1;
  return counts;
}
