// RFC 6749 §4.1.3 authorization code grant with PKCE (RFC 7636), and the ID token (OIDC Core
// §3.1.3.6-7). Codes are made the way /authorize makes them (helpers.makeCode).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { jwtVerify } from 'jose';
import { oauthTestApp } from '../../../support/oauth-app.ts';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { REDIRECT, TEST_ISSUER, app, assertError, basic, codeClient, codeWithPkce, confidential, headerOf, json, jwksOf, makeCode, pkce, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

describe('authorization_code grant', () => {
  let t: TestOAuth;
  let web: Confidential;
  let other: Confidential;

  before(async () => {
    t = await app();
    web = await codeClient(t, 'webapp');
    other = await codeClient(t, 'other-app');
  });
  after(() => t.close());

  test('redeems a code: access token, refresh token, and an ID token with nonce and at_hash', async () => {
    const { params } = await codeWithPkce(t, web, { nonce: 'n-0S6_WzA2Mj', scope: ['openid', 'offline_access', 'profile'] });
    const r = await post(t, '/token', params, web.auth);
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['cache-control'], 'no-store');
    const body = json(r);
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'id_token', 'refresh_token', 'scope', 'token_type']);
    assert.equal(body.scope, 'openid offline_access profile');
    assert.match(String(body.refresh_token), /^[A-Za-z0-9_-]{43}$/);
    const keys = await jwksOf(t);
    const at = await jwtVerify(String(body.access_token), keys, { issuer: TEST_ISSUER, audience: TEST_ISSUER, typ: 'at+jwt', currentDate: new Date(t.clock.now) });
    assert.equal(at.payload.sub, 'user-1');
    assert.equal(at.payload.client_id, 'webapp');
    assert.equal(at.payload.scope, 'openid offline_access profile');
    assert.equal(at.payload.auth_time, Math.floor(t.clock.now / 1000) - 30);
    assert.equal(at.payload.acr, 'urn:raftauth:acr:pwd');
    assert.deepEqual(at.payload.amr, ['pwd']);

    const idToken = String(body.id_token);
    assert.equal(headerOf(idToken).typ, 'JWT');
    const id = await jwtVerify(idToken, keys, { issuer: TEST_ISSUER, audience: 'webapp', currentDate: new Date(t.clock.now) });
    const c = id.payload;
    assert.equal(c.sub, 'user-1');
    assert.equal(c.nonce, 'n-0S6_WzA2Mj');
    assert.equal(c.azp, 'webapp');
    assert.equal(c.auth_time, Math.floor(t.clock.now / 1000) - 30);
    assert.equal(c.acr, 'urn:raftauth:acr:pwd');
    assert.deepEqual(c.amr, ['pwd']);
    assert.equal(c.iat, Math.floor(t.clock.now / 1000));
    assert.equal(c.exp, c.iat! + t.config.idTokenTtlS);
    // OIDC Core §3.1.3.6: at_hash = base64url(left half of SHA-256(access_token)) for ES256.
    const digest = createHash('sha256').update(String(body.access_token), 'ascii').digest();
    assert.equal(c.at_hash, digest.subarray(0, 16).toString('base64url'));
    // Profile claims come from /userinfo only.
    assert.equal(c.name, undefined);
    assert.equal(c.email, undefined);
  });

  test('no nonce in the request, no nonce in the ID token', async () => {
    const { params } = await codeWithPkce(t, web, { scope: ['openid'] });
    const r = await post(t, '/token', params, web.auth);
    assert.equal(r.statusCode, 200, r.body);
    const id = JSON.parse(Buffer.from(String(json(r).id_token).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal('nonce' in id, false);
  });

  test('openid without offline_access gets no refresh token (OIDC Core §11); without openid, no ID token', async () => {
    const a = await post(t, '/token', (await codeWithPkce(t, web, { scope: ['openid', 'profile'] })).params, web.auth);
    assert.equal(a.statusCode, 200, a.body);
    assert.equal(json(a).refresh_token, undefined);
    assert.equal(typeof json(a).id_token, 'string');
    const b = await post(t, '/token', (await codeWithPkce(t, web, { scope: ['profile'] })).params, web.auth);
    assert.equal(b.statusCode, 200, b.body);
    assert.equal(typeof json(b).refresh_token, 'string');
    assert.equal(json(b).id_token, undefined);
  });

  test('a client without the refresh_token grant gets no refresh token', async () => {
    const noRefresh = await confidential(t, { client_id: 'no-refresh', redirect_uris: [REDIRECT], grant_types: ['authorization_code'] });
    const r = await post(t, '/token', (await codeWithPkce(t, noRefresh, { scope: ['openid', 'offline_access'] })).params, noRefresh.auth);
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(json(r).refresh_token, undefined);
  });

  test('a wrong redirect_uri is invalid_grant; a missing one is invalid_request', async () => {
    const { params } = await codeWithPkce(t, web);
    assertError(await post(t, '/token', { ...params, redirect_uri: REDIRECT + '/x' }, web.auth), 400, 'invalid_grant');
    const { redirect_uri: _omit, ...noRedirect } = params;
    assertError(await post(t, '/token', noRedirect, web.auth), 400, 'invalid_request');
    // Neither attempt consumed the code.
    assert.equal((await post(t, '/token', params, web.auth)).statusCode, 200);
  });

  test('a code whose authorization request omitted redirect_uri needs none at /token (RFC 6749 §4.1.3); a different one is still refused', async () => {
    const a = await codeWithPkce(t, web, { redirectUriInRequest: false });
    const { redirect_uri: _omit, ...noRedirect } = a.params;
    assert.equal((await post(t, '/token', noRedirect, web.auth)).statusCode, 200);
    const b = await codeWithPkce(t, web, { redirectUriInRequest: false });
    assertError(await post(t, '/token', { ...b.params, redirect_uri: REDIRECT + '/x' }, web.auth), 400, 'invalid_grant');
    assert.equal((await post(t, '/token', b.params, web.auth)).statusCode, 200, 'the same redirect_uri is accepted');
  });

  test('a PKCE mismatch is invalid_grant', async () => {
    const { params } = await codeWithPkce(t, web);
    assertError(await post(t, '/token', { ...params, code_verifier: pkce().verifier }, web.auth), 400, 'invalid_grant');
    // A malformed verifier (RFC 7636 §4.1: 43-128 unreserved characters) too.
    assertError(await post(t, '/token', { ...params, code_verifier: 'short' }, web.auth), 400, 'invalid_grant');
  });

  test('a missing code_verifier for a code with a challenge is invalid_grant', async () => {
    const { params } = await codeWithPkce(t, web);
    const { code_verifier: _omit, ...rest } = params;
    const r = await post(t, '/token', rest, web.auth);
    assertError(r, 400, 'invalid_grant');
    assert.match(String(json(r).error_description), /code_verifier is required/);
  });

  test('a code_verifier for a code without a challenge is invalid_grant (PKCE downgrade)', async () => {
    const code = await makeCode(t, { clientId: 'webapp' });
    assertError(await post(t, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkce().verifier }, web.auth), 400, 'invalid_grant');
    // Without the verifier it is redeemable (a confidential client; the browser side decides whether PKCE was required).
    assert.equal((await post(t, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, web.auth)).statusCode, 200);
  });

  test("another client's code is invalid_grant, and stays usable by its owner", async () => {
    const { params } = await codeWithPkce(t, web);
    assertError(await post(t, '/token', params, other.auth), 400, 'invalid_grant');
    assert.equal((await post(t, '/token', params, web.auth)).statusCode, 200);
  });

  test('an unknown code is invalid_grant; a missing code is invalid_request', async () => {
    assertError(await post(t, '/token', { grant_type: 'authorization_code', code: 'nope', redirect_uri: REDIRECT }, web.auth), 400, 'invalid_grant');
    assertError(await post(t, '/token', { grant_type: 'authorization_code', redirect_uri: REDIRECT }, web.auth), 400, 'invalid_request');
  });

  test('an expired code is invalid_grant', async () => {
    const { params } = await codeWithPkce(t, web);
    t.clock.now += t.config.codeTtlS * 1000;
    try {
      const r = await post(t, '/token', params, web.auth);
      assertError(r, 400, 'invalid_grant');
      assert.match(String(json(r).error_description), /expired/);
    } finally {
      t.clock.now -= t.config.codeTtlS * 1000;
    }
  });

  test('a reused code fails and revokes what the first redemption issued (RFC 6749 §4.1.2)', async () => {
    const { params } = await codeWithPkce(t, web, { scope: ['openid', 'offline_access'] });
    const first = await post(t, '/token', params, web.auth);
    assert.equal(first.statusCode, 200, first.body);
    const { access_token: at, refresh_token: rt } = json(first) as { access_token: string; refresh_token: string };
    assert.equal(json(await post(t, '/introspect', { token: rt }, web.auth)).active, true);
    assert.equal(json(await post(t, '/introspect', { token: at }, web.auth)).active, true);

    const second = await post(t, '/token', params, web.auth);
    assertError(second, 400, 'invalid_grant');
    assert.match(String(json(second).error_description), /already used/);
    assert.deepEqual(json(await post(t, '/introspect', { token: rt }, web.auth)), { active: false });
    assert.deepEqual(json(await post(t, '/introspect', { token: at }, web.auth)), { active: false });
    // The revoked refresh token cannot be used either.
    assertError(await post(t, '/token', { grant_type: 'refresh_token', refresh_token: rt }, web.auth), 400, 'invalid_grant');
  });

  test('a public client redeems with client_id and PKCE', async () => {
    await t.addClient({ client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
    const { verifier, challenge } = pkce();
    const code = await makeCode(t, { clientId: 'spa', codeChallenge: challenge, codeChallengeMethod: 'S256', scope: ['profile'] });
    const r = await post(t, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: 'spa' });
    assert.equal(r.statusCode, 200, r.body);
    // A public client's code presented with some secret is refused as a method mismatch.
    assert.equal((await post(t, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, { authorization: basic('spa', 'x') })).statusCode, 401);
  });
});

describe('authorization_code grant with EdDSA keys', () => {
  let t: TestOAuth;
  before(async () => {
    t = await oauthTestApp({ config: { signingAlg: 'EdDSA' } });
  });
  after(() => t.close());

  test('tokens are EdDSA-signed and at_hash uses the left half of SHA-512 (the hash Ed25519 uses)', async () => {
    const web = await codeClient(t, 'webapp');
    const r = await post(t, '/token', (await codeWithPkce(t, web, { scope: ['openid'] })).params, web.auth);
    assert.equal(r.statusCode, 200, r.body);
    const { access_token: at, id_token: id } = json(r) as { access_token: string; id_token: string };
    const keys = await jwksOf(t);
    const v = await jwtVerify(id, keys, { issuer: TEST_ISSUER, audience: 'webapp', algorithms: ['EdDSA'], currentDate: new Date(t.clock.now) });
    assert.equal(v.protectedHeader.alg, 'EdDSA');
    const digest = createHash('sha512').update(at, 'ascii').digest();
    assert.equal(v.payload.at_hash, digest.subarray(0, 32).toString('base64url'));
    const a = await jwtVerify(at, keys, { issuer: TEST_ISSUER, typ: 'at+jwt', algorithms: ['EdDSA'], currentDate: new Date(t.clock.now) });
    assert.equal(a.payload.sub, 'user-1');
    // The server verifies its own EdDSA tokens too.
    assert.equal(json(await post(t, '/introspect', { token: at }, web.auth)).active, true);
  });
});
