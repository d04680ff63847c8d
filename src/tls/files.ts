/**
 * Reads the PEM files a TLS setting names, with errors that name the setting and the file.
 */
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { DredisError, ErrorCodes } from "../errors.ts";

/** The bytes of a PEM file named by the setting `setting`. */
export function readPem(path: string, setting: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new DredisError(
      ErrorCodes.TLS_CONFIG,
      `cannot read ${setting} (${path}): ${(err as Error).message}`,
    );
  }
}

/** Builds a secure context from the options, or says which setting's files do not fit. */
export function checkedSecureContext(options: SecureContextOptions, settings: string) {
  try {
    return createSecureContext(options);
  } catch (err) {
    throw new DredisError(
      ErrorCodes.TLS_CONFIG,
      `the files of ${settings} are not a usable certificate, key and CA: ${(err as Error).message}`,
    );
  }
}
