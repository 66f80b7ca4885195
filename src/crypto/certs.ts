// The cluster's X.509 material: a cluster CA and one certificate per node. Peer traffic is gRPC
// over mutual TLS with this CA (DESIGN principle 5), and a node's certificate must name its node
// id, so a node with a valid certificate still cannot speak for another node.
//
// A node's identity is the SAN URI `raftauth://node/<id>` (RFC 5280 §4.2.1.6); the subject CN
// `node-<id>` says the same thing for humans and tools that only show the subject. nodeIdFromCert
// requires both to agree.
//
// Node 20 parses X.509 (crypto.X509Certificate) but cannot create it; @peculiar/x509 builds the
// certificates on Node's own WebCrypto (EC P-256, ECDSA with SHA-256). It resolves its internals
// through tsyringe, which needs a Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import { mkdir, open, rename, chmod, unlink } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

// Reading a certificate's node id needs none of @peculiar/x509: it lives in node-identity.ts, which
// the peer transport imports, so a node does not load the certificate builder at boot.
import { assertNodeId, nodeUri } from './node-identity.ts';
import type { NodeId } from './node-identity.ts';
export { NODE_URI_PREFIX, assertNodeId, nodeIdFromCert, nodeUri } from './node-identity.ts';
export type { NodeId } from './node-identity.ts';

/** A certificate and its private key, both PEM (the key as PKCS#8 "PRIVATE KEY"). */
export interface CertAndKey {
  readonly certPem: string;
  readonly keyPem: string;
}

export type ClusterCa = CertAndKey;

export const CA_VALIDITY_DAYS_DEFAULT = 3650;
export const NODE_VALIDITY_DAYS_DEFAULT = 365;
/** Node certificates live one to two years: long enough to be no chore, short enough to rotate. */
export const NODE_VALIDITY_DAYS_MAX = 730;
/** notBefore is backdated so that a peer whose clock is a little behind still accepts a fresh certificate. */
export const CLOCK_SKEW_ALLOWANCE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;

const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
// @peculiar/x509 is typed against the DOM's Crypto; Node's webcrypto implements it.
type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const cryptoImpl = webcrypto as unknown as X509Crypto;
const subtle = webcrypto.subtle;

async function generateKeys(): Promise<CryptoKeyPair> {
  return subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return subtle.importKey('pkcs8', der, EC_ALG, false, ['sign']);
}

function validityDays(days: number, max: number): number {
  if (!Number.isSafeInteger(days) || days < 1 || days > max) throw new RangeError(`validity must be 1..${max} days, got ${days}`);
  return days;
}

export interface CaOptions {
  readonly commonName?: string;
  readonly validityDays?: number;
  readonly now?: Date;
}

/** A new cluster CA: EC P-256 key, self-signed, 10 years, may sign end-entity certificates only (pathLen 0). */
export async function createClusterCa(opts: CaOptions = {}): Promise<ClusterCa> {
  const now = opts.now ?? new Date();
  const days = validityDays(opts.validityDays ?? CA_VALIDITY_DAYS_DEFAULT, 2 * CA_VALIDITY_DAYS_DEFAULT);
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: [{ CN: [opts.commonName ?? 'raftauth cluster CA'] }],
      keys,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_ALLOWANCE_MS),
      notAfter: new Date(now.getTime() + days * DAY_MS),
      signingAlgorithm: EC_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, cryptoImpl),
      ],
    },
    cryptoImpl,
  );
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}

export interface NodeCertOptions {
  readonly validityDays?: number;
  readonly now?: Date;
}

const DNS_NAME = /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

function sanNames(id: NodeId, hosts: readonly string[]): x509.JsonGeneralNames {
  const names: x509.JsonGeneralNames = [{ type: 'url', value: nodeUri(id) }];
  const seen = new Set<string>();
  for (const host of ['localhost', '127.0.0.1', ...hosts]) {
    const key = host.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    if (isIP(host) !== 0) names.push({ type: 'ip', value: host });
    else if (DNS_NAME.test(host)) names.push({ type: 'dns', value: host });
    else throw new RangeError(`not a host name or IP address: ${JSON.stringify(host)}`);
  }
  return names;
}

/**
 * A node certificate signed by the cluster CA: EC P-256, CN node-<id>, SAN URI raftauth://node/<id>
 * plus DNS localhost, IP 127.0.0.1 and `hosts`; EKU serverAuth + clientAuth (each node is both a
 * TLS server and a TLS client of its peers).
 */
export async function issueNodeCert(ca: ClusterCa, id: NodeId, hosts: readonly string[] = [], opts: NodeCertOptions = {}): Promise<CertAndKey> {
  assertNodeId(id);
  const now = opts.now ?? new Date();
  const days = validityDays(opts.validityDays ?? NODE_VALIDITY_DAYS_DEFAULT, NODE_VALIDITY_DAYS_MAX);
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importKey(ca.keyPem);
  // Refuse a CA key that does not belong to the CA certificate: the result would never verify.
  if (!new X509Certificate(ca.certPem).checkPrivateKey(createPrivateKey(ca.keyPem))) {
    throw new Error('CA private key does not match the CA certificate');
  }
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: [{ CN: [`node-${id}`] }],
      issuer: caCert.subject,
      publicKey: keys.publicKey,
      signingKey: caKey,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_ALLOWANCE_MS),
      notAfter: new Date(now.getTime() + days * DAY_MS),
      signingAlgorithm: EC_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension(sanNames(id, hosts), false),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false, cryptoImpl),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, cryptoImpl),
      ],
    },
    cryptoImpl,
  );
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}


/**
 * Writes `<dir>/<name>.crt` (0644) and `<dir>/<name>.key` (0600). Each file is written to a
 * temporary name with its final mode, fsynced and renamed, so a crash never leaves a half key and
 * a key is never readable by others, whatever the umask. Refuses to replace existing files unless
 * `overwrite` (replacing a CA key by accident would orphan every node certificate).
 */
export async function writePem(dir: string, name: string, pair: CertAndKey, opts: { overwrite?: boolean } = {}): Promise<{ certPath: string; keyPath: string }> {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new RangeError(`bad file name ${JSON.stringify(name)}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  await writeFileAtomic(keyPath, pair.keyPem, 0o600, opts.overwrite === true);
  await writeFileAtomic(certPath, pair.certPem, 0o644, opts.overwrite === true);
  return { certPath, keyPath };
}

async function writeFileAtomic(path: string, content: string, mode: number, overwrite: boolean): Promise<void> {
  if (!overwrite) {
    // 'wx' on the final name reserves it; the data then goes through the temp file and rename.
    const probe = await open(path, 'wx', mode).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EEXIST') throw new Error(`${path} exists; refusing to overwrite it`);
      throw e;
    });
    await probe.close();
  }
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.chmod(mode); // the umask may have removed bits; a key must be exactly 0600
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await chmod(path, mode);
}
