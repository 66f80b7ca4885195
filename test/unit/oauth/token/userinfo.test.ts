// GET/POST /userinfo (OIDC Core §5.3) as an RFC 6750 protected resource.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import type { UserRecord } from '../../../../src/state/oauth-ops.ts';
import { FORM, app, assertError, authOf, codeClient, codeWithPkce, confidential, json, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

describe('/userinfo', () => {
  let t: TestOAuth;
  let web: Confidential;
  let alice: UserRecord;

  before(async () => {
    t = await app();
    web = await codeClient(t, 'webapp');
    alice = await t.addUser('alice', 'correct horse battery staple', { name: 'Alice Liddell', email: 'alice@example.org', email_verified: true });
  });
  after(() => t.close());

  async function accessToken(scope: string[], sub = alice.sub): Promise<string> {
    const r = await post(t, '/token', (await codeWithPkce(t, web, { scope, auth: authOf(sub, t.clock.now) })).params, web.auth);
    assert.equal(r.statusCode, 200, r.body);
    return String(json(r).access_token);
  }
  const get = (headers: Record<string, string>, url = '/userinfo') => t.app.inject({ method: 'GET', url, headers });

  test('claims by scope: openid → sub; profile → name; email → email, email_verified', async () => {
    const all = await get({ authorization: `Bearer ${await accessToken(['openid', 'profile', 'email'])}` });
    assert.equal(all.statusCode, 200, all.body);
    assert.equal(all.headers['cache-control'], 'no-store');
    assert.deepEqual(json(all), { sub: alice.sub, name: 'Alice Liddell', email: 'alice@example.org', email_verified: true });
    const bare = await get({ authorization: `Bearer ${await accessToken(['openid'])}` });
    assert.deepEqual(json(bare), { sub: alice.sub });
    const prof = await get({ authorization: `bearer ${await accessToken(['openid', 'profile'])}` });
    assert.deepEqual(json(prof), { sub: alice.sub, name: 'Alice Liddell' });
  });

  test('POST with the token in the form body (RFC 6750 §2.2)', async () => {
    const token = await accessToken(['openid', 'email']);
    const r = await post(t, '/userinfo', { access_token: token });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(json(r), { sub: alice.sub, email: 'alice@example.org', email_verified: true });
    const h = await t.app.inject({ method: 'POST', url: '/userinfo', headers: { authorization: `Bearer ${token}` } });
    assert.equal(h.statusCode, 200, h.body);
  });

  test('without the openid scope: 403 insufficient_scope', async () => {
    const r = await get({ authorization: `Bearer ${await accessToken(['profile'])}` });
    assertError(r, 403, 'insufficient_scope');
    assert.match(String(r.headers['www-authenticate']), /^Bearer realm="raftauth", error="insufficient_scope", scope="openid"/);
  });

  test('a bad, revoked or expired token: 401 invalid_token with WWW-Authenticate', async () => {
    const bad = await get({ authorization: 'Bearer not-a-token' });
    assertError(bad, 401, 'invalid_token');
    assert.match(String(bad.headers['www-authenticate']), /^Bearer realm="raftauth", error="invalid_token"/);
    const token = await accessToken(['openid']);
    assert.equal((await post(t, '/revoke', { token }, web.auth)).statusCode, 200);
    assertError(await get({ authorization: `Bearer ${token}` }), 401, 'invalid_token');
    const later = await accessToken(['openid']);
    t.clock.now += t.config.accessTokenTtlS * 1000;
    try {
      assertError(await get({ authorization: `Bearer ${later}` }), 401, 'invalid_token');
    } finally {
      t.clock.now -= t.config.accessTokenTtlS * 1000;
    }
  });

  test('a client_credentials token has no user: refused', async () => {
    const svc = await confidential(t, { client_id: 'svc', scopes: ['read'] });
    const r = await post(t, '/token', { grant_type: 'client_credentials' }, svc.auth);
    assertError(await get({ authorization: `Bearer ${String(json(r).access_token)}` }), 403, 'insufficient_scope');
  });

  test('a disabled or unknown user: invalid_token', async () => {
    const ghost = await accessToken(['openid'], 'no-such-user');
    assertError(await get({ authorization: `Bearer ${ghost}` }), 401, 'invalid_token');
  });

  test('no token: 401 with the bare challenge and no error code (RFC 6750 §3.1)', async () => {
    const r = await get({});
    assert.equal(r.statusCode, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="raftauth"');
    assert.equal(r.body, '');
  });

  test('a token in the query, or sent two ways, is invalid_request', async () => {
    const token = await accessToken(['openid']);
    const q = await get({}, `/userinfo?access_token=${token}`);
    assertError(q, 400, 'invalid_request');
    assert.match(String(q.headers['www-authenticate']), /error="invalid_request"/);
    const two = await t.app.inject({ method: 'POST', url: '/userinfo', payload: `access_token=${token}`, headers: { 'content-type': FORM, authorization: `Bearer ${token}` } });
    assertError(two, 400, 'invalid_request');
    assertError(await get({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }), 400, 'invalid_request');
  });
});
