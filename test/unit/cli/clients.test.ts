// `raftauth clients …` against a fake admin API (a node:http server on 127.0.0.1 that records each
// request and answers like src/ops/admin-oauth.ts). The real routes are tested in
// test/unit/ops/admin-oauth.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { captureIo } from './io.ts';
import { TOKEN, fakeAdmin } from './fake-admin.ts';
import type { Answer } from './fake-admin.ts';

const SECRET = 'S3cr3t-value-that-is-43-characters-long_xyz';

function clientOf(b: Record<string, unknown>): Record<string, unknown> {
  return {
    client_id: b.client_id ?? 'generated-id',
    client_name: b.client_name ?? 'x',
    token_endpoint_auth_method: b.token_endpoint_auth_method ?? 'client_secret_basic',
    redirect_uris: b.redirect_uris ?? [],
    grant_types: b.grant_types ?? ['authorization_code'],
    scopes: b.scopes ?? [],
    jwks: b.jwks ?? null,
    first_party: b.first_party ?? false,
    audience: b.audience ?? null,
    created_at: 1_700_000_000_000,
    updated_at: 1_700_000_000_000,
  };
}

describe('raftauth clients', () => {
  let dir: string;
  let admin: Awaited<ReturnType<typeof fakeAdmin>>;
  let next: Answer | null;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-clients-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    next = null;
    admin = await fakeAdmin((r) => {
      if (next) return next;
      const b = (r.body ?? {}) as Record<string, unknown>;
      if (r.method === 'POST' && r.url === '/admin/v1/clients') {
        const c = clientOf(b);
        return { status: 201, body: c.token_endpoint_auth_method === 'none' ? { client: c } : { client: c, client_secret: SECRET } };
      }
      if (r.method === 'GET' && r.url.startsWith('/admin/v1/clients?')) return { status: 200, body: { clients: [clientOf({ client_id: 'a', client_name: 'A' }), clientOf({ client_id: 'b', client_name: 'B', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'] })], next: 'b' } };
      if (r.method === 'GET' && r.url === '/admin/v1/clients') return { status: 200, body: { clients: [], next: null } };
      let m = /^\/admin\/v1\/clients\/([^/]+)$/.exec(r.url);
      if (m && r.method === 'GET') return { status: 200, body: { client: clientOf({ client_id: decodeURIComponent(m[1]!) }) } };
      if (m && r.method === 'PATCH') return { status: 200, body: { client: clientOf({ client_id: decodeURIComponent(m[1]!), ...b }) } };
      if (m && r.method === 'DELETE') return { status: 200, body: { deleted: decodeURIComponent(m[1]!) } };
      m = /^\/admin\/v1\/clients\/([^/]+)\/secret$/.exec(r.url);
      if (m && r.method === 'POST') return { status: 200, body: { client: clientOf({ client_id: m[1] }), client_secret: SECRET } };
      return { status: 404, body: { error: 'NOT_FOUND', message: 'no route' } };
    });
  });
  afterEach(async () => {
    await new Promise((r) => admin.server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (...args: string[]) => {
    const io = captureIo({}, dir);
    const code = await runRaftauth(['clients', ...args, '--admin', admin.url, '--token-file', 'token'], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };
  const count = (hay: string, needle: string) => hay.split(needle).length - 1;

  it('create sends every flag and prints the secret exactly once, with a note that it is not shown again', async () => {
    await writeFile(join(dir, 'jwk.json'), JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }));
    const r = await run(
      'create', '--name', 'My App', '--id', 'my-app', '--auth-method', 'client_secret_post',
      '--redirect-uri', 'https://app.example/cb', '--redirect-uri', 'https://app.example/cb?a=1,2',
      '--grant', 'authorization_code', '--grant', 'device_code', '--scope', 'openid profile', '--scope', 'a,b',
      '--first-party', '--audience', 'https://api.example',
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(admin.requests.length, 1);
    assert.equal(admin.requests[0]!.method, 'POST');
    assert.deepEqual(admin.requests[0]!.body, {
      client_id: 'my-app',
      client_name: 'My App',
      token_endpoint_auth_method: 'client_secret_post',
      redirect_uris: ['https://app.example/cb', 'https://app.example/cb?a=1,2'],
      grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      scopes: ['openid', 'profile', 'a,b'],
      first_party: true,
      audience: 'https://api.example',
    });
    assert.equal(count(r.out, SECRET), 1);
    assert.match(r.out, /^client_id:\s+my-app$/m);
    assert.match(r.out, /^client_secret:\s+\S+$/m);
    assert.match(r.err, /shown only this once/);

    const j = await run('create', '--name', 'J', '--auth-method', 'private_key_jwt', '--grant', 'client_credentials', '--jwks-file', 'jwk.json', '--json');
    assert.equal(j.code, 0, j.err);
    // A single JWK is sent as a one-key set.
    assert.deepEqual((admin.requests[1]!.body as { jwks: unknown }).jwks, { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] });
    const parsed = JSON.parse(j.out);
    assert.equal(parsed.client_secret, SECRET);
    assert.equal(count(j.out, SECRET), 1);
    assert.match(j.err, /shown only this once/);
  });

  it('a public client gets no secret and no note', async () => {
    const r = await run('create', '--name', 'SPA', '--auth-method', 'none', '--redirect-uri', 'http://127.0.0.1/cb');
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.out, /^client_secret:/m);
    assert.equal(r.err, '');
  });

  it('argument errors exit 2 and send nothing', async () => {
    for (const args of [
      ['create'],
      ['create', '--name', 'x', '--colour', 'red'],
      ['create', '--name', 'x', 'extra'],
      ['create', '--name', 'x', '--no-scopes'],
      ['get'],
      ['update', 'id'],
      ['update', 'id', '--scope', 'a', '--no-scopes'],
      ['update', 'id', '--first-party', '--not-first-party'],
      ['list', '--limit', '1001'],
      ['list', '--limit', '0'],
      ['rotate-secret'],
      ['delete'],
      ['frobnicate'],
      [],
    ]) {
      const r = await run(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, /usage:/);
    }
    assert.equal(admin.requests.length, 0);
  });

  it('a missing --jwks-file or one that is not JSON fails (exit 1) before any request', async () => {
    assert.equal((await run('create', '--name', 'x', '--jwks-file', 'missing.json')).code, 1);
    await writeFile(join(dir, 'bad.json'), '{not json');
    const r = await run('create', '--name', 'x', '--jwks-file', 'bad.json');
    assert.equal(r.code, 1);
    assert.match(r.err, /not JSON/);
    assert.equal(admin.requests.length, 0);
  });

  it('update sends a PATCH with only the given fields (and the clearing flags)', async () => {
    const r = await run('update', 'my app', '--name', 'Renamed', '--no-audience', '--not-first-party', '--no-redirect-uris');
    assert.equal(r.code, 0, r.err);
    assert.equal(admin.requests[0]!.method, 'PATCH');
    assert.equal(admin.requests[0]!.url, '/admin/v1/clients/my%20app');
    assert.deepEqual(admin.requests[0]!.body, { client_name: 'Renamed', audience: null, first_party: false, redirect_uris: [] });
    assert.doesNotMatch(r.out, /^client_secret:/m);
    assert.equal(r.err, '');
  });

  it('list prints a table and where the next page starts; get prints one client', async () => {
    const r = await run('list', '--limit', '2', '--after', 'a b');
    assert.equal(r.code, 0, r.err);
    assert.equal(admin.requests[0]!.url, '/admin/v1/clients?after=a+b&limit=2');
    const lines = r.out.trim().split('\n');
    assert.match(lines[0]!, /^CLIENT_ID\s+NAME\s+AUTH_METHOD\s+GRANTS\s+REDIRECT_URIS\s+FIRST_PARTY$/);
    assert.match(lines[1]!, /^a\s+A\s+client_secret_basic\s+authorization_code\s+0\s+no$/);
    assert.match(lines[2]!, /^b\s+B\s+client_secret_basic\s+device_code\s+0\s+no$/);
    assert.match(r.err, /--after b/);
    const j = await run('list', '--json');
    assert.deepEqual(JSON.parse(j.out), { clients: [], next: null });
    const g = await run('get', 'a');
    assert.equal(g.code, 0, g.err);
    assert.match(g.out, /^client_id:\s+a$/m);
    assert.match(g.out, /^grant types:\s+authorization_code$/m);
  });

  it('rotate-secret prints the new secret once; delete confirms; a refusal exits 1 with its message', async () => {
    const s = await run('rotate-secret', 'rot');
    assert.equal(s.code, 0, s.err);
    assert.equal(admin.requests[0]!.method, 'POST');
    assert.equal(admin.requests[0]!.url, '/admin/v1/clients/rot/secret');
    assert.equal(count(s.out, SECRET), 1);
    assert.match(s.err, /shown only this once/);
    const d = await run('delete', 'gone');
    assert.equal(d.code, 0, d.err);
    assert.equal(admin.requests[1]!.method, 'DELETE');
    assert.equal(d.out, 'client gone deleted\n');
    next = { status: 404, body: { error: 'NOT_FOUND', message: 'no client nope' } };
    const n = await run('get', 'nope');
    assert.equal(n.code, 1);
    assert.match(n.err, /NOT_FOUND: no client nope/);
    next = { status: 400, body: { error: 'INVALID_ARGUMENT', message: 'client.redirect_uris[0] must not contain a fragment (RFC 6749 §3.1.2)' } };
    const v = await run('create', '--name', 'x', '--redirect-uri', 'https://a.example/#f');
    assert.equal(v.code, 1);
    assert.match(v.err, /INVALID_ARGUMENT: .*fragment/);
  });
});
