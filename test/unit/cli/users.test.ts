// `raftauth users …` against a fake admin API (a node:http server on 127.0.0.1 that records each
// request). Passwords come from a file or from standard input, never from argv.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { MAX_PASSWORD_INPUT_BYTES } from '../../../src/cli/commands/users.ts';
import { captureIo } from './io.ts';
import { TOKEN, fakeAdmin } from './fake-admin.ts';

const user = (username: string) => ({ sub: `sub-${username}`, username, name: null, email: null, email_verified: false, disabled: false, created_at: 0, updated_at: 0 });

describe('raftauth users', () => {
  let dir: string;
  let admin: Awaited<ReturnType<typeof fakeAdmin>>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-users-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    admin = await fakeAdmin((r) => {
      const b = (r.body ?? {}) as Record<string, unknown>;
      if (r.method === 'POST' && r.url === '/admin/v1/users') return { status: 201, body: { sub: 'sub-1', username: b.username } };
      if (r.method === 'GET' && /^\/admin\/v1\/users(\?.*)?$/.test(r.url)) return { status: 200, body: { users: [user('alice'), { ...user('bob'), disabled: true }], next: null } };
      const m = /^\/admin\/v1\/users\/([^/]+)(\/[a-z]+)?$/.exec(r.url);
      if (m) {
        const name = decodeURIComponent(m[1]!);
        if (name === 'nobody') return { status: 404, body: { error: 'NOT_FOUND', message: 'no user nobody' } };
        return { status: 200, body: r.method === 'DELETE' ? { deleted: name } : { user: user(name) } };
      }
      return { status: 404, body: { error: 'NOT_FOUND', message: 'no route' } };
    });
  });
  afterEach(async () => {
    await new Promise((r) => admin.server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (args: string[], stdin?: string) => {
    const io = Object.assign(captureIo({}, dir), stdin !== undefined ? { stdin: Readable.from([Buffer.from(stdin)]) } : {});
    const code = await runRaftauth(['users', ...args, '--admin', admin.url, '--token-file', 'token'], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };

  it('create reads the password from --password-file (without its final line break, spaces kept)', async () => {
    await writeFile(join(dir, 'pw'), ' pass word  \n');
    const r = await run(['create', 'alice', '--password-file', 'pw', '--name', 'Alice A', '--email', 'alice@example.com', '--email-verified']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(admin.requests[0], {
      method: 'POST',
      url: '/admin/v1/users',
      body: { username: 'alice', password: ' pass word  ', name: 'Alice A', email: 'alice@example.com', email_verified: true },
    });
    assert.equal(r.out, 'user alice created (sub sub-1)\n');
    assert.equal(r.out.includes('pass word'), false);
  });

  it('create and passwd read the password from --password-stdin (CRLF ending dropped)', async () => {
    const r = await run(['create', 'bob', '--password-stdin', '--json'], 'from stdin pw\r\n');
    assert.equal(r.code, 0, r.err);
    assert.equal((admin.requests[0]!.body as { password: string }).password, 'from stdin pw');
    assert.deepEqual(JSON.parse(r.out), { sub: 'sub-1', username: 'bob' });
    const p = await run(['passwd', 'bob', '--password-stdin'], 'new secret pw\n');
    assert.equal(p.code, 0, p.err);
    assert.deepEqual(admin.requests[1], { method: 'POST', url: '/admin/v1/users/bob/password', body: { password: 'new secret pw' } });
    assert.equal(p.out, 'password of bob changed\n');
  });

  it('argument errors exit 2 and send nothing: no password source, two, a password on the command line', async () => {
    await writeFile(join(dir, 'pw'), 'long enough\n');
    for (const args of [
      ['create', 'alice'],
      ['create', 'alice', '--password-file', 'pw', '--password-stdin'],
      ['create', 'alice', '--password', 'hunter22'],
      ['create', '--password-file', 'pw'],
      ['create', 'alice', 'bob', '--password-file', 'pw'],
      ['create', 'alice', '--password-file', 'pw', '--email-verified'],
      ['passwd', 'alice'],
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
    assert.equal(admin.requests.length, 0);
  });

  it('an empty, missing or oversized password input fails (exit 1) before any request', async () => {
    await writeFile(join(dir, 'empty'), '\n');
    assert.equal((await run(['create', 'alice', '--password-file', 'empty'])).code, 1);
    assert.equal((await run(['create', 'alice', '--password-file', 'missing'])).code, 1);
    assert.equal((await run(['create', 'alice', '--password-stdin'], '')).code, 1);
    await writeFile(join(dir, 'big'), 'x'.repeat(MAX_PASSWORD_INPUT_BYTES + 1));
    const r = await run(['create', 'alice', '--password-file', 'big']);
    assert.equal(r.code, 1);
    assert.match(r.err, /larger than/);
    assert.equal((await run(['create', 'alice', '--password-stdin'], 'y'.repeat(MAX_PASSWORD_INPUT_BYTES + 1))).code, 1);
    assert.equal(admin.requests.length, 0);
  });

  it('disable, enable and delete call their routes (usernames URL-encoded); a refusal exits 1', async () => {
    for (const action of ['disable', 'enable'] as const) {
      const r = await run([action, 'ann marie']);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, `user ann marie ${action}d\n`);
    }
    const d = await run(['delete', 'ann/marie']);
    assert.equal(d.code, 0, d.err);
    assert.deepEqual(
      admin.requests.map((q) => `${q.method} ${q.url}`),
      ['POST /admin/v1/users/ann%20marie/disable', 'POST /admin/v1/users/ann%20marie/enable', 'DELETE /admin/v1/users/ann%2Fmarie'],
    );
    const n = await run(['get', 'nobody']);
    assert.equal(n.code, 1);
    assert.match(n.err, /NOT_FOUND: no user nobody/);
  });

  it('list prints a table; get prints one user', async () => {
    const l = await run(['list']);
    assert.equal(l.code, 0, l.err);
    const lines = l.out.trim().split('\n');
    assert.match(lines[0]!, /^USERNAME\s+SUB\s+NAME\s+EMAIL\s+DISABLED$/);
    assert.match(lines[1]!, /^alice\s+sub-alice\s+-\s+-\s+no$/);
    assert.match(lines[2]!, /^bob\s+sub-bob\s+-\s+-\s+yes$/);
    const g = await run(['get', 'alice']);
    assert.equal(g.code, 0, g.err);
    assert.match(g.out, /^username:\s+alice$/m);
    assert.match(g.out, /^sub:\s+sub-alice$/m);
  });
});
