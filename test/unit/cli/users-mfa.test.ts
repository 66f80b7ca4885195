// `raftauth users factors|reset-factors|unlock|require-mfa` and `clients … --require-mfa` against
// the real admin API of a real one-node RaftNode on 127.0.0.1 (real-admin.ts). The user's factors
// are made by the `mfa` domain's own commands; what a command changed is read back from the API.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { TOTP_PERIOD_MS } from '../../../src/state/mfa.ts';
import { captureIo } from './io.ts';
import { AdminCluster } from './real-admin.ts';

const TOKEN = 'u'.repeat(43);
const META = { meta: { ip: null } };

interface Factors {
  required: boolean;
  totp: { confirmed: boolean; createdAt: number } | null;
  webauthn: { id: string; name: string; createdAt: number }[];
  recovery: { remaining: number };
  lock: { failures: number; lockedUntil: number | null };
}

describe('raftauth users (MFA) and clients --require-mfa (real admin API, one-node cluster)', () => {
  let dir: string;
  let admin: AdminCluster;
  let sub = '';

  const mfa = async (op: string, args: Record<string, unknown>): Promise<void> => {
    const r = await admin.node(1).write({ domain: 'mfa', op, args: { sub, ...args, ...META }, timeoutMs: 5_000 });
    assert.ok(r.ok, `${op}: ${JSON.stringify(r)}`);
  };
  const api = async (path: string): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${admin.url(1)}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, body: await res.json() };
  };
  const factors = async (): Promise<Factors> => (await api('/admin/v1/users/erin/factors')).body as Factors;
  /** Erin with a confirmed TOTP, one WebAuthn key, ten recovery codes and two failed attempts. */
  const enrol = async (): Promise<void> => {
    await mfa('totp.enroll', { sealed: new Uint8Array([1, 2, 3]) });
    await mfa('totp.accept', { step: Math.floor(Date.now() / TOTP_PERIOD_MS) });
    await mfa('webauthn.register', { credential: { id: 'cred-1', publicKey: new Uint8Array([1, 2, 3, 4]), counter: 3, transports: ['usb'], name: 'YubiKey', createdAt: 0, lastUsedAt: null, discoverable: true } });
    await mfa('recovery.set', { hashes: Array.from({ length: 10 }, (_, i) => `r${String(i).padStart(2, '0')}`.padEnd(43, 'h')) });
    for (let i = 0; i < 2; i++) await mfa('throttle.fail', { kind: 'totp' });
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-mfa-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    await writeFile(join(dir, 'pw'), 'correct horse battery\n');
    admin = await AdminCluster.start([1], { token: TOKEN, master: MasterKeyRing.parse(MasterKeyRing.generateText(), 'test master key') });
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['users', 'create', 'erin', '--password-file', 'pw', '--json', '--admin', admin.url(1), '--token-file', 'token'], io), 0, io.stderr());
    sub = (JSON.parse(io.stdout()) as { sub: string }).sub;
  });
  after(async () => {
    await admin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (args: string[]) => {
    const io = captureIo({}, dir);
    const code = await runRaftauth([...args, '--admin', admin.url(1), '--token-file', 'token'], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };

  it('factors prints the factors and lock state (no secrets to print), --json the answer', async () => {
    await enrol();
    const f = await factors();
    assert.equal(f.totp?.confirmed, true, JSON.stringify(f));
    const before = admin.requests.length;
    const r = await run(['users', 'factors', 'erin']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(admin.requests.slice(before).map((q) => `${q.method} ${q.url}`), ['GET /admin/v1/users/erin/factors']);
    assert.match(r.out, /MFA required: +no/);
    assert.match(r.out, new RegExp(`TOTP: +yes \\(since ${new Date(f.totp!.createdAt).toISOString().replace(/\./g, '\\.')}\\)`));
    assert.match(r.out, /WebAuthn keys: +1/);
    assert.match(r.out, /recovery codes left: +10/);
    assert.match(r.out, /failed attempts: +2/);
    const key = f.webauthn[0]!;
    assert.match(r.out, new RegExp(`YubiKey +cred-1 +yes +${new Date(key.createdAt).toISOString().replace(/\./g, '\\.')} +-`));
    const j = await run(['users', 'factors', 'erin', '--json']);
    assert.deepEqual(JSON.parse(j.out), f);
  });

  it('reset-factors, unlock and require-mfa change what the API shows', async () => {
    const before = admin.requests.length;
    assert.equal((await run(['users', 'unlock', 'erin'])).code, 0);
    assert.deepEqual((await factors()).lock, { failures: 0, lockedUntil: null, backoffUntil: null });
    const reset = await run(['users', 'reset-factors', 'erin']);
    assert.equal(reset.code, 0, reset.err);
    assert.equal(reset.out, 'second factors of erin removed\n');
    const f = await factors();
    assert.deepEqual([f.totp, f.webauthn, f.recovery], [null, [], { remaining: 0 }]);
    assert.equal((await run(['users', 'require-mfa', 'erin', '--on'])).code, 0);
    assert.equal((await factors()).required, true);
    const off = await run(['users', 'require-mfa', 'erin', '--off']);
    assert.equal(off.out, 'MFA no longer required for erin\n');
    assert.equal((await factors()).required, false);
    assert.deepEqual(
      admin.requests.slice(before).filter((q) => q.method === 'POST').map((q) => q.url),
      ['/admin/v1/users/erin/unlock', '/admin/v1/users/erin/factors/reset', '/admin/v1/users/erin/mfa-required', '/admin/v1/users/erin/mfa-required'],
    );
  });

  it('argument errors exit 2 and send nothing; an unknown user is an error naming the API answer', async () => {
    const before = admin.requests.length;
    for (const args of [['users', 'require-mfa', 'erin'], ['users', 'require-mfa', 'erin', '--on', '--off'], ['users', 'factors'], ['clients', 'update', 'c1', '--require-mfa', '--no-require-mfa']]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
    assert.equal(admin.requests.length, before);
    const r = await run(['users', 'unlock', 'nobody']);
    assert.equal(r.code, 1);
    assert.match(r.err, /NOT_FOUND: no user nobody/);
  });

  it('clients create --require-mfa and update --no-require-mfa set require_mfa', async () => {
    const c = await run(['clients', 'create', '--name', 'C', '--id', 'c1', '--redirect-uri', 'https://c.example/cb', '--require-mfa']);
    assert.equal(c.code, 0, c.err);
    assert.match(c.out, /require MFA: +yes/);
    const client = async () => ((await api('/admin/v1/clients/c1')).body as { client: { require_mfa: boolean } }).client.require_mfa;
    assert.equal(await client(), true);
    const u = await run(['clients', 'update', 'c1', '--no-require-mfa']);
    assert.equal(u.code, 0, u.err);
    assert.match(u.out, /require MFA: +no/);
    assert.equal(await client(), false);
  });
});
