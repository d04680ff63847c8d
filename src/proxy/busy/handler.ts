/**
 * What a busy-proxy command handler is: the shape every splitting or broadcasting handler
 * (./cluster-wide.ts, ./scan.ts, ./set-algebra.ts, ...) implements and ./commands.ts registers.
 */
import type { Protocol, ReplyValue } from "../../resp/encode.ts";
import type { FanOut } from "./fan-out.ts";

/** What a handler needs besides its arguments. */
export interface BusyContext {
  fanOut: FanOut;
  /** The protocol of the connection the command came on (reply shapes differ, e.g. WITHSCORES). */
  protocol: Protocol;
  /** The shards' Redis version (Valkey's 7.2.4): how the proxy prints doubles it computes. */
  serverVersion: string;
  /** The shards' engine: Valkey reads numbers slightly differently (no hexadecimal doubles). */
  serverEngine: "redis" | "valkey";
}

/**
 * Runs one command (argv[0] is its name; arity is already checked) and resolves with the merged
 * reply, or an ErrorReply. Never rejects for a failed part: that is an error reply.
 */
export type BusyHandler = (argv: Buffer[], context: BusyContext) => Promise<ReplyValue>;
