// POST /introspect (RFC 7662).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { TEST_ISSUER, app, assertError, codeClient, codeWithPkce, confidential, json, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

describe('POST /introspect', () => {
  let t: TestOAuth;
  let web: Confidential;
  let other: Confidential;
  let svc: Confidential;

  before(async () => {
    t = await app();
    web = await codeClient(t, 'webapp');
    other = await codeClient(t, 'other-app');
    svc = await confidential(t, { client_id: 'svc', scopes: ['read'] });
    await t.addClient({ client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example/cb'], grant_types: ['authorization_code'] });
  });
  after(() => t.close());

  async function userTokens(): Promise<{ access_token: string; refresh_token: string }> {
    const r = await post(t, '/token', (await codeWithPkce(t, web, { scope: ['offline_access', 'profile'] })).params, web.auth);
    assert.equal(r.statusCode, 200, r.body);
    return json(r) as { access_token: string; refresh_token: string };
  }

  test('an active access token: the RFC 7662 §2.2 members', async () => {
    const { access_token } = await userTokens();
    const r = await post(t, '/introspect', { token: access_token, token_type_hint: 'access_token' }, web.auth);
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['cache-control'], 'no-store');
    const b = json(r);
    assert.equal(b.active, true);
    assert.equal(b.scope, 'offline_access profile');
    assert.equal(b.client_id, 'webapp');
    assert.equal(b.sub, 'user-1');
    assert.equal(b.aud, TEST_ISSUER);
    assert.equal(b.iss, TEST_ISSUER);
    assert.equal(b.token_type, 'Bearer');
    assert.equal(b.iat, Math.floor(t.clock.now / 1000));
    assert.equal(b.exp, Math.floor(t.clock.now / 1000) + t.config.accessTokenTtlS);
    assert.equal(typeof b.jti, 'string');
  });

  test('an active refresh token; the hint is only a hint', async () => {
    const { refresh_token } = await userTokens();
    const r = await post(t, '/introspect', { token: refresh_token, token_type_hint: 'access_token' }, web.auth);
    const b = json(r);
    assert.equal(b.active, true);
    assert.equal(b.token_type, 'refresh_token');
    assert.equal(b.client_id, 'webapp');
    assert.equal(b.sub, 'user-1');
    assert.equal(b.scope, 'offline_access profile');
    assert.equal(typeof b.exp, 'number');
    // An unknown hint value is ignored too.
    assert.equal(json(await post(t, '/introspect', { token: refresh_token, token_type_hint: 'banana' }, web.auth)).active, true);
  });

  test("another client's tokens are { active: false } and nothing else", async () => {
    const { access_token, refresh_token } = await userTokens();
    assert.deepEqual(json(await post(t, '/introspect', { token: access_token }, other.auth)), { active: false });
    assert.deepEqual(json(await post(t, '/introspect', { token: refresh_token }, other.auth)), { active: false });
  });

  test('garbage, a tampered JWT, or an ID token are { active: false }', async () => {
    assert.deepEqual(json(await post(t, '/introspect', { token: 'garbage' }, web.auth)), { active: false });
    assert.deepEqual(json(await post(t, '/introspect', { token: 'a.b.c' }, web.auth)), { active: false });
    const { access_token } = await userTokens();
    const [h, p, s] = access_token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url')}.${s}`;
    assert.deepEqual(json(await post(t, '/introspect', { token: forged }, web.auth)), { active: false });
    const r = await post(t, '/token', (await codeWithPkce(t, web, { scope: ['openid'] })).params, web.auth);
    assert.deepEqual(json(await post(t, '/introspect', { token: String(json(r).id_token) }, web.auth)), { active: false });
  });

  test('revoked tokens are { active: false }', async () => {
    const { access_token, refresh_token } = await userTokens();
    assert.equal((await post(t, '/revoke', { token: access_token }, web.auth)).statusCode, 200);
    assert.deepEqual(json(await post(t, '/introspect', { token: access_token }, web.auth)), { active: false });
    assert.equal(json(await post(t, '/introspect', { token: refresh_token }, web.auth)).active, true);
    assert.equal((await post(t, '/revoke', { token: refresh_token }, web.auth)).statusCode, 200);
    assert.deepEqual(json(await post(t, '/introspect', { token: refresh_token }, web.auth)), { active: false });
  });

  test('a client_credentials token can be introspected by its client', async () => {
    const r = await post(t, '/token', { grant_type: 'client_credentials' }, svc.auth);
    const b = json(await post(t, '/introspect', { token: String(json(r).access_token) }, svc.auth));
    assert.equal(b.active, true);
    assert.equal(b.sub, 'svc');
  });

  test('client authentication is required; public clients are refused; token is required', async () => {
    const { access_token } = await userTokens();
    const anon = await post(t, '/introspect', { token: access_token });
    assertError(anon, 401, 'invalid_client');
    assert.ok(anon.headers['www-authenticate']);
    assertError(await post(t, '/introspect', { token: access_token, client_id: 'spa' }), 401, 'invalid_client');
    assertError(await post(t, '/introspect', {}, web.auth), 400, 'invalid_request');
    assertError(await post(t, '/introspect', 'token=a&token=b', web.auth), 400, 'invalid_request');
  });
});
