/**
 * Parses the text of `CLUSTER NODES` (one node's view of the cluster) into plain objects.
 */

export interface NodeEntry {
  id: string;
  /** "ip:port" clients use (the bus port and hostname are split off). */
  address: string;
  /** Cluster bus port. */
  busPort: number;
  flags: string[];
  /** The master's id for a replica, undefined for a master. */
  masterId: string | undefined;
  /** Its config epoch (a replica's is its master's); the higher wins a slot claim. */
  configEpoch: number;
  /** Slots this view says the node owns. */
  slots: number[];
  /** Only on the `myself` entry: slot -> node id this node is migrating it to. */
  migrating: Map<number, string>;
  /** Only on the `myself` entry: slot -> node id this node is importing it from. */
  importing: Map<number, string>;
}

export function parseClusterNodes(text: string): NodeEntry[] {
  return text
    .trim()
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map(parseLine);
}

function parseLine(line: string): NodeEntry {
  const fields = line.trim().split(" ");
  const [id, endpoint, flags, master, , , epoch] = fields as [string, string, string, string, ...string[]];
  const [hostPort, busPart = ""] = endpoint.split("@");
  const entry: NodeEntry = {
    id,
    address: hostPort!,
    busPort: Number(busPart.split(",")[0]),
    flags: flags.split(","),
    masterId: master === "-" ? undefined : master,
    configEpoch: Number(epoch),
    slots: [],
    migrating: new Map(),
    importing: new Map(),
  };
  for (const token of fields.slice(8)) {
    const open = /^\[(\d+)-([<>])-([0-9a-f]+)\]$/.exec(token);
    if (open) {
      (open[2] === ">" ? entry.migrating : entry.importing).set(Number(open[1]), open[3]!);
      continue;
    }
    const [first, last = first] = token.split("-").map(Number) as [number, number?];
    for (let slot = first; slot <= last!; slot++) entry.slots.push(slot);
  }
  return entry;
}

export const isMaster = (entry: NodeEntry): boolean => entry.flags.includes("master");
export const isFailed = (entry: NodeEntry): boolean =>
  entry.flags.includes("fail") || entry.flags.includes("fail?");
