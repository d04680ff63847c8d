/**
 * A private certificate authority and the certificates signed by it, made with the `openssl` CLI
 * (Node can parse X.509 but not issue it): what `dredis local up --tls` and the tests use.
 *
 * Every certificate carries `serverAuth` and `clientAuth`, because a Redis node with
 * `tls-cluster yes` presents its one certificate both as a server and, on the cluster bus and in
 * replication, as a client. Keys are EC P-256: fast to make, and every Redis and Node TLS stack
 * takes them.
 */
import { execFile } from "node:child_process";
import { access, chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { DredisError, ErrorCodes, missingTool } from "../errors.ts";

const run = promisify(execFile);

/** Who a certificate is for: its common name and the names and addresses it is valid for. */
export interface CertificateSubject {
  commonName: string;
  /** DNS names in the subject alternative names. @default ["localhost"] */
  dnsNames?: string[];
  /** IP addresses in the subject alternative names. @default ["127.0.0.1"] */
  ipAddresses?: string[];
  /** @default 825 */
  days?: number;
}

/** Paths of a certificate and its private key. */
export interface CertificatePair {
  cert: string;
  key: string;
}

/** The files `makeLocalCertificates` writes. */
export interface LocalCertificates {
  dir: string;
  ca: CertificatePair;
  /** What the shards and the proxy present to their clients. */
  server: CertificatePair;
  /** What clients (the proxy towards the shards, redis-cli, admin tools) present. */
  client: CertificatePair;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw missingTool("openssl", "openssl");
    throw new DredisError(
      ErrorCodes.TLS_CERTIFICATE,
      `openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`,
    );
  }
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A self-signed CA certificate and key at `<dir>/<name>.crt` and `.key`. */
export async function makeCertificateAuthority(
  dir: string,
  name = "ca",
  commonName = "dredis local CA",
  days = 3650,
): Promise<CertificatePair> {
  await mkdir(dir, { recursive: true });
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await openssl([
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    pair.key,
    "-out",
    pair.cert,
    "-days",
    String(days),
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await chmod(pair.key, 0o600);
  return pair;
}

/** A certificate signed by `ca`, at `<dir>/<name>.crt` and `.key`. */
export async function issueCertificate(
  ca: CertificatePair,
  dir: string,
  name: string,
  subject: CertificateSubject,
): Promise<CertificatePair> {
  await mkdir(dir, { recursive: true });
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const extensions = join(dir, `${name}.ext`);
  const names = [
    ...(subject.dnsNames ?? ["localhost"]).map((n) => `DNS:${n}`),
    ...(subject.ipAddresses ?? ["127.0.0.1"]).map((ip) => `IP:${ip}`),
  ];
  await writeFile(
    extensions,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      ...(names.length > 0 ? [`subjectAltName=${names.join(",")}`] : []),
    ].join("\n") + "\n",
  );
  try {
    await openssl([
      "req",
      "-new",
      ...EC_KEY,
      "-keyout",
      pair.key,
      "-out",
      csr,
      "-subj",
      `/CN=${subject.commonName}`,
    ]);
    await chmod(pair.key, 0o600);
    await openssl([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      // A random serial: no serial file to keep, and a reissued certificate is told apart from the old one.
      "-set_serial",
      `0x${randomBytes(16)
        .toString("hex")
        .replace(/^[89a-f]/, "1")}`,
      "-days",
      String(subject.days ?? 825),
      "-extfile",
      extensions,
      "-out",
      pair.cert,
    ]);
  } finally {
    await rm(csr, { force: true });
    await rm(extensions, { force: true });
  }
  return pair;
}

/**
 * A local CA and a server and a client certificate signed by it, under `dir` (`ca.crt`,
 * `server.crt/key`, `client.crt/key`), valid for localhost and 127.0.0.1. Files already there are
 * kept, so a platform restarted with `--tls` keeps the CA its clients trust.
 */
export async function makeLocalCertificates(dir: string): Promise<LocalCertificates> {
  const ca = { cert: join(dir, "ca.crt"), key: join(dir, "ca.key") };
  const server = { cert: join(dir, "server.crt"), key: join(dir, "server.key") };
  const client = { cert: join(dir, "client.crt"), key: join(dir, "client.key") };
  const present = async (pair: CertificatePair) => (await exists(pair.cert)) && (await exists(pair.key));
  if (!(await present(ca))) {
    await makeCertificateAuthority(dir);
    await rm(server.cert, { force: true });
    await rm(client.cert, { force: true });
  }
  if (!(await present(server))) await issueCertificate(ca, dir, "server", { commonName: "dredis server" });
  if (!(await present(client))) await issueCertificate(ca, dir, "client", { commonName: "dredis client" });
  return { dir, ca, server, client };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
