// POST /revoke (RFC 7009).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { REDIRECT, app, assertError, codeClient, codeWithPkce, json, makeCode, pkce, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

describe('POST /revoke', () => {
  let t: TestOAuth;
  let web: Confidential;
  let other: Confidential;

  before(async () => {
    t = await app();
    web = await codeClient(t, 'webapp');
    other = await codeClient(t, 'other-app');
  });
  after(() => t.close());

  async function userTokens(): Promise<{ access_token: string; refresh_token: string }> {
    const r = await post(t, '/token', (await codeWithPkce(t, web, { scope: ['offline_access', 'profile'] })).params, web.auth);
    assert.equal(r.statusCode, 200, r.body);
    return json(r) as { access_token: string; refresh_token: string };
  }
  const active = async (token: string, c: Confidential = web): Promise<boolean> => json(await post(t, '/introspect', { token }, c.auth)).active === true;

  test('revoking a refresh token revokes its family: successors and the access tokens issued with them', async () => {
    const g = await userTokens();
    const r1 = json(await post(t, '/token', { grant_type: 'refresh_token', refresh_token: g.refresh_token }, web.auth)) as { access_token: string; refresh_token: string };
    const r = await post(t, '/revoke', { token: r1.refresh_token, token_type_hint: 'refresh_token' }, web.auth);
    assert.equal(r.statusCode, 200);
    assert.equal(r.body, '');
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(await active(r1.refresh_token), false);
    assert.equal(await active(r1.access_token), false);
    assert.equal(await active(g.access_token), false);
  });

  test('revoking an access token leaves its refresh token alone', async () => {
    const g = await userTokens();
    assert.equal((await post(t, '/revoke', { token: g.access_token, token_type_hint: 'access_token' }, web.auth)).statusCode, 200);
    assert.equal(await active(g.access_token), false);
    assert.equal(await active(g.refresh_token), true);
  });

  test("another client's tokens answer 200 and stay active (§2.1)", async () => {
    const g = await userTokens();
    assert.equal((await post(t, '/revoke', { token: g.access_token }, other.auth)).statusCode, 200);
    assert.equal((await post(t, '/revoke', { token: g.refresh_token }, other.auth)).statusCode, 200);
    assert.equal(await active(g.access_token), true);
    assert.equal(await active(g.refresh_token), true);
  });

  test('unknown or invalid tokens answer 200 (§2.2); unknown hints are ignored', async () => {
    assert.equal((await post(t, '/revoke', { token: 'nothing-of-ours' }, web.auth)).statusCode, 200);
    assert.equal((await post(t, '/revoke', { token: 'a.b.c' }, web.auth)).statusCode, 200);
    assert.equal((await post(t, '/revoke', { token: 'x', token_type_hint: 'banana' }, web.auth)).statusCode, 200);
  });

  test('a public client may revoke its own refresh token with client_id', async () => {
    await t.addClient({ client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
    const { verifier, challenge } = pkce();
    const code = await makeCode(t, { clientId: 'spa', codeChallenge: challenge, codeChallengeMethod: 'S256', scope: ['profile'] });
    const tok = json(await post(t, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: 'spa' })) as { refresh_token: string };
    assert.equal((await post(t, '/revoke', { token: tok.refresh_token, client_id: 'spa' })).statusCode, 200);
    assertError(await post(t, '/token', { grant_type: 'refresh_token', refresh_token: tok.refresh_token, client_id: 'spa' }), 400, 'invalid_grant');
  });

  test('client authentication is required; token is required', async () => {
    const g = await userTokens();
    assertError(await post(t, '/revoke', { token: g.refresh_token }), 401, 'invalid_client');
    assertError(await post(t, '/revoke', { token: g.refresh_token }, { authorization: 'Basic ' + Buffer.from('webapp:wrong').toString('base64') }), 401, 'invalid_client');
    assert.equal(await active(g.refresh_token), true);
    assertError(await post(t, '/revoke', {}, web.auth), 400, 'invalid_request');
  });
});
