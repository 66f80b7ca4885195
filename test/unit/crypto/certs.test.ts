import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtemp, rm, stat, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { createClusterCa, issueNodeCert, nodeIdFromCert, writePem, NODE_VALIDITY_DAYS_MAX } from '../../../src/crypto/certs.ts';

/** A self-signed certificate with an arbitrary subject and SAN, to feed nodeIdFromCert bad shapes. */
async function oddCert(subject: string, san: x509.JsonGeneralNames): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    { name: subject, keys, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension(san)] },
    webcrypto as unknown as NonNullable<Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1]>,
  );
  return cert.toString('pem');
}

const DAY_MS = 86_400_000;

test('a cluster CA is a self-signed P-256 CA valid for about ten years', async () => {
  const ca = await createClusterCa();
  const c = new X509Certificate(ca.certPem);
  assert.equal(c.ca, true);
  assert.equal(c.checkIssued(c), true);
  assert.equal(c.verify(c.publicKey), true);
  assert.equal(c.publicKey.asymmetricKeyType, 'ec');
  assert.equal(c.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const lifetimeDays = (Date.parse(c.validTo) - Date.parse(c.validFrom)) / DAY_MS;
  assert.ok(lifetimeDays >= 3650 && lifetimeDays < 3652, `CA lifetime ${lifetimeDays} days`);
  assert.equal(c.checkPrivateKey(createPrivateKey(ca.keyPem)), true);
});

test('a node certificate is issued by the CA, names its node id and carries the SANs and EKUs', async () => {
  const ca = await createClusterCa();
  const other = await createClusterCa();
  const node = await issueNodeCert(ca, 7, ['node7.example.internal', '10.1.2.3', 'localhost']);
  const c = new X509Certificate(node.certPem);
  const caCert = new X509Certificate(ca.certPem);
  assert.equal(c.ca, false);
  assert.equal(c.checkIssued(caCert), true);
  assert.equal(c.verify(caCert.publicKey), true);
  // Negative control: the same checks fail against another CA.
  assert.equal(c.checkIssued(new X509Certificate(other.certPem)), false);
  assert.equal(c.verify(new X509Certificate(other.certPem).publicKey), false);
  assert.equal(c.subject, 'CN=node-7');
  assert.equal(c.subjectAltName, 'URI:raftauth://node/7, DNS:localhost, IP Address:127.0.0.1, DNS:node7.example.internal, IP Address:10.1.2.3');
  assert.deepEqual([...(c.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(c.checkHost('node7.example.internal'), 'node7.example.internal');
  assert.equal(c.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(c.checkPrivateKey(createPrivateKey(node.keyPem)), true);
  assert.equal(createPublicKey(node.keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const lifetimeDays = (Date.parse(c.validTo) - Date.parse(c.validFrom)) / DAY_MS;
  assert.ok(lifetimeDays >= 365 && lifetimeDays < 366, `node lifetime ${lifetimeDays} days`);
  assert.equal(nodeIdFromCert(node.certPem), 7);
  assert.equal(nodeIdFromCert(c), 7);
  assert.equal(nodeIdFromCert(Buffer.from(node.certPem)), 7);
});

test('issueNodeCert refuses bad ids, hosts, lifetimes and a mismatched CA key', async () => {
  const ca = await createClusterCa();
  const other = await createClusterCa();
  await assert.rejects(issueNodeCert(ca, 0), RangeError);
  await assert.rejects(issueNodeCert(ca, 1.5), RangeError);
  await assert.rejects(issueNodeCert(ca, 1, ['bad host!']), RangeError);
  await assert.rejects(issueNodeCert(ca, 1, [], { validityDays: NODE_VALIDITY_DAYS_MAX + 1 }), RangeError);
  await assert.rejects(issueNodeCert({ certPem: ca.certPem, keyPem: other.keyPem }, 1), /does not match/);
});

test('nodeIdFromCert refuses a certificate that names no node, several nodes, or disagrees with itself', async () => {
  const ca = await createClusterCa();
  assert.throws(() => nodeIdFromCert(ca.certPem), /names no node/);
  // Control: a well-formed odd certificate is accepted, so the refusals below are about the names.
  assert.equal(nodeIdFromCert(await oddCert('CN=node-4', [{ type: 'url', value: 'raftauth://node/4' }])), 4);
  const cnDisagrees = await oddCert('CN=node-5', [{ type: 'url', value: 'raftauth://node/4' }]);
  assert.throws(() => nodeIdFromCert(cnDisagrees), /CN node-5 disagrees/);
  const twoNodes = await oddCert('CN=node-4', [{ type: 'url', value: 'raftauth://node/4' }, { type: 'url', value: 'raftauth://node/5' }]);
  assert.throws(() => nodeIdFromCert(twoNodes), /several nodes/);
  const nodeZero = await oddCert('CN=node-0', [{ type: 'url', value: 'raftauth://node/0' }]);
  assert.throws(() => nodeIdFromCert(nodeZero), /malformed node URI/);
  const leadingZero = await oddCert('CN=x', [{ type: 'url', value: 'raftauth://node/04' }]);
  assert.throws(() => nodeIdFromCert(leadingZero), /malformed node URI/);
  const dnsOnly = await oddCert('CN=node-4', [{ type: 'dns', value: 'node-4' }]);
  assert.throws(() => nodeIdFromCert(dnsOnly), /names no node/);
});

test('writePem writes the key 0600 and the certificate 0644, and refuses to overwrite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-certs-'));
  try {
    const ca = await createClusterCa();
    const { certPath, keyPath } = await writePem(join(dir, 'pki'), 'ca', ca);
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    assert.equal((await stat(certPath)).mode & 0o777, 0o644);
    assert.equal((await stat(join(dir, 'pki'))).mode & 0o777, 0o700);
    assert.equal(await readFile(keyPath, 'utf8'), ca.keyPem);
    assert.equal(await readFile(certPath, 'utf8'), ca.certPem);
    await assert.rejects(writePem(join(dir, 'pki'), 'ca', ca), /refusing to overwrite/);
    // Overwriting a key that was left world-readable tightens it to 0600.
    await writeFile(join(dir, 'pki', 'n1.key'), 'old', { mode: 0o644 });
    const n1 = await issueNodeCert(ca, 1);
    const written = await writePem(join(dir, 'pki'), 'n1', n1, { overwrite: true });
    assert.equal((await stat(written.keyPath)).mode & 0o777, 0o600);
    assert.equal(await readFile(written.keyPath, 'utf8'), n1.keyPem);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
