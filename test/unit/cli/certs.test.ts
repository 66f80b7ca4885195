// `raftauth certs init|issue`: files, modes (keys 0600 whatever the umask), refusal to overwrite,
// and certificates that verify against the CA and name their node.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeIdFromCert } from '../../../src/crypto/certs.ts';
import { runRaftauth } from '../../../src/cli/main.ts';
import { captureIo } from './io.ts';

const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe('raftauth certs', () => {
  let dir: string;
  let oldUmask: number;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-certs-'));
    // A permissive umask must not leak into the key files' modes.
    oldUmask = process.umask(0);
  });
  after(async () => {
    process.umask(oldUmask);
    await rm(dir, { recursive: true, force: true });
  });

  it('init writes ca.crt 0644, ca.key 0600 and, asked, admin.token 0600', async () => {
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['certs', 'init', '--dir', 'pki', '--admin-token'], io), 0, io.stderr());
    assert.equal(await mode(join(dir, 'pki', 'ca.crt')), 0o644);
    assert.equal(await mode(join(dir, 'pki', 'ca.key')), 0o600);
    assert.equal(await mode(join(dir, 'pki', 'admin.token')), 0o600);
    assert.ok((await readFile(join(dir, 'pki', 'admin.token'), 'utf8')).trim().length >= 32);
    const ca = new X509Certificate(await readFile(join(dir, 'pki', 'ca.crt')));
    assert.equal(ca.ca, true);
  });

  it('init refuses to replace an existing CA (exit 1) unless --force', async () => {
    const before = await readFile(join(dir, 'pki', 'ca.key'), 'utf8');
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['certs', 'init', '--dir', 'pki'], io), 1);
    assert.match(io.stderr(), /exists; refusing to overwrite/);
    assert.equal(await readFile(join(dir, 'pki', 'ca.key'), 'utf8'), before);
    assert.equal(await runRaftauth(['certs', 'init', '--dir', 'pki', '--force'], captureIo({}, dir)), 0);
    assert.notEqual(await readFile(join(dir, 'pki', 'ca.key'), 'utf8'), before);
    assert.equal(await mode(join(dir, 'pki', 'ca.key')), 0o600);
  });

  it('issue writes node certificates signed by the CA that name the node, keys 0600', async () => {
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['certs', 'issue', '--dir', 'pki', '--id', '1,2', '--id', '3', '--host', 'node3.example', '--out', 'out'], io), 0, io.stderr());
    const ca = new X509Certificate(await readFile(join(dir, 'pki', 'ca.crt')));
    for (const id of [1, 2, 3]) {
      assert.equal(await mode(join(dir, 'out', `node${id}.key`)), 0o600);
      assert.equal(await mode(join(dir, 'out', `node${id}.crt`)), 0o644);
      const c = new X509Certificate(await readFile(join(dir, 'out', `node${id}.crt`)));
      assert.equal(c.verify(ca.publicKey), true);
      assert.equal(nodeIdFromCert(c), id);
      assert.match(c.subjectAltName ?? '', /DNS:node3\.example/);
    }
    const again = captureIo({}, dir);
    assert.equal(await runRaftauth(['certs', 'issue', '--dir', 'pki', '--id', '1', '--out', 'out'], again), 1);
    assert.match(again.stderr(), /node1\.key exists/);
  });

  it('issue without a CA fails with a hint (exit 1)', async () => {
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['certs', 'issue', '--dir', 'empty', '--id', '1'], io), 1);
    assert.match(io.stderr(), /no cluster CA in .*raftauth certs init --dir/);
  });

  it('refuses a validity outside its bounds (exit 2)', async () => {
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['certs', 'issue', '--dir', 'pki', '--id', '1', '--days', '9999'], io), 2);
    assert.match(io.stderr(), /--days must be an integer from 1 to 730/);
  });
});
