/**
 * Private networks made of Linux network namespaces, for tests that need real L2/L3 behaviour
 * (VRRP, ARP, floating IPs) without touching the machine's own network.
 *
 * One "switch" namespace holds a bridge; each host namespace gets an `eth0` whose veth peer is a
 * port of that bridge. Addresses live only inside these namespaces. Names carry this process's
 * PID and a counter, so parallel test files never collide. Every process started here is killed
 * by PID and every namespace deleted in the test's cleanup, and again (synchronously) if the test
 * process exits early.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import type { Cleanup } from "./redis.ts";

const execFileAsync = promisify(execFile);

/** True when this process may create namespaces (root, and `ip netns` works). */
export function canUseNetns(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync("ip", ["netns", "list"]).status === 0;
}

/** A process running inside a namespace. */
export interface NsProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far, for failure messages. */
  output(): string;
  readonly running: boolean;
  /** Sends `signal` (SIGTERM by default), then SIGKILL after `graceMs`, and waits for the exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface NetHost {
  /** The name given to createSwitchedNetwork. */
  readonly name: string;
  /** Its namespace. */
  readonly ns: string;
  /** Its interface on the shared network. */
  readonly iface: "eth0";
  /** Its address on the shared network. */
  readonly address: string;
  /** Its bridge port (a veth in the switch namespace). */
  readonly switchPort: string;
}

export interface SwitchedNetwork {
  /** The first three octets of the /24, e.g. "10.213.0". */
  readonly subnet: string;
  readonly prefixLength: 24;
  readonly switchNs: string;
  host(name: string): NetHost;
  /** Runs a command to completion inside a namespace; rejects with its stderr on failure. */
  exec(ns: string, command: string, args: string[], timeoutMs?: number): Promise<string>;
  /** Starts a long-running process inside a namespace; it is stopped by this network's cleanup. */
  spawn(ns: string, command: string, args: string[]): NsProcess;
  /** Unplugs (or plugs back) a host's cable: its bridge port goes down, the host is not told. */
  setCable(host: string, connected: boolean): Promise<void>;
  /** The IPv4 addresses on a host's eth0. */
  addresses(host: string): Promise<string[]>;
  /** Stops every process started here and deletes every namespace. Idempotent. */
  destroy(): Promise<void>;
}

export interface SwitchedNetworkOptions {
  /** Host names; each gets a namespace and an address subnet.(10 + index). */
  hosts: string[];
  /** First three octets of a private /24 that exists only inside these namespaces. @default "10.213.0" */
  subnet?: string;
}

let counter = 0;
const liveNamespaces = new Set<string>();
const liveProcesses = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of liveProcesses) child.kill("SIGKILL");
    for (const ns of liveNamespaces) killNamespacePidsSync(ns);
    for (const ns of liveNamespaces) spawnSync("ip", ["netns", "delete", ns]);
  });
}

function killNamespacePidsSync(ns: string): void {
  const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout ?? "";
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

async function ip(...args: string[]): Promise<void> {
  try {
    await execFileAsync("ip", args, { timeout: 10_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`ip ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Creates the namespaces, bridge and cables, registering their teardown with `t.after`. */
export async function createSwitchedNetwork(
  t: Cleanup,
  options: SwitchedNetworkOptions,
): Promise<SwitchedNetwork> {
  installExitHook();
  const subnet = options.subnet ?? "10.213.0";
  if (!/^10\.(\d{1,3})\.(\d{1,3})$/.test(subnet))
    throw new Error(`subnet must look like 10.X.Y (got ${subnet})`);
  const prefix = `dr${process.pid}n${counter++}`;
  const switchNs = `${prefix}-switch`;
  const hosts = new Map<string, NetHost>();
  const processes = new Set<NsProcess>();

  const addNamespace = async (ns: string) => {
    await ip("netns", "add", ns);
    liveNamespaces.add(ns);
    await ip("-n", ns, "link", "set", "lo", "up");
  };

  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    await Promise.all([...processes].map((p) => p.stop("SIGTERM", 3000)));
    const namespaces = [...hosts.values()].map((h) => h.ns).concat(switchNs);
    for (const ns of namespaces) {
      if (!liveNamespaces.has(ns)) continue;
      // Children a process forked (keepalived's VRRP child, a check script) die with the namespace.
      killNamespacePidsSync(ns);
      await ip("netns", "delete", ns);
      liveNamespaces.delete(ns);
    }
  };
  t.after(destroy);

  const exec = async (ns: string, command: string, args: string[], timeoutMs = 10_000): Promise<string> => {
    try {
      const { stdout } = await execFileAsync("ip", ["netns", "exec", ns, command, ...args], {
        timeout: timeoutMs,
        encoding: "utf8",
      });
      return stdout;
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`${command} ${args.join(" ")} in ${ns} failed: ${e.stderr?.trim() || e.message}`);
    }
  };

  const spawnIn = (ns: string, command: string, args: string[]): NsProcess => {
    if (destroyed) throw new Error("the network was destroyed");
    // `ip netns exec` enters the namespace and then execs the command, so the PID is the command's.
    const child = spawn("ip", ["netns", "exec", ns, command, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    liveProcesses.add(child);
    const exited = new Promise<void>((resolve) =>
      child.once("exit", () => {
        liveProcesses.delete(child);
        resolve();
      }),
    );
    const running = () => child.exitCode === null && child.signalCode === null;
    const handle: NsProcess = {
      pid: child.pid!,
      child,
      output: () => output,
      get running() {
        return running();
      },
      async stop(signal = "SIGTERM", graceMs = 3000) {
        if (running()) {
          child.kill(signal);
          const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          await exited;
          clearTimeout(timer);
        }
        processes.delete(handle);
      },
    };
    processes.add(handle);
    return handle;
  };

  await addNamespace(switchNs);
  await ip("-n", switchNs, "link", "add", "br0", "type", "bridge");
  await ip("-n", switchNs, "link", "set", "br0", "up");
  for (const [index, name] of options.hosts.entries()) {
    const host: NetHost = {
      name,
      ns: `${prefix}-${name}`,
      iface: "eth0",
      address: `${subnet}.${10 + index}`,
      switchPort: `port${index}`,
    };
    hosts.set(name, host);
    await addNamespace(host.ns);
    // Created from inside the switch namespace, so no interface ever appears in the root namespace.
    await ip(
      "-n",
      switchNs,
      "link",
      "add",
      host.switchPort,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      host.ns,
    );
    await ip("-n", switchNs, "link", "set", host.switchPort, "master", "br0", "up");
    await ip("-n", host.ns, "addr", "add", `${host.address}/24`, "dev", "eth0");
    await ip("-n", host.ns, "link", "set", "eth0", "up");
  }

  const host = (name: string): NetHost => {
    const h = hosts.get(name);
    if (!h) throw new Error(`no host ${name} in this network`);
    return h;
  };

  return {
    subnet,
    prefixLength: 24,
    switchNs,
    host,
    exec,
    spawn: spawnIn,
    destroy,
    async setCable(name, connected) {
      await ip("-n", switchNs, "link", "set", host(name).switchPort, connected ? "up" : "down");
    },
    async addresses(name) {
      const { stdout } = await execFileAsync(
        "ip",
        ["-n", host(name).ns, "-4", "-o", "addr", "show", "dev", "eth0"],
        {
          encoding: "utf8",
          timeout: 5000,
        },
      );
      return [...stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
    },
  };
}
