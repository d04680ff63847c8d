/** A digest of a password that may sit in plain state or annotations. */
import { scryptSync } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

/**
 * Changes exactly when the password does: a slow, salted hash (scrypt), not a fast digest a
 * short password could be guessed back from, so it can be a plain (not secret) value.
 */
export function passwordHash(clusterName: string, password: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.unsecret(
    pulumi
      .output(password)
      .apply((p) => scryptSync(p, `distributed-redis:${clusterName}`, 16).toString("hex")),
  );
}
