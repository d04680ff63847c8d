/**
 * The six commands the busy proxy splits on its hot path (./key-split.ts): MGET, MSET, DEL,
 * UNLINK, EXISTS and TOUCH, how each one's parts merge, and how the connection recognises them
 * straight from the parser's bytes.
 */
import { RedisErrors } from "../../errors.ts";
import { ErrorReply, type ReplyValue } from "../../resp/encode.ts";

export const enum SplitKind {
  /** Values in key order. */
  Mget,
  /** +OK when every part said OK. */
  Mset,
  /** The sum of the parts' integers (DEL, UNLINK, EXISTS, TOUCH). */
  Sum,
}

export interface SplitCommand {
  kind: SplitKind;
  /** The name parts carry, as Redis spells it in errors. */
  name: string;
  /** Arguments per key: 2 for MSET (key, value), else 1. */
  step: number;
  readonly: boolean;
  /** The name as parts send it, with its RESP header (`$4\r\nMSET\r\n`): read on every split. */
  frame: Buffer;
}

function nameFrame(name: string): Buffer {
  return Buffer.from(`$${name.length}\r\n${name}\r\n`);
}

const COMMANDS: readonly SplitCommand[] = [
  { kind: SplitKind.Mget, name: "MGET", step: 1, readonly: true, frame: nameFrame("MGET") },
  { kind: SplitKind.Mset, name: "MSET", step: 2, readonly: false, frame: nameFrame("MSET") },
  { kind: SplitKind.Sum, name: "DEL", step: 1, readonly: false, frame: nameFrame("DEL") },
  { kind: SplitKind.Sum, name: "UNLINK", step: 1, readonly: false, frame: nameFrame("UNLINK") },
  { kind: SplitKind.Sum, name: "EXISTS", step: 1, readonly: true, frame: nameFrame("EXISTS") },
  { kind: SplitKind.Sum, name: "TOUCH", step: 1, readonly: false, frame: nameFrame("TOUCH") },
];

/**
 * The split command named by buf[start..end) (any case) with an argument count it can take, or
 * null: the caller then uses the general path, which also words the arity errors.
 */
export function splitCommand(buf: Buffer, start: number, end: number, argc: number): SplitCommand | null {
  const length = end - start;
  for (const command of COMMANDS) {
    if (command.name.length !== length) continue;
    let same = true;
    for (let i = 0; i < length; i++) {
      // ASCII letters only: OR-ing 0x20 lowercases them.
      if ((buf[start + i]! | 0x20) !== (command.name.charCodeAt(i) | 0x20)) {
        same = false;
        break;
      }
    }
    if (!same) continue;
    return argc >= 1 + command.step && (argc - 1) % command.step === 0 ? command : null;
  }
  return null;
}

/**
 * The busy proxy's handler for the six: reached only with an argument count splitCommand declined
 * (MSET with a key and no value; the others fail the command table's arity check first).
 */
export async function declined(argv: Buffer[]): Promise<ReplyValue> {
  return new ErrorReply(RedisErrors.wrongArity(argv[0]!.toString("latin1").toLowerCase()));
}
