// `raftauth users factors|reset-factors|unlock|require-mfa` and `clients … --require-mfa` against
// a fake admin API (a node:http server on 127.0.0.1 that records each request).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { captureIo } from './io.ts';

const TOKEN = 'u'.repeat(43);

interface Req {
  method: string;
  url: string;
  body: unknown;
}

const FACTORS = {
  username: 'erin',
  sub: 'sub-erin',
  required: true,
  totp: { confirmed: true, createdAt: Date.parse('2026-01-02T03:04:05Z') },
  webauthn: [{ id: 'cred-1', name: 'YubiKey', createdAt: Date.parse('2026-01-03T00:00:00Z'), lastUsedAt: null, transports: ['usb'], discoverable: true, counter: 3 }],
  recovery: { remaining: 7 },
  lock: { failures: 2, lockedUntil: null, backoffUntil: null },
};

describe('raftauth users (MFA) and clients --require-mfa', () => {
  let dir: string;
  let server: Server;
  let url: string;
  const requests: Req[] = [];

  beforeEach(async () => {
    requests.length = 0;
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-mfa-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    server = createServer((req, res) => {
      let s = '';
      req.on('data', (c) => (s += c));
      req.on('end', () => {
        const r: Req = { method: req.method!, url: req.url!, body: s ? JSON.parse(s) : undefined };
        requests.push(r);
        let status = 200;
        let body: unknown = { ok: true };
        if (r.url.startsWith('/admin/v1/users/nobody')) [status, body] = [404, { error: 'NOT_FOUND', message: 'no user nobody' }];
        else if (r.method === 'GET' && r.url === '/admin/v1/users/erin/factors') body = FACTORS;
        else if (r.url.startsWith('/admin/v1/clients')) body = { client: { client_id: 'c1', client_name: 'C', token_endpoint_auth_method: 'none', redirect_uris: [], grant_types: [], scopes: [], jwks: null, first_party: false, audience: null, require_mfa: true, created_at: 0, updated_at: 0 } };
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (args: string[]) => {
    const io = captureIo({}, dir);
    const code = await runRaftauth([...args, '--admin', url, '--token-file', 'token'], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };

  it('factors prints the factors and lock state (no secrets to print), --json the answer', async () => {
    const r = await run(['users', 'factors', 'erin']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(requests[0], { method: 'GET', url: '/admin/v1/users/erin/factors', body: undefined });
    assert.match(r.out, /MFA required: +yes/);
    assert.match(r.out, /TOTP: +yes \(since 2026-01-02T03:04:05.000Z\)/);
    assert.match(r.out, /recovery codes left: +7/);
    assert.match(r.out, /YubiKey +cred-1/);
    const j = await run(['users', 'factors', 'erin', '--json']);
    assert.deepEqual(JSON.parse(j.out), FACTORS);
  });

  it('reset-factors, unlock and require-mfa post to their routes', async () => {
    assert.equal((await run(['users', 'reset-factors', 'erin'])).code, 0);
    assert.equal((await run(['users', 'unlock', 'erin'])).code, 0);
    assert.equal((await run(['users', 'require-mfa', 'erin', '--on'])).code, 0);
    const off = await run(['users', 'require-mfa', 'erin', '--off']);
    assert.equal(off.out, 'MFA no longer required for erin\n');
    assert.deepEqual(
      requests.map((q) => [q.method, q.url, q.body]),
      [
        ['POST', '/admin/v1/users/erin/factors/reset', undefined],
        ['POST', '/admin/v1/users/erin/unlock', undefined],
        ['POST', '/admin/v1/users/erin/mfa-required', { required: true }],
        ['POST', '/admin/v1/users/erin/mfa-required', { required: false }],
      ],
    );
  });

  it('argument errors exit 2 and send nothing; an unknown user is an error naming the API answer', async () => {
    for (const args of [['users', 'require-mfa', 'erin'], ['users', 'require-mfa', 'erin', '--on', '--off'], ['users', 'factors'], ['clients', 'update', 'c1', '--require-mfa', '--no-require-mfa']]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
    assert.equal(requests.length, 0);
    const r = await run(['users', 'unlock', 'nobody']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /no user nobody/);
  });

  it('clients create --require-mfa and update --no-require-mfa send require_mfa', async () => {
    assert.equal((await run(['clients', 'create', '--name', 'C', '--require-mfa'])).code, 0);
    const u = await run(['clients', 'update', 'c1', '--no-require-mfa']);
    assert.equal(u.code, 0, u.err);
    assert.match(u.out, /require MFA: +yes/);
    assert.deepEqual(requests[0]!.body, { client_name: 'C', require_mfa: true });
    assert.deepEqual(requests[1]!.body, { require_mfa: false });
  });
});
