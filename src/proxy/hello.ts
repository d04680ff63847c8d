/**
 * HELLO, for both connection types (client sessions and the busy proxy's worker connections):
 * one parser of `HELLO [protover [AUTH user pass] [SETNAME name]]`, and the answer, in which the
 * proxy presents itself as one standalone server of the shards' engine and version (Valkey says
 * `server: valkey` and its own version, not the Redis version it is compatible with).
 */
import type { Engine } from "../cluster/engine.ts";
import { RedisErrors } from "../errors.ts";
import { MapReply, type Protocol } from "../resp/encode.ts";
import { parseInteger } from "../resp/request-parser.ts";
import type { CommandView } from "./command-view.ts";

export interface Hello {
  /** The protocol asked for, or null to keep the connection's. */
  protocol: Protocol | null;
  auth: { username: string; password: Buffer } | null;
  name: string | null;
}

/** The options of a HELLO, or the error text Redis answers for it. */
export function parseHello(view: CommandView): Hello | string {
  const hello: Hello = { protocol: null, auth: null, name: null };
  let next = 1;
  if (view.argc > 1) {
    const version = parseInteger(view.buf, view.argStart(1), view.argEnd(1));
    if (version === null) return RedisErrors.protocolVersionNotInteger;
    if (version < 2 || version > 3) return RedisErrors.noProto;
    hello.protocol = version as Protocol;
    next = 2;
  }
  for (let i = next; i < view.argc; i++) {
    const option = view.arg(i).toLowerCase();
    if (option === "auth" && i + 2 < view.argc) {
      hello.auth = { username: view.arg(i + 1), password: view.argBuffer(i + 2) };
      i += 2;
    } else if (option === "setname" && i + 1 < view.argc) {
      hello.name = view.arg(i + 1);
      i += 1;
    } else {
      return RedisErrors.helloOption(view.arg(i));
    }
  }
  return hello;
}

/** What the proxy presents itself as: the shards' engine (the router's view of them). */
export interface ServerIdentity {
  readonly serverEngine: Engine;
  /** The engine's own version ("9.1.2" for Valkey 9.1.2, "7.0.15" for Redis 7.0.15). */
  readonly serverEngineVersion: string;
}

export function helloReply(server: ServerIdentity, protocol: Protocol, clientId: number): MapReply {
  return new MapReply([
    ["server", server.serverEngine],
    ["version", server.serverEngineVersion],
    ["proto", protocol],
    ["id", clientId],
    ["mode", "standalone"],
    ["role", "master"],
    ["modules", []],
  ]);
}
