/**
 * One command as the request parser framed it: the buffer, the frame's bounds, the argument count
 * and the argument offsets. A connection owns one view and refills it for every command, so the
 * five values travel as one object without an allocation per command.
 *
 * Valid only during the call that received it: the parser reuses `args` for the next command.
 * `buf` itself is safe to keep (the parser never writes into a buffer it handed out), so
 * `frame()` and `argBuffer()` slices may outlive the call.
 */
const EMPTY = Buffer.alloc(0);
const NO_ARGS = new Int32Array(0);

export class CommandView {
  buf: Buffer = EMPTY;
  /** The command's raw RESP encoding is buf[start..end). */
  start = 0;
  end = 0;
  /** Arguments, the name included. */
  argc = 0;
  /** Argument i is buf[args[2i]..args[2i+1]). */
  args: Int32Array = NO_ARGS;

  set(buf: Buffer, start: number, end: number, argc: number, args: Int32Array): this {
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.argc = argc;
    this.args = args;
    return this;
  }

  /** The command's raw bytes, to forward untouched. */
  frame(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  argStart(i: number): number {
    return this.args[i * 2]!;
  }

  argEnd(i: number): number {
    return this.args[i * 2 + 1]!;
  }

  /** Argument i as a latin1 string (byte for byte). */
  arg(i: number): string {
    return this.buf.toString("latin1", this.args[i * 2], this.args[i * 2 + 1]);
  }

  argBuffer(i: number): Buffer {
    return this.buf.subarray(this.args[i * 2], this.args[i * 2 + 1]);
  }

  /** Arguments from `from` on (16 at most), as strings: for error texts that quote them. */
  argStrings(from: number): string[] {
    const out: string[] = [];
    for (let i = from; i < this.argc && i < from + 16; i++) out.push(this.arg(i));
    return out;
  }

  /** Every argument as a slice of the buffer (off the hot path: commands whose keys move). */
  argBuffers(): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < this.argc; i++) out.push(this.argBuffer(i));
    return out;
  }
}
