/**
 * Reads a password from a file (a mounted secret, or one written by the caller), so it never
 * shows in a process list as a command-line argument would.
 */
import { readFile } from "node:fs/promises";
import { DredisError, ErrorCodes } from "../errors.ts";

export async function readSecretFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new DredisError(
      ErrorCodes.CONFIG,
      `cannot read the password file ${path}: ${(err as Error).message}`,
    );
  }
  // Files written by editors and `echo` end with a newline that is not part of the password.
  const password = text.replace(/\r?\n$/, "");
  if (password === "" || /[\r\n]/.test(password))
    throw new DredisError(ErrorCodes.CONFIG, `the password file ${path} must hold one non-empty line`);
  return password;
}
