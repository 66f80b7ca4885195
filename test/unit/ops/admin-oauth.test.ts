// The admin API's OAuth routes (src/ops/admin-oauth.ts) over a real one-node RaftNode (LevelDB,
// the real OAuth domains) with its keys bootstrapped the way the leader does it; requests through
// fastify's inject.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildAdminApp } from '../../../src/ops/admin.ts';
import { MAX_PAGE_SIZE, registerOAuthAdminRoutes } from '../../../src/ops/admin-oauth.ts';
import type { RaftNode } from '../../../src/node/node.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { stateApplier } from '../../../src/state/applier.ts';
import { unpackValue } from '../../../src/state/command.ts';
import type { ClientRecord, DataKeyRing, SigningKeyRing, UserRecord } from '../../../src/state/oauth-ops.ts';
import { MasterKeyRing, SealError, unwrapRing } from '../../../src/crypto/seal.ts';
import { tokenHash } from '../../../src/crypto/tokens.ts';
import { SEALED_PHC_PREFIX, openPasswordHash, verifyPassword } from '../../../src/crypto/password.ts';
import { DEFAULT_OAUTH_CONFIG } from '../../../src/oauth/config.ts';
import type { OAuthConfig } from '../../../src/oauth/config.ts';
import { LocalCluster } from '../node/helpers.ts';
import { oauthAdminNode } from './helpers.ts';
import { adminKeyRotation } from '../../../src/server/oauth-node.ts';

const TOKEN = 'a'.repeat(43);
const auth = { authorization: `Bearer ${TOKEN}` };
const config: OAuthConfig = { ...DEFAULT_OAUTH_CONFIG, issuer: 'http://localhost:8080', passwordScrypt: { ln: 10, r: 8, p: 1 } };
const silent = pino({ level: 'silent' });

describe('admin API: OAuth clients, users and keys (one-node RaftNode)', () => {
  const cluster = new LocalCluster({ applier: stateApplier(oauthDomains()) });
  let node: RaftNode;
  let app: FastifyInstance;
  const oldKeyText = MasterKeyRing.generateText();
  const master = MasterKeyRing.parse(oldKeyText, 'test master key');

  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, a: FastifyInstance = app) => {
    const r = await a.inject({ method, url, headers: auth, ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}) });
    return { status: r.statusCode, body: r.body.length > 0 ? (JSON.parse(r.body) as Record<string, unknown>) : null, raw: r.body };
  };
  const stored = async <T>(keyspace: string): Promise<T[]> => (await node.scanState(keyspace, { limit: 1000 })).map((r) => unpackValue<T>(r.value));
  const storedClient = async (id: string): Promise<ClientRecord | undefined> => (await stored<ClientRecord>('clients')).find((c) => c.client_id === id);
  /** A stored user's PHC string, unsealed with the cluster's data key (the admin API seals it before proposing). */
  const phcOf = async (u: UserRecord): Promise<string> => openPasswordHash(unwrapRing(await readRing<DataKeyRing>('crypto'), master), u.sub, u.password_hash);
  const readRing = async <T>(domain: string): Promise<T> => {
    const r = await node.read({ domain, op: 'ring', args: {}, timeoutMs: 5_000 });
    assert.ok(r.ok);
    return r.value as T;
  };

  before(async () => {
    ({ node, app } = await oauthAdminNode(cluster, master, config, TOKEN));
  });
  after(async () => {
    await app?.close();
    await cluster.close();
  });

  it('refuses every OAuth route without the bearer token (401)', async () => {
    for (const [method, url] of [
      ['GET', '/admin/v1/clients'],
      ['POST', '/admin/v1/users'],
      ['GET', '/admin/v1/keys'],
      ['POST', '/admin/v1/keys/rotate'],
    ] as const) {
      const r = await app.inject({ method, url, headers: { authorization: 'Bearer wrong' } });
      assert.equal(r.statusCode, 401, `${method} ${url}`);
    }
    assert.equal((await stored('users')).length, 0);
  });

  it('creates a confidential client: the secret is returned once and stored only as its hash', async () => {
    const r = await call('POST', '/admin/v1/clients', { client_name: 'App', redirect_uris: ['https://app.example/cb'], grant_types: ['authorization_code', 'refresh_token'], scopes: ['openid', 'profile'] });
    assert.equal(r.status, 201, r.raw);
    const client = r.body!.client as Record<string, unknown>;
    const secret = r.body!.client_secret as string;
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url
    assert.match(client.client_id as string, /^[A-Za-z0-9_-]{22}$/); // randomId(): 128 bits
    assert.equal(client.token_endpoint_auth_method, 'client_secret_basic');
    assert.equal('client_secret_hash' in client, false);
    const rec = await storedClient(client.client_id as string);
    assert.equal(rec?.client_secret_hash, tokenHash(secret));
    const raw = (await node.scanState('clients', { limit: 1000 })).map((x) => Buffer.from(x.value).toString('latin1')).join('');
    assert.equal(raw.includes(secret), false);
    // Never again: get and list show no secret and no hash.
    const g = await call('GET', `/admin/v1/clients/${client.client_id as string}`);
    assert.equal(g.status, 200);
    assert.deepEqual(g.body!.client, client);
    assert.equal(g.raw.includes(secret) || g.raw.includes(tokenHash(secret)), false);
    const l = await call('GET', '/admin/v1/clients');
    assert.equal(l.raw.includes(tokenHash(secret)), false);
  });

  it('creates a public client without a secret; a taken client_id is 409 and changes nothing', async () => {
    const r = await call('POST', '/admin/v1/clients', { client_id: 'spa', client_name: 'SPA', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1:3000/cb'], grant_types: ['authorization_code'] });
    assert.equal(r.status, 201, r.raw);
    assert.equal(r.body!.client_secret, undefined);
    assert.equal((await storedClient('spa'))?.client_secret_hash, null);
    const again = await call('POST', '/admin/v1/clients', { client_id: 'spa', client_name: 'Other', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1:3000/other'], grant_types: ['authorization_code'] });
    assert.equal(again.status, 409);
    assert.equal(again.body!.error, 'ALREADY_EXISTS');
    assert.equal((await storedClient('spa'))?.client_name, 'SPA');
  });

  it('refuses invalid clients with 400 and the validator message, storing nothing', async () => {
    const before = (await stored('clients')).length;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ client_id: 'bad1', client_name: 'x', redirect_uris: ['http://evil.example/cb'], grant_types: ['authorization_code'] }, /loopback/],
      [{ client_id: 'bad2', client_name: 'x', redirect_uris: ['https://a.example/cb#frag'], grant_types: ['authorization_code'] }, /fragment/],
      [{ client_id: 'bad3', client_name: 'x', grant_types: ['authorization_code'] }, /redirect_uris must not be empty/],
      [{ client_id: 'bad4', client_name: 'x', token_endpoint_auth_method: 'none', grant_types: ['client_credentials'] }, /client_credentials/],
      [{ client_id: 'bad5', client_name: 'x', token_endpoint_auth_method: 'private_key_jwt', grant_types: ['client_credentials'] }, /jwks/],
      [{ client_id: 'bad 6', client_name: 'x', grant_types: ['client_credentials'] }, /client_id/],
      [{ client_id: 'bad7', client_name: 'x', grant_types: ['password'] }, /grant_types/],
      [{ client_id: 'bad8', client_name: 'x', grant_types: ['client_credentials'], client_secret_hash: 'x'.repeat(43) }, /unknown field client_secret_hash/],
      [{ client_id: 'bad9', grant_types: ['client_credentials'] }, /client_name is required/],
    ];
    for (const [b, msg] of cases) {
      const r = await call('POST', '/admin/v1/clients', b);
      assert.equal(r.status, 400, `${JSON.stringify(b)}: ${r.raw}`);
      assert.match(r.body!.message as string, msg);
      assert.equal(typeof r.body!.error, 'string');
    }
    assert.equal((await stored('clients')).length, before);
  });

  it('lists clients in pages of at most 1000 with an after cursor', async () => {
    for (const id of ['page-a', 'page-b', 'page-c']) {
      assert.equal((await call('POST', '/admin/v1/clients', { client_id: id, client_name: id, grant_types: ['client_credentials'] })).status, 201);
    }
    const all = (await stored<ClientRecord>('clients')).map((c) => c.client_id).sort();
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const r = await call('GET', `/admin/v1/clients?limit=2${cursor !== null ? `&after=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, r.raw);
      const page = r.body!.clients as { client_id: string; client_secret_hash?: unknown }[];
      assert.ok(page.length <= 2);
      for (const c of page) assert.equal('client_secret_hash' in c, false);
      seen.push(...page.map((c) => c.client_id));
      cursor = r.body!.next as string | null;
      if (cursor === null) break;
    }
    assert.deepEqual(seen, all);
    const tooMany = await call('GET', `/admin/v1/clients?limit=${MAX_PAGE_SIZE + 1}`);
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body!.error, 'INVALID_REQUEST');
    assert.match(String(tooMany.body!.message), new RegExp(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}`));
    const usersTooMany = await call('GET', `/admin/v1/users?limit=${MAX_PAGE_SIZE + 1}`);
    assert.equal(usersTooMany.status, 400);
    assert.equal(usersTooMany.body!.error, 'INVALID_REQUEST');
    assert.equal((await call('GET', '/admin/v1/clients?limit=0')).status, 400);
    assert.equal((await call('GET', '/admin/v1/clients?limit=2&limit=3')).status, 400);
    assert.equal((await call('GET', '/admin/v1/clients?page=2')).status, 400);
  });

  it('updates a client (PATCH): fields change, client_id and created_at stay, a switch to a secret method returns a secret', async () => {
    assert.equal((await call('POST', '/admin/v1/clients', { client_id: 'upd', client_name: 'Before', token_endpoint_auth_method: 'none', redirect_uris: ['https://u.example/cb'], grant_types: ['authorization_code'] })).status, 201);
    const created = (await storedClient('upd'))!;
    const r = await call('PATCH', '/admin/v1/clients/upd', { client_name: 'After', redirect_uris: ['https://u.example/cb2'], scopes: ['openid'], first_party: true, audience: 'https://api.example' });
    assert.equal(r.status, 200, r.raw);
    assert.equal(r.body!.client_secret, undefined);
    let rec = (await storedClient('upd'))!;
    assert.equal(rec.client_name, 'After');
    assert.deepEqual(rec.redirect_uris, ['https://u.example/cb2']);
    assert.deepEqual(rec.scopes, ['openid']);
    assert.equal(rec.first_party, true);
    assert.equal(rec.audience, 'https://api.example');
    assert.equal(rec.created_at, created.created_at);
    assert.deepEqual(rec.grant_types, ['authorization_code']);

    const s = await call('PATCH', '/admin/v1/clients/upd', { token_endpoint_auth_method: 'client_secret_post' });
    assert.equal(s.status, 200, s.raw);
    rec = (await storedClient('upd'))!;
    assert.equal(rec.client_secret_hash, tokenHash(s.body!.client_secret as string));
    // Between the two secret methods the secret is kept (no new one is shown).
    const k = await call('PATCH', '/admin/v1/clients/upd', { token_endpoint_auth_method: 'client_secret_basic' });
    assert.equal(k.body!.client_secret, undefined);
    assert.equal((await storedClient('upd'))!.client_secret_hash, rec.client_secret_hash);

    assert.equal((await call('PATCH', '/admin/v1/clients/upd', { client_id: 'other' })).status, 400);
    assert.equal((await call('PATCH', '/admin/v1/clients/upd', { colour: 'red' })).status, 400);
    assert.equal((await call('PATCH', '/admin/v1/clients/upd', {})).status, 400);
    const invalid = await call('PATCH', '/admin/v1/clients/upd', { redirect_uris: [] });
    assert.equal(invalid.status, 400);
    assert.deepEqual((await storedClient('upd'))!.redirect_uris, ['https://u.example/cb2']);
    assert.equal((await call('PATCH', '/admin/v1/clients/nope', { client_name: 'x' })).status, 404);
  });

  it('rotates a client secret: a new one is returned once and the old one stops matching', async () => {
    const c = await call('POST', '/admin/v1/clients', { client_id: 'rot', client_name: 'Rot', grant_types: ['client_credentials'] });
    const old = c.body!.client_secret as string;
    const r = await call('POST', '/admin/v1/clients/rot/secret');
    assert.equal(r.status, 200, r.raw);
    const fresh = r.body!.client_secret as string;
    assert.match(fresh, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(fresh, old);
    const rec = (await storedClient('rot'))!;
    assert.equal(rec.client_secret_hash, tokenHash(fresh));
    assert.notEqual(rec.client_secret_hash, tokenHash(old));
    // A public client has no secret to rotate; a missing client is 404.
    assert.equal((await call('POST', '/admin/v1/clients/spa/secret')).status, 400);
    assert.equal((await call('POST', '/admin/v1/clients/nope/secret')).status, 404);
  });

  it('deletes a client; a second delete and a get are 404', async () => {
    await call('POST', '/admin/v1/clients', { client_id: 'gone', client_name: 'Gone', grant_types: ['client_credentials'] });
    const d = await call('DELETE', '/admin/v1/clients/gone');
    assert.equal(d.status, 200, d.raw);
    assert.equal(await storedClient('gone'), undefined);
    assert.equal((await call('GET', '/admin/v1/clients/gone')).status, 404);
    assert.equal((await call('DELETE', '/admin/v1/clients/gone')).status, 404);
  });

  it('creates users with a scrypt PHC hash that is never returned; short passwords and taken usernames are refused', async () => {
    const r = await call('POST', '/admin/v1/users', { username: 'Alice', password: 'correct horse', name: 'Alice A', email: 'alice@example.com', email_verified: true });
    assert.equal(r.status, 201, r.raw);
    assert.equal(r.body!.username, 'Alice');
    assert.match(r.body!.sub as string, /^[A-Za-z0-9_-]{22}$/);
    const rec = (await stored<UserRecord>('users')).find((u) => u.sub === r.body!.sub)!;
    // Sealed at rest (DESIGN principle 5): no PHC string in the record, one inside the seal.
    assert.ok(rec.password_hash.startsWith(SEALED_PHC_PREFIX), rec.password_hash);
    assert.equal(rec.password_hash.includes('scrypt'), false);
    const phc = await phcOf(rec);
    assert.match(phc, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    assert.equal(await verifyPassword('correct horse', phc), true);
    assert.equal(rec.email_verified, true);
    assert.equal(rec.disabled, false);

    const g = await call('GET', '/admin/v1/users/alice'); // usernames compare case-insensitively
    assert.equal(g.status, 200, g.raw);
    assert.equal((g.body!.user as Record<string, unknown>).username, 'Alice');
    assert.equal(g.raw.includes('scrypt'), false);
    const l = await call('GET', '/admin/v1/users');
    assert.equal(l.raw.includes('scrypt'), false);

    const count = (await stored('users')).length;
    const short = await call('POST', '/admin/v1/users', { username: 'bob', password: 'seven77' });
    assert.equal(short.status, 400);
    assert.match(short.body!.message as string, /at least 8/);
    assert.equal((await call('POST', '/admin/v1/users', { username: 'bob', password: 'x'.repeat(1025) })).status, 400);
    assert.equal((await call('POST', '/admin/v1/users', { username: 'bob', password: 12345678 })).status, 400);
    assert.equal((await call('POST', '/admin/v1/users', { username: 'bob', password: 'long enough', email: 'no-at-sign' })).status, 400);
    assert.equal((await call('POST', '/admin/v1/users', { username: 'bob', password: 'long enough', role: 'admin' })).status, 400);
    const taken = await call('POST', '/admin/v1/users', { username: 'ALICE', password: 'another password' });
    assert.equal(taken.status, 409);
    assert.equal((await stored('users')).length, count);
  });

  it('disables, enables, changes the password of and deletes a user', async () => {
    await call('POST', '/admin/v1/users', { username: 'carol', password: 'first password' });
    const user = async () => (await stored<UserRecord>('users')).find((u) => u.username === 'carol');
    const d = await call('POST', '/admin/v1/users/carol/disable');
    assert.equal(d.status, 200, d.raw);
    assert.equal((d.body!.user as UserRecord).disabled, true);
    assert.equal((await user())!.disabled, true);
    assert.equal((await call('POST', '/admin/v1/users/carol/enable')).status, 200);
    assert.equal((await user())!.disabled, false);

    assert.equal((await call('POST', '/admin/v1/users/carol/password', { password: 'short' })).status, 400);
    assert.equal(await verifyPassword('first password', await phcOf((await user())!)), true);
    const p = await call('POST', '/admin/v1/users/carol/password', { password: 'second password' });
    assert.equal(p.status, 200, p.raw);
    const h = await phcOf((await user())!);
    assert.equal(await verifyPassword('second password', h), true);
    assert.equal(await verifyPassword('first password', h), false);

    assert.equal((await call('DELETE', '/admin/v1/users/carol')).status, 200);
    assert.equal(await user(), undefined);
    assert.equal((await call('GET', '/admin/v1/users/carol')).status, 404);
    assert.equal((await call('POST', '/admin/v1/users/carol/disable')).status, 404);
    assert.equal((await call('DELETE', '/admin/v1/users/carol')).status, 404);
  });

  it('lists users in username order with an after cursor', async () => {
    for (const u of ['dave', 'erin', 'frank']) assert.equal((await call('POST', '/admin/v1/users', { username: u, password: 'password of ' + u })).status, 201);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const r = await call('GET', `/admin/v1/users?limit=2${cursor !== null ? `&after=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, r.raw);
      seen.push(...(r.body!.users as UserRecord[]).map((u) => u.username.toLowerCase()));
      cursor = r.body!.next as string | null;
      if (cursor === null) break;
    }
    assert.deepEqual(seen, [...seen].sort());
    for (const u of ['alice', 'dave', 'erin', 'frank']) assert.ok(seen.includes(u), u);
  });

  it('lists the keys without private material, and rotates them: next becomes active, the version increases', async () => {
    const l = await call('GET', '/admin/v1/keys');
    assert.equal(l.status, 200, l.raw);
    assert.equal(/sealedPrivate|wrapped"|"d"/.test(l.raw), false);
    const sk = l.body!.signingKeys as { version: number; keys: { kid: string; state: string }[] };
    const next = sk.keys.find((k) => k.state === 'next')!.kid;
    const active = sk.keys.find((k) => k.state === 'active')!.kid;
    assert.deepEqual(l.body!.masterKeys, { current: master.currentKid, all: [master.currentKid] });

    const r = await call('POST', '/admin/v1/keys/rotate');
    assert.equal(r.status, 200, r.raw);
    assert.equal(r.body!.active, next);
    assert.equal(r.body!.version, sk.version + 1);
    const ring = await readRing<SigningKeyRing>('keys');
    assert.equal(ring.version, sk.version + 1);
    assert.equal(ring.keys.find((k) => k.state === 'active')!.kid, next);
    assert.equal(ring.keys.find((k) => k.kid === active)!.state, 'retired');
    assert.equal(ring.keys.find((k) => k.state === 'next')!.kid, r.body!.next);
  });

  it('rewraps the data keys under the current master key of a two-key ring; they still unwrap', async () => {
    const before = await readRing<DataKeyRing>('crypto');
    assert.ok(before.keys.every((k) => k.masterKid === master.currentKid));
    const sealed = unwrapRing(before, master).seal(new TextEncoder().encode('kept across the rewrap'), 'test:1');

    const newKeyText = MasterKeyRing.generateText();
    const both = MasterKeyRing.parse(newKeyText + oldKeyText, 'new then old');
    const app2 = buildAdminApp({ node, token: TOKEN, oauth: { master: both, config, rotateSigningKeys: adminKeyRotation(node, both, config, silent) } });
    try {
      const r = await call('POST', '/admin/v1/keys/rewrap', undefined, app2);
      assert.equal(r.status, 200, r.raw);
      assert.equal(r.body!.rewrapped, before.keys.length);
      assert.equal(r.body!.masterKid, both.currentKid);
      const afterRing = await readRing<DataKeyRing>('crypto');
      assert.equal(afterRing.version, before.version + 1);
      assert.deepEqual(afterRing.keys.map((k) => k.id), before.keys.map((k) => k.id));
      assert.ok(afterRing.keys.every((k) => k.masterKid === both.currentKid));
      // The new key alone opens them (the old one can be removed from the key files now)…
      const newOnly = MasterKeyRing.parse(newKeyText, 'new only');
      assert.equal(new TextDecoder().decode(unwrapRing(afterRing, newOnly).open(sealed, 'test:1')), 'kept across the rewrap');
      // …and the old key alone no longer does.
      assert.throws(() => unwrapRing(afterRing, master), SealError);
      // Nothing left to rewrap: no new version.
      const again = await call('POST', '/admin/v1/keys/rewrap', undefined, app2);
      assert.equal(again.body!.rewrapped, 0);
      assert.equal((await readRing<DataKeyRing>('crypto')).version, afterRing.version);
      // Signing keys still unseal with the rewrapped data keys (rotation works with the new master).
      assert.equal((await call('POST', '/admin/v1/keys/rotate', undefined, app2)).status, 200);
    } finally {
      await app2.close();
    }
  });

  it('answers keys rotate and rewrap on a follower with 409 NOT_LEADER and changes nothing', async () => {
    const follower = Fastify({ logger: false });
    const asFollower = Object.assign(Object.create(node) as RaftNode, { isLeader: () => false });
    registerOAuthAdminRoutes(follower, {
      node: asFollower,
      master,
      config,
      log: silent,
      rotateSigningKeys: adminKeyRotation(asFollower, master, config, silent),
      notLeader: async (reply) => reply.code(409).send({ error: 'NOT_LEADER', leader: 2, leaderHttp: '127.0.0.1:1' }),
    });
    try {
      const v = (await readRing<SigningKeyRing>('keys')).version;
      for (const url of ['/admin/v1/keys/rotate', '/admin/v1/keys/rewrap']) {
        const r = await follower.inject({ method: 'POST', url });
        assert.equal(r.statusCode, 409, url);
        assert.equal(JSON.parse(r.body).error, 'NOT_LEADER');
      }
      assert.equal((await readRing<SigningKeyRing>('keys')).version, v);
    } finally {
      await follower.close();
    }
  });
});
