/**
 * Runs a program under Pulumi mocks and records, per resource, what the engine would get in its
 * RegisterResource request: inputs, parent, dependencies (explicit ones and those of each input),
 * and the options that shape a diff (deleteBeforeReplace, ignoreChanges, replaceOnChanges).
 *
 * Call `installRecorder()` before importing any module that declares resources (one test file is
 * one Pulumi runtime), then `record(() => createStack(...))` once per simulated `pulumi up`.
 */
import * as pulumi from "@pulumi/pulumi";

export interface State {
  /** `type::name`: names are unique per type in our programs, and URNs embed the parent chain. */
  key: string;
  type: string;
  name: string;
  custom: boolean;
  /** Inputs as the provider gets them, secrets unwrapped. */
  inputs: Record<string, unknown>;
  parent?: string;
  /** Keys of every resource this one waits for (dependsOn, expanded to a component's children, and inputs). */
  dependencies: string[];
  /** Per input: keys of the resources its value came from. */
  propertyDependencies: Record<string, string[]>;
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  replaceOnChanges: string[];
}

/** What a mocked provider returns besides the inputs; a test may vary it between runs (a rebuilt image). */
export type Outputs = (
  type: string,
  name: string,
  inputs: Record<string, unknown>,
) => Record<string, unknown>;

const defaultOutputs: Outputs = (type, _name, inputs) => {
  switch (type) {
    case "random:index/randomPassword:RandomPassword":
      return { result: "generated-password-0123456789abcd" };
    case "docker:index/image:Image":
      return { imageName: inputs["imageName"], repoDigest: "sha256:built-1" };
    case "docker:index/remoteImage:RemoteImage":
      return { imageId: `sha256:id-of-${String(inputs["name"])}` };
    case "docker:index/container:Container":
      return { exitCode: 0, containerLogs: "" };
    case "kubernetes:core/v1:Service":
      return { status: { loadBalancer: { ingress: [{ ip: "203.0.113.10" }] } } };
    default:
      return {};
  }
};

interface Request {
  getType(): string;
  getName(): string;
  getCustom(): boolean;
  getParent(): string;
  getDependenciesList(): string[];
  getPropertydependenciesMap(): {
    forEach(fn: (deps: { getUrnsList(): string[] }, key: string) => void): void;
  };
  getDeletebeforereplace(): boolean;
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
}
type Callback = (err: unknown, response: { getUrn(): string } | undefined) => void;
type Monitor = Record<string, unknown> & { registerResource(req: Request, cb: Callback): void };

let outputs: Outputs = defaultOutputs;
let inputsByKey = new Map<string, Record<string, unknown>>();
let requests: { urn: string; req: Request }[] = [];

export function installRecorder(): void {
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        inputsByKey.set(`${args.type}::${args.name}`, args.inputs);
        return {
          id: `${args.name}-id`,
          state: { ...args.inputs, ...outputs(args.type, args.name, args.inputs) },
        };
      },
      call: (args) => args.inputs,
    },
    "distributed-redis",
    "day2",
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  // Node's mock monitor lacks registerResourceHook (Go's and Python's have it as a no-op).
  monitor["registerResourceHook"] = (_req: unknown, cb: (err: null, res: object) => void) => cb(null, {});
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) =>
    register(req, (err, response) => {
      if (response) requests.push({ urn: response.getUrn(), req });
      cb(err, response);
    });
}

/**
 * Runs `program` as one `pulumi up` would, with `extraOutputs` layered over the mocked providers'
 * outputs, and returns every resource's state by key.
 */
export async function record(
  program: (opts: pulumi.ComponentResourceOptions) => unknown,
  extraOutputs: Outputs = () => ({}),
): Promise<Map<string, State>> {
  inputsByKey = new Map();
  requests = [];
  outputs = (type, name, inputs) => ({
    ...defaultOutputs(type, name, inputs),
    ...extraOutputs(type, name, inputs),
  });
  const resources: pulumi.Resource[] = [];
  const track: pulumi.ResourceTransformation = (args) => {
    resources.push(args.resource);
    return undefined;
  };
  program({ transformations: [track] });
  // A resource's URN resolves once its registration is answered, i.e. once it is recorded.
  await Promise.all(resources.map((r) => new Promise((resolve) => r.urn.apply(resolve))));

  const keyOf = new Map(requests.map(({ urn, req }) => [urn, `${req.getType()}::${req.getName()}`]));
  const keys = (urns: string[]) => [...new Set(urns.map((u) => keyOf.get(u) ?? u))];
  const states = new Map<string, State>();
  for (const { urn, req } of requests) {
    const key = keyOf.get(urn)!;
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps, input) => {
      if (deps.getUrnsList().length) propertyDependencies[input] = keys(deps.getUrnsList());
    });
    states.set(key, {
      key,
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      inputs: unsecret(inputsByKey.get(key) ?? {}) as Record<string, unknown>,
      parent: req.getParent() ? keyOf.get(req.getParent()) : undefined,
      dependencies: keys(req.getDependenciesList()),
      propertyDependencies,
      deleteBeforeReplace: req.getDeletebeforereplace(),
      ignoreChanges: req.getIgnorechangesList(),
      replaceOnChanges: req.getReplaceonchangesList(),
    });
  }
  return states;
}

/** The wire form of a secret value in mock inputs. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function unsecret(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unsecret);
  if (value === null || typeof value !== "object") return value;
  const object = value as Record<string, unknown>;
  if (SECRET_SIG in object) return unsecret(object["value"]);
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, unsecret(v)]));
}
