// The cluster's credential files on disk, shared by `raftauth certs …` and the local-cluster
// launcher (scripts/lib/local-cluster.ts):
//   <dir>/ca.crt, <dir>/ca.key            the cluster CA (certs init)
//   <out>/node<id>.crt, <out>/node<id>.key one node's certificate (certs issue)
//   <file>                                 an admin bearer token (admin.token)
// Private keys and the token are written 0600 whatever the umask (writePem in src/crypto/certs.ts
// and writeSecretFile below), and nothing existing is replaced unless asked: replacing a CA key by
// accident orphans every node certificate, replacing a token locks every operator out.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createClusterCa, issueNodeCert, writePem } from '../crypto/certs.ts';
import type { ClusterCa } from '../crypto/certs.ts';
import { MIN_ADMIN_TOKEN_CHARS } from '../ops/admin.ts';

export const CA_NAME = 'ca';

/** Bytes of randomness in a generated admin token: 32 bytes = 256 bits, 43 base64url characters. */
export const ADMIN_TOKEN_BYTES = 32;

export function nodeCertName(id: number): string {
  return `node${id}`;
}

export interface CaPaths {
  readonly certPath: string;
  readonly keyPath: string;
}

export function caPaths(dir: string): CaPaths {
  return { certPath: join(dir, `${CA_NAME}.crt`), keyPath: join(dir, `${CA_NAME}.key`) };
}

/** Create the cluster CA in `dir` (ca.crt 0644, ca.key 0600). Refuses to replace an existing one unless `overwrite`. */
export async function initCa(dir: string, opts: { overwrite?: boolean; validityDays?: number } = {}): Promise<CaPaths> {
  const ca = await createClusterCa(opts.validityDays !== undefined ? { validityDays: opts.validityDays } : {});
  return writePem(dir, CA_NAME, ca, { overwrite: opts.overwrite === true });
}

/** Read the CA of `dir`; a clear error when it is missing or half there. */
export async function loadCa(dir: string): Promise<ClusterCa> {
  const { certPath, keyPath } = caPaths(dir);
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    throw new Error(`no cluster CA in ${dir} (need ${CA_NAME}.crt and ${CA_NAME}.key; create them with: raftauth certs init --dir ${dir})`);
  }
  return { certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') };
}

/** Issue node `id`'s certificate with the CA of `caDir` into `outDir` (node<id>.crt 0644, node<id>.key 0600). */
export async function issueNodeCertFiles(
  caDir: string,
  id: number,
  opts: { outDir?: string; hosts?: readonly string[]; overwrite?: boolean; validityDays?: number } = {},
): Promise<CaPaths> {
  const ca = await loadCa(caDir);
  const pair = await issueNodeCert(ca, id, opts.hosts ?? [], opts.validityDays !== undefined ? { validityDays: opts.validityDays } : {});
  return writePem(opts.outDir ?? caDir, nodeCertName(id), pair, { overwrite: opts.overwrite === true });
}

/** A fresh admin token: 256 random bits, base64url (no padding, safe in a header and a shell). */
export function generateAdminToken(): string {
  const t = randomBytes(ADMIN_TOKEN_BYTES).toString('base64url');
  if (t.length < MIN_ADMIN_TOKEN_CHARS) throw new Error('generated admin token is too short'); // assertion: 43 >= 32
  return t;
}

/**
 * Write `content` to `file` with mode 0600, refusing to replace an existing file. 'wx' creates
 * the file with its final mode in one step, so the secret is never readable by others.
 */
export async function writeSecretFile(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const fh = await open(file, 'wx', 0o600).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'EEXIST') throw new Error(`${file} exists; refusing to overwrite it`);
    throw e;
  });
  try {
    await fh.chmod(0o600); // the umask may have removed bits; exactly 0600 either way
    await fh.writeFile(`${content}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(file, 0o600);
}

/** Create `file` holding a new admin token unless it exists. Returns true when it was created. */
export async function ensureAdminToken(file: string): Promise<boolean> {
  if (existsSync(file)) return false;
  await writeSecretFile(file, generateAdminToken());
  return true;
}
