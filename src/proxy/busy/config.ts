/**
 * CONFIG SET, RESETSTAT and REWRITE through the proxy: on every node of the cluster, masters and
 * replicas (a replica promoted later must behave as its master did).
 *
 * CONFIG SET takes only the parameters that mean the same on every node
 * (src/cluster/cluster-config.ts); any other is refused with the reason and the way to change it,
 * before anything changes. It is all or nothing: the first node is tried alone (a bad value is
 * refused there, as a standalone Redis refuses it, and nothing changed), then the others; a node
 * that refuses makes every node that took the change go back to its previous value (read with
 * CONFIG GET first) and the client gets that node's error. Each node then writes its config file
 * (CONFIG REWRITE) so the value survives a restart; `dredis cluster apply` copies the values to the
 * nodes of shards that join later (src/cluster/admin/config-sync.ts).
 */
import { ConfigErrors, ProxyErrors } from "../../errors.ts";
import { configRefusal, isClusterWide } from "../../cluster/cluster-config.ts";
import type { NodeInfo } from "../../cluster/slot-map.ts";
import type { RespValue } from "../../resp/decode.ts";
import { ErrorReply, SimpleString, type ReplyValue } from "../../resp/encode.ts";
import type { BusyHandler } from "./handler.ts";
import type { FanOut } from "./fan-out.ts";
import { nodesOf, onNodes, toReply } from "./broadcast.ts";

const OK = new SimpleString("OK");
/** CONFIG SET takes exact names: a glob character makes a name no parameter has. */
const GLOB = /[*?[\\]/;

type Pairs = (Buffer | string)[];

export const configSet: BusyHandler = async (argv, { fanOut }) => {
  const nodes = await nodesOf(fanOut.router);
  if (nodes.length === 0) return new ErrorReply(ProxyErrors.noMasterKnown);
  // An odd count is refused by Redis in its own words (which vary by version), changing nothing.
  if (argv.length % 2 !== 0) return toReply((await onNodes(fanOut, nodes.slice(0, 1), argv, true))[0]!);

  const given = argv.filter((_, i) => i >= 2 && i % 2 === 0).map((n) => n.toString("latin1"));
  // In argument order, as Redis reports the first bad name (spelled as the client spelled it).
  for (const name of given) {
    if (isClusterWide(name)) continue;
    if (GLOB.test(name) || !(await knows(fanOut, nodes[0]!, name)))
      return new ErrorReply(ConfigErrors.unknownParameter(name));
    return new ErrorReply(ConfigErrors.refused(name, configRefusal(name)));
  }
  const names = given.map((n) => n.toLowerCase());
  const down = nodes.find(failed);
  if (down) return new ErrorReply(ConfigErrors.nodeNotOnline("CONFIG SET", down.address, down.health));

  const read = await onNodes(fanOut, nodes, ["CONFIG", "GET", ...names], true);
  const unread = read.findIndex((r) => !Array.isArray(r));
  if (unread >= 0) return failedOn("CONFIG SET", nodes[unread]!, read[unread]!);
  const previous = read.map((r) => previousValues(r as RespValue[], names));

  const [first, ...rest] = nodes;
  const firstReply = (await onNodes(fanOut, [first!], argv, false))[0]!;
  if (firstReply instanceof ErrorReply) return firstReply;
  const replies = [firstReply, ...(await onNodes(fanOut, rest, argv, false))];
  const refused = replies.findIndex((r) => r instanceof ErrorReply);
  if (refused >= 0) {
    await undo(fanOut, nodes, previous, (i) => !(replies[i] instanceof ErrorReply), false);
    return replies[refused] as ErrorReply;
  }

  const rewrites = await onNodes(fanOut, nodes, ["CONFIG", "REWRITE"], false);
  const unwritten = rewrites.findIndex((r) => r instanceof ErrorReply);
  if (unwritten >= 0) {
    // Undone everywhere, and written again where the new value already reached the file.
    await undo(fanOut, nodes, previous, () => true, false);
    await undo(fanOut, nodes, previous, (i) => !(rewrites[i] instanceof ErrorReply), true);
    const message = (rewrites[unwritten] as ErrorReply).message;
    return new ErrorReply(ConfigErrors.rewriteFailed(nodes[unwritten]!.address, message));
  }
  return OK;
};

/**
 * Known down: refused at once rather than changing the others. ("loading" is no obstacle: Redis
 * takes CONFIG while loading, and CLUSTER SHARDS also says it of a replica that has had no writes.)
 * A node unreachable but not yet marked failed makes its part fail, and the change is undone.
 */
const failed = (node: NodeInfo) => node.health === "fail" || node.health === "failed";

/** Whether the node's Redis has a parameter of this exact name (CONFIG GET lists it). */
async function knows(fanOut: FanOut, node: NodeInfo, name: string): Promise<boolean> {
  const [reply] = await onNodes(fanOut, [node], ["CONFIG", "GET", name], true);
  return Array.isArray(reply) && reply.length > 0;
}

/** `name value ...` for the names the node listed (one it does not know will refuse the SET anyway). */
function previousValues(reply: RespValue[], names: readonly string[]): Pairs {
  const values = new Map<string, Buffer>();
  for (let i = 0; i + 1 < reply.length; i += 2)
    if (Buffer.isBuffer(reply[i]) && Buffer.isBuffer(reply[i + 1]))
      values.set((reply[i] as Buffer).toString("latin1").toLowerCase(), reply[i + 1] as Buffer);
  return [...new Set(names)].flatMap((name) => (values.has(name) ? [name, values.get(name)!] : []));
}

/** Sets the previous values again on the nodes `which` picks (and rewrites their files if asked). */
async function undo(
  fanOut: FanOut,
  nodes: readonly NodeInfo[],
  previous: readonly Pairs[],
  which: (index: number) => boolean,
  rewrite: boolean,
): Promise<void> {
  await Promise.all(
    nodes.map(async (node, i) => {
      if (!which(i) || previous[i]!.length === 0) return;
      const args = rewrite ? ["CONFIG", "REWRITE"] : ["CONFIG", "SET", ...previous[i]!];
      await onNodes(fanOut, [node], args, false);
    }),
  );
}

function failedOn(command: string, node: NodeInfo, reply: RespValue): ErrorReply {
  const message = reply instanceof ErrorReply ? reply.message : "unexpected reply";
  return new ErrorReply(ProxyErrors.failedOnShard(command, node.address, message));
}

/** CONFIG RESETSTAT / REWRITE: every node; +OK once every node did it. */
const onEveryNode =
  (command: string): BusyHandler =>
  async (argv, { fanOut }) => {
    const nodes = await nodesOf(fanOut.router);
    if (nodes.length === 0) return new ErrorReply(ProxyErrors.noMasterKnown);
    const down = nodes.find(failed);
    if (down) return new ErrorReply(ConfigErrors.nodeNotOnline(command, down.address, down.health));
    const replies = await onNodes(fanOut, nodes, argv, false);
    const refused = replies.findIndex((r) => !(r instanceof SimpleString && r.value === "OK"));
    if (refused >= 0) {
      // The same refusal everywhere (e.g. no config file) is Redis's own answer.
      const first = replies[0];
      if (
        first instanceof ErrorReply &&
        replies.every((r) => r instanceof ErrorReply && r.message === first.message)
      )
        return first;
      return failedOn(command, nodes[refused]!, replies[refused]!);
    }
    return OK satisfies ReplyValue;
  };

export const CONFIG_COMMANDS = {
  "config|set": configSet,
  "config|resetstat": onEveryNode("CONFIG RESETSTAT"),
  "config|rewrite": onEveryNode("CONFIG REWRITE"),
} satisfies Record<string, BusyHandler>;
