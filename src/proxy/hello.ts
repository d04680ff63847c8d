/**
 * The proxy's answer to HELLO: it presents itself as one standalone Redis of the shards' version.
 */
import { MapReply } from "../resp/encode.ts";

export function helloReply(version: string, protocol: 2 | 3, clientId: number): MapReply {
  return new MapReply([
    ["server", "redis"],
    ["version", version],
    ["proto", protocol],
    ["id", clientId],
    ["mode", "standalone"],
    ["role", "master"],
    ["modules", []],
  ]);
}
