// `raftauth users …` against the real admin API of a real one-node RaftNode on 127.0.0.1
// (real-admin.ts). Passwords come from a file or from standard input, never from argv; what the
// server stored is checked by verifying the password against the sealed hash it keeps.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { MAX_PASSWORD_INPUT_BYTES } from '../../../src/cli/commands/users.ts';
import { verifyStoredPassword } from '../../../src/crypto/password.ts';
import { MasterKeyRing, unwrapRing } from '../../../src/crypto/seal.ts';
import type { DataKeyRing, UserRecord } from '../../../src/state/oauth-ops.ts';
import { captureIo } from './io.ts';
import { AdminCluster } from './real-admin.ts';

const TOKEN = 't'.repeat(43);

describe('raftauth users (real admin API, one-node cluster)', () => {
  let dir: string;
  let admin: AdminCluster;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-users-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    admin = await AdminCluster.start([1], { token: TOKEN, master: MasterKeyRing.parse(MasterKeyRing.generateText(), 'test master key') });
  });
  after(async () => {
    await admin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (args: string[], stdin?: string) => {
    const io = Object.assign(captureIo({}, dir), stdin !== undefined ? { stdin: Readable.from([Buffer.from(stdin)]) } : {});
    const code = await runRaftauth(['users', ...args, '--admin', admin.url(1), '--token-file', 'token'], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };
  const read = async <T>(domain: string, op: string, args: unknown): Promise<T> => {
    const r = await admin.node(1).read({ domain, op, args, timeoutMs: 5_000 });
    assert.ok(r.ok, JSON.stringify(r));
    return r.value as T;
  };
  const record = (username: string): Promise<UserRecord | null> => read<UserRecord | null>('users', 'byUsername', { username });
  /** Whether `password` is the one the server keeps for `username` (its sealed scrypt hash). */
  const passwordIs = async (username: string, password: string): Promise<boolean> => {
    const u = await record(username);
    assert.ok(u, `no user ${username}`);
    return verifyStoredPassword(unwrapRing(await read<DataKeyRing>('crypto', 'ring', {}), admin.master), u.sub, password, u.password_hash);
  };
  const sent = (from: number) => admin.requests.slice(from).map((q) => `${q.method} ${q.url}`);

  it('create reads the password from --password-file (without its final line break, spaces kept)', async () => {
    await writeFile(join(dir, 'pw'), ' pass word  \n');
    const before = admin.requests.length;
    const r = await run(['create', 'alice', '--password-file', 'pw', '--name', 'Alice A', '--email', 'alice@example.com', '--email-verified']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(sent(before), ['POST /admin/v1/users']);
    const u = (await record('alice'))!;
    assert.deepEqual([u.name, u.email, u.email_verified, u.disabled], ['Alice A', 'alice@example.com', true, false]);
    assert.equal(await passwordIs('alice', ' pass word  '), true);
    assert.equal(await passwordIs('alice', ' pass word  \n'), false);
    assert.equal(r.out, `user alice created (sub ${u.sub})\n`);
    assert.equal(r.out.includes('pass word'), false);
  });

  it('create and passwd read the password from --password-stdin (CRLF ending dropped)', async () => {
    const r = await run(['create', 'bob', '--password-stdin', '--json'], 'from stdin pw\r\n');
    assert.equal(r.code, 0, r.err);
    assert.equal(await passwordIs('bob', 'from stdin pw'), true);
    assert.deepEqual(JSON.parse(r.out), { sub: (await record('bob'))!.sub, username: 'bob' });
    const before = admin.requests.length;
    const p = await run(['passwd', 'bob', '--password-stdin'], 'new secret pw\n');
    assert.equal(p.code, 0, p.err);
    assert.deepEqual(sent(before), ['POST /admin/v1/users/bob/password']);
    assert.equal(await passwordIs('bob', 'new secret pw'), true);
    assert.equal(await passwordIs('bob', 'from stdin pw'), false);
    assert.equal(p.out, 'password of bob changed\n');
  });

  it('argument errors exit 2 and send nothing: no password source, two, a password on the command line', async () => {
    await writeFile(join(dir, 'pw2'), 'long enough\n');
    const before = admin.requests.length;
    for (const args of [
      ['create', 'carol'],
      ['create', 'carol', '--password-file', 'pw2', '--password-stdin'],
      ['create', 'carol', '--password', 'hunter22'],
      ['create', '--password-file', 'pw2'],
      ['create', 'carol', 'dan', '--password-file', 'pw2'],
      ['create', 'carol', '--password-file', 'pw2', '--email-verified'],
      ['passwd', 'carol'],
      ['disable'],
      ['list', 'extra'],
      ['frobnicate'],
      [],
    ]) {
      const r = await run(args, '');
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, /usage:/);
      assert.equal(r.err.includes('hunter22'), false);
    }
    assert.equal(admin.requests.length, before);
    assert.equal(await record('carol'), null);
  });

  it('an empty, missing or oversized password input fails (exit 1) before any request', async () => {
    const before = admin.requests.length;
    await writeFile(join(dir, 'empty'), '\n');
    assert.equal((await run(['create', 'carol', '--password-file', 'empty'])).code, 1);
    assert.equal((await run(['create', 'carol', '--password-file', 'missing'])).code, 1);
    assert.equal((await run(['create', 'carol', '--password-stdin'], '')).code, 1);
    await writeFile(join(dir, 'big'), 'x'.repeat(MAX_PASSWORD_INPUT_BYTES + 1));
    const r = await run(['create', 'carol', '--password-file', 'big']);
    assert.equal(r.code, 1);
    assert.match(r.err, /larger than/);
    assert.equal((await run(['create', 'carol', '--password-stdin'], 'y'.repeat(MAX_PASSWORD_INPUT_BYTES + 1))).code, 1);
    assert.equal(admin.requests.length, before);
    assert.equal(await record('carol'), null);
  });

  it('a password the server refuses is an error naming its rule, and creates nothing', async () => {
    await writeFile(join(dir, 'short'), 'short\n');
    const r = await run(['create', 'erin', '--password-file', 'short']);
    assert.equal(r.code, 1);
    assert.match(r.err, /refused: INVALID_REQUEST: password must be at least 8 characters/);
    assert.equal(await record('erin'), null);
  });

  it('disable, enable and delete call their routes (usernames URL-encoded); a refusal exits 1', async () => {
    await writeFile(join(dir, 'pw3'), 'long enough\n');
    for (const name of ['ann marie', 'ann/marie']) assert.equal((await run(['create', name, '--password-file', 'pw3'])).code, 0);
    const before = admin.requests.length;
    for (const action of ['disable', 'enable'] as const) {
      const r = await run([action, 'ann marie']);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, `user ann marie ${action}d\n`);
      assert.equal((await record('ann marie'))!.disabled, action === 'disable');
    }
    const d = await run(['delete', 'ann/marie']);
    assert.equal(d.code, 0, d.err);
    assert.deepEqual(sent(before), ['POST /admin/v1/users/ann%20marie/disable', 'POST /admin/v1/users/ann%20marie/enable', 'DELETE /admin/v1/users/ann%2Fmarie']);
    assert.equal(await record('ann/marie'), null);
    assert.notEqual(await record('ann marie'), null);
    const n = await run(['get', 'nobody']);
    assert.equal(n.code, 1);
    assert.match(n.err, /NOT_FOUND: no user nobody/);
  });

  it('list prints a table; get prints one user', async () => {
    const l = await run(['list']);
    assert.equal(l.code, 0, l.err);
    const lines = l.out.trim().split('\n');
    assert.match(lines[0]!, /^USERNAME\s+SUB\s+NAME\s+EMAIL\s+DISABLED$/);
    const alice = (await record('alice'))!;
    const bob = (await record('bob'))!;
    assert.ok(lines.some((x) => new RegExp(`^alice\\s+${alice.sub}\\s+Alice A\\s+alice@example\\.com\\s+no$`).test(x)), l.out);
    assert.ok(lines.some((x) => new RegExp(`^bob\\s+${bob.sub}\\s+-\\s+-\\s+no$`).test(x)), l.out);
    const g = await run(['get', 'alice']);
    assert.equal(g.code, 0, g.err);
    assert.match(g.out, /^username:\s+alice$/m);
    assert.match(g.out, new RegExp(`^sub:\\s+${alice.sub}$`, 'm'));
  });
});
