// RFC 6749 §6 refresh with rotation, reuse detection and the grace window (RFC 9700 §4.14.2).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { app, assertError, claimsOf, codeClient, codeWithPkce, json, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

type Tokens = { access_token: string; refresh_token: string; id_token?: string; scope: string };

describe('refresh_token grant', () => {
  let t: TestOAuth;
  let web: Confidential;
  let other: Confidential;

  before(async () => {
    t = await app();
    web = await codeClient(t, 'webapp');
    other = await codeClient(t, 'other-app');
  });
  after(() => t.close());

  async function grant(scope: string[] = ['openid', 'offline_access', 'profile', 'email']): Promise<Tokens> {
    const r = await post(t, '/token', (await codeWithPkce(t, web, { scope })).params, web.auth);
    assert.equal(r.statusCode, 200, r.body);
    return json(r) as unknown as Tokens;
  }
  const refresh = (rt: string, extra: Record<string, string> = {}, auth = web.auth) => post(t, '/token', { grant_type: 'refresh_token', refresh_token: rt, ...extra }, auth);
  const active = async (token: string): Promise<boolean> => json(await post(t, '/introspect', { token }, web.auth)).active === true;

  test('rotation chain: each refresh returns a new pair, the old refresh token becomes inactive', async () => {
    let cur = await grant();
    for (let i = 0; i < 3; i++) {
      // Beyond the grace window, so the old token is plainly rotated.
      t.clock.now += t.config.refreshGraceMs + 1;
      const r = await refresh(cur.refresh_token);
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.headers['cache-control'], 'no-store');
      const next = json(r) as unknown as Tokens;
      assert.notEqual(next.refresh_token, cur.refresh_token);
      assert.notEqual(next.access_token, cur.access_token);
      assert.equal(next.scope, 'openid offline_access profile email');
      // OIDC Core §12.2: an ID token, auth_time of the original authentication, no nonce.
      assert.ok(next.id_token);
      const id = claimsOf(next.id_token);
      assert.equal(id.auth_time, claimsOf(cur.access_token).auth_time);
      assert.equal(id.nonce, undefined);
      assert.equal(await active(cur.refresh_token), false);
      assert.equal(await active(next.refresh_token), true);
      cur = next;
    }
  });

  test('scope can narrow but not widen (RFC 6749 §6)', async () => {
    const g = await grant(['openid', 'offline_access', 'profile']);
    assertError(await refresh(g.refresh_token, { scope: 'profile email' }), 400, 'invalid_scope');
    const narrowed = await refresh(g.refresh_token, { scope: 'offline_access profile' });
    assert.equal(narrowed.statusCode, 200, narrowed.body);
    const n = json(narrowed) as unknown as Tokens;
    assert.equal(n.scope, 'offline_access profile');
    assert.equal(claimsOf(n.access_token).scope, 'offline_access profile');
    // openid dropped: no ID token.
    assert.equal(n.id_token, undefined);
    t.clock.now += t.config.refreshGraceMs + 1;
    // The successor carries the narrowed scope: asking back for openid is an escalation now.
    assertError(await refresh(n.refresh_token, { scope: 'openid' }), 400, 'invalid_scope');
    const again = await refresh(n.refresh_token);
    assert.equal(json(again).scope, 'offline_access profile');
  });

  test('reuse of a rotated token outside the grace window revokes the whole family', async () => {
    const g = await grant();
    const r1 = json(await refresh(g.refresh_token)) as unknown as Tokens;
    t.clock.now += t.config.refreshGraceMs + 1;
    const reuse = await refresh(g.refresh_token);
    assertError(reuse, 400, 'invalid_grant');
    assert.match(String(json(reuse).error_description), /already used/);
    // The legitimate successor and the access token issued with it are dead too.
    assert.equal(await active(r1.refresh_token), false);
    assert.equal(await active(r1.access_token), false);
    assertError(await refresh(r1.refresh_token), 400, 'invalid_grant');
  });

  test('the same token within the grace window returns the identical body', async () => {
    const g = await grant();
    const first = await refresh(g.refresh_token);
    assert.equal(first.statusCode, 200);
    t.clock.now += t.config.refreshGraceMs - 1;
    const second = await refresh(g.refresh_token);
    assert.equal(second.statusCode, 200, second.body);
    assert.equal(second.body, first.body);
    const pair = json(second) as unknown as Tokens;
    assert.equal(await active(pair.refresh_token), true);
    assert.equal(await active(pair.access_token), true);
    // Once the successor is used, the grace window no longer applies to the first token.
    t.clock.now += t.config.refreshGraceMs + 1;
    assert.equal((await refresh(pair.refresh_token)).statusCode, 200);
    assertError(await refresh(g.refresh_token), 400, 'invalid_grant');
  });

  test("another client's refresh token is invalid_grant and is left alone", async () => {
    const g = await grant();
    assertError(await refresh(g.refresh_token, {}, other.auth), 400, 'invalid_grant');
    assert.equal(await active(g.refresh_token), true);
  });

  test('an unknown, missing or expired refresh token is refused', async () => {
    assertError(await refresh('x'.repeat(43)), 400, 'invalid_grant');
    assertError(await post(t, '/token', { grant_type: 'refresh_token' }, web.auth), 400, 'invalid_request');
    const g = await grant();
    const skip = t.config.refreshTokenIdleTtlS * 1000;
    t.clock.now += skip;
    try {
      assertError(await refresh(g.refresh_token), 400, 'invalid_grant');
    } finally {
      t.clock.now -= skip;
    }
  });

  test('a revoked refresh token is invalid_grant', async () => {
    const g = await grant();
    const r = await post(t, '/revoke', { token: g.refresh_token }, web.auth);
    assert.equal(r.statusCode, 200);
    assertError(await refresh(g.refresh_token), 400, 'invalid_grant');
  });
});
