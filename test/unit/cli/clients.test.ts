// `raftauth clients …` against the real admin API (src/ops/admin.ts + admin-oauth.ts) of a real
// one-node RaftNode, listening on 127.0.0.1 (real-admin.ts). What a command did is read back from
// the API and from the replicated state; that it sent nothing is read from the listener's record.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { tokenHash } from '../../../src/crypto/tokens.ts';
import { unpackValue } from '../../../src/state/command.ts';
import type { ClientRecord } from '../../../src/state/oauth-ops.ts';
import { captureIo } from './io.ts';
import { AdminCluster } from './real-admin.ts';

const TOKEN = 't'.repeat(43);

describe('raftauth clients (real admin API, one-node cluster)', () => {
  let dir: string;
  let admin: AdminCluster;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-clients-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    admin = await AdminCluster.start([1], { token: TOKEN, master: MasterKeyRing.parse(MasterKeyRing.generateText(), 'test master key') });
  });
  after(async () => {
    await admin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (...args: string[]) => {
    const io = captureIo({}, dir);
    const code = await runRaftauth(['clients', ...args, '--admin', admin.url(1), '--token-file', 'token'], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };
  /** The client as the admin API shows it now (not through the CLI). */
  const shown = async (id: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`${admin.url(1)}/admin/v1/clients/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200, `client ${id}`);
    return ((await res.json()) as { client: Record<string, unknown> }).client;
  };
  const stored = async (id: string): Promise<ClientRecord | undefined> =>
    (await admin.node(1).scanState('clients', { limit: 1000 })).map((r) => unpackValue<ClientRecord>(r.value)).find((c) => c.client_id === id);
  const count = (hay: string, needle: string) => hay.split(needle).length - 1;
  const secretIn = (out: string): string => /^client_secret:\s+(\S+)$/m.exec(out)?.[1] ?? '';

  it('create sends every flag and prints the secret exactly once, with a note that it is not shown again', async () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    await writeFile(join(dir, 'jwk.json'), JSON.stringify(jwk));
    const before = admin.requests.length;
    const r = await run(
      'create', '--name', 'My App', '--id', 'my-app', '--auth-method', 'client_secret_post',
      '--redirect-uri', 'https://app.example/cb', '--redirect-uri', 'https://app.example/cb?a=1,2',
      '--grant', 'authorization_code', '--grant', 'device_code', '--scope', 'openid profile', '--scope', 'a,b',
      '--first-party', '--audience', 'https://api.example',
    );
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(admin.requests.slice(before).map((q) => `${q.method} ${q.url}`), ['POST /admin/v1/clients']);
    const c = await shown('my-app');
    assert.deepEqual(
      {
        client_name: c.client_name,
        token_endpoint_auth_method: c.token_endpoint_auth_method,
        redirect_uris: c.redirect_uris,
        grant_types: c.grant_types,
        scopes: c.scopes,
        first_party: c.first_party,
        audience: c.audience,
      },
      {
        client_name: 'My App',
        token_endpoint_auth_method: 'client_secret_post',
        redirect_uris: ['https://app.example/cb', 'https://app.example/cb?a=1,2'],
        grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
        scopes: ['openid', 'profile', 'a,b'],
        first_party: true,
        audience: 'https://api.example',
      },
    );
    const secret = secretIn(r.out);
    assert.equal(count(r.out, secret), 1);
    assert.match(r.out, /^client_id:\s+my-app$/m);
    assert.match(r.err, /shown only this once/);
    // The printed secret is the one the server keeps (as its hash).
    assert.equal((await stored('my-app'))?.client_secret_hash, tokenHash(secret));

    const j = await run('create', '--name', 'J', '--id', 'jwt-app', '--auth-method', 'private_key_jwt', '--grant', 'client_credentials', '--jwks-file', 'jwk.json', '--json');
    assert.equal(j.code, 0, j.err);
    // A single JWK is sent as a one-key set.
    assert.deepEqual((await shown('jwt-app')).jwks, { keys: [jwk] });
    const parsed = JSON.parse(j.out) as { client_secret?: string };
    // private_key_jwt: the client authenticates with its key; the server issues no secret.
    assert.equal(parsed.client_secret, undefined);
    assert.equal(j.err, '');
  });

  it('a public client gets no secret and no note', async () => {
    const r = await run('create', '--name', 'SPA', '--id', 'spa', '--auth-method', 'none', '--redirect-uri', 'http://127.0.0.1/cb');
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.out, /^client_secret:/m);
    assert.equal(r.err, '');
    assert.equal((await shown('spa')).token_endpoint_auth_method, 'none');
    assert.equal((await stored('spa'))?.client_secret_hash, null);
  });

  it('argument errors exit 2 and send nothing', async () => {
    const before = admin.requests.length;
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
    assert.equal(admin.requests.length, before);
  });

  it('a missing --jwks-file or one that is not JSON fails (exit 1) before any request', async () => {
    const before = admin.requests.length;
    assert.equal((await run('create', '--name', 'x', '--jwks-file', 'missing.json')).code, 1);
    await writeFile(join(dir, 'bad.json'), '{not json');
    const r = await run('create', '--name', 'x', '--jwks-file', 'bad.json');
    assert.equal(r.code, 1);
    assert.match(r.err, /not JSON/);
    assert.equal(admin.requests.length, before);
  });

  it('update sends a PATCH with only the given fields (and the clearing flags); an id is URL-encoded', async () => {
    const c = await run('create', '--name', 'Up', '--id', 'upd', '--grant', 'client_credentials', '--redirect-uri', 'https://u.example/cb', '--first-party', '--audience', 'https://api.example', '--scope', 'keep');
    assert.equal(c.code, 0, c.err);
    const before = admin.requests.length;
    const r = await run('update', 'upd', '--name', 'Renamed', '--no-audience', '--not-first-party', '--no-redirect-uris');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(admin.requests.slice(before).map((q) => `${q.method} ${q.url}`), ['PATCH /admin/v1/clients/upd']);
    const u = await shown('upd');
    assert.deepEqual([u.client_name, u.audience, u.first_party, u.redirect_uris, u.scopes, u.grant_types], ['Renamed', null, false, [], ['keep'], ['client_credentials']]);
    assert.doesNotMatch(r.out, /^client_secret:/m);
    assert.equal(r.err, '');
    // A client id is never valid with a space, but the CLI must still send it encoded (one path
    // segment), and the server, seeing it decoded, refuses it by the id rule (not as an unknown route).
    const sp = await run('update', 'my app', '--name', 'x');
    assert.equal(sp.code, 1);
    assert.match(sp.err, /refused: INVALID_ARGUMENT: client_id must be 1\.\.128 characters/);
    assert.equal(admin.requests.at(-1)!.url, '/admin/v1/clients/my%20app');
  });

  it('list prints a table and where the next page starts; get prints one client', async () => {
    for (const id of ['list-a', 'list-b', 'list-c']) assert.equal((await run('create', '--name', id.toUpperCase(), '--id', id, '--redirect-uri', 'https://l.example/cb')).code, 0);
    const res = await fetch(`${admin.url(1)}/admin/v1/clients?limit=1000`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const all = ((await res.json()) as { clients: { client_id: string }[] }).clients.map((c) => c.client_id);
    const i = all.indexOf('list-a');
    assert.deepEqual(all.slice(i, i + 3), ['list-a', 'list-b', 'list-c'], 'listed in key order');

    const r = await run('list', '--limit', '2', '--after', all[i - 1]!);
    assert.equal(r.code, 0, r.err);
    assert.equal(admin.requests.at(-1)!.url, `/admin/v1/clients?${new URLSearchParams({ after: all[i - 1]!, limit: '2' })}`);
    const lines = r.out.trim().split('\n');
    assert.match(lines[0]!, /^CLIENT_ID\s+NAME\s+AUTH_METHOD\s+GRANTS\s+REDIRECT_URIS\s+FIRST_PARTY$/);
    assert.match(lines[1]!, /^list-a\s+LIST-A\s+client_secret_basic\s+authorization_code\s+1\s+no$/);
    assert.match(lines[2]!, /^list-b\s+LIST-B\s+client_secret_basic\s+authorization_code\s+1\s+no$/);
    assert.equal(lines.length, 3);
    assert.match(r.err, /--after list-b/);
    const j = await run('list', '--json', '--after', 'list-b', '--limit', '1');
    assert.deepEqual((JSON.parse(j.out) as { clients: { client_id: string }[] }).clients.map((c) => c.client_id), ['list-c']);
    const g = await run('get', 'list-a');
    assert.equal(g.code, 0, g.err);
    assert.match(g.out, /^client_id:\s+list-a$/m);
    assert.match(g.out, /^grant types:\s+authorization_code$/m);
  });

  it('rotate-secret prints the new secret once; delete confirms; a refusal exits 1 with its message', async () => {
    assert.equal((await run('create', '--name', 'Rot', '--id', 'rot', '--grant', 'client_credentials')).code, 0);
    const oldHash = (await stored('rot'))?.client_secret_hash;
    const s = await run('rotate-secret', 'rot');
    assert.equal(s.code, 0, s.err);
    assert.deepEqual(admin.requests.at(-1), { node: 1, method: 'POST', url: '/admin/v1/clients/rot/secret' });
    const secret = secretIn(s.out);
    assert.equal(count(s.out, secret), 1);
    assert.match(s.err, /shown only this once/);
    const newHash = (await stored('rot'))?.client_secret_hash;
    assert.equal(newHash, tokenHash(secret));
    assert.notEqual(newHash, oldHash);

    const d = await run('delete', 'rot');
    assert.equal(d.code, 0, d.err);
    assert.equal(admin.requests.at(-1)!.method, 'DELETE');
    assert.equal(d.out, 'client rot deleted\n');
    assert.equal(await stored('rot'), undefined);
    const n = await run('get', 'rot');
    assert.equal(n.code, 1);
    assert.match(n.err, /NOT_FOUND: no client rot/);
    const v = await run('create', '--name', 'x', '--redirect-uri', 'https://a.example/#f');
    assert.equal(v.code, 1);
    assert.match(v.err, /refused: \w+: .*fragment/);
  });
});
