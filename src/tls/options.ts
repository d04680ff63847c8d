/**
 * The TLS settings of the proxy config: `tls` for the clients' side (a TLS port, beside or
 * instead of the plain one) and `backendTls` for the proxy's connections to the shards. Files are
 * named by path, never inlined, so secrets stay in mounted files and a renewed certificate is
 * picked up where it lies.
 */
import { z } from "zod";

const file = (what: string) => z.string().min(1, `the path of ${what}`);
const minVersion = z.enum(["TLSv1.2", "TLSv1.3"]);

export const serverTlsSchema = z
  .object({
    /** TLS port for clients, on `listen.host`. */
    port: z.number().int().min(0).max(65535),
    /** PEM certificate (chain) the proxy presents; re-read when it changes and on SIGHUP. */
    certFile: file("the PEM certificate"),
    /** PEM private key of `certFile`. */
    keyFile: file("the PEM private key"),
    /** Verify client certificates: clients must present one signed by a CA in this PEM file. Unset: no client certificates asked. */
    clientCaFile: file("the PEM CA bundle for client certificates").optional(),
    /** Lowest TLS version accepted. @default "TLSv1.2" */
    minVersion: minVersion.default("TLSv1.2"),
    /** Also serve plain (unencrypted) clients on `listen.port`. @default false */
    plain: z.boolean().default(false),
  })
  .strict();

export const backendTlsSchema = z
  .object({
    /** PEM CA bundle the shards' certificates must be signed by. Unset: the system's CAs. */
    caFile: file("the PEM CA bundle").optional(),
    /** The name the shards' certificates must carry (and the SNI sent). Unset: each node's host as the slot map names it. */
    serverName: z.string().min(1).optional(),
    /** PEM client certificate the proxy presents to the shards (Redis's `tls-auth-clients`). */
    certFile: file("the PEM client certificate").optional(),
    /** PEM private key of `certFile`. */
    keyFile: file("the PEM private key").optional(),
    /** @default "TLSv1.2" */
    minVersion: minVersion.default("TLSv1.2"),
  })
  .strict()
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
    message: "certFile and keyFile go together: give both (a client certificate) or neither",
  });

export type ServerTls = z.output<typeof serverTlsSchema>;
export type BackendTls = z.output<typeof backendTlsSchema>;
