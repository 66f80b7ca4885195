// What a user sees of the admin changes that sign them out everywhere: after a factor reset, a
// disable or a password change (the commands the admin API proposes, src/ops/admin-oauth.ts) the
// browser's session no longer counts, even once the user is enabled again; a disabled user's
// refresh token is refused and stays refused after re-enabling (RFC 6749 §10.4, RFC 9700 §4.14).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UserRecord } from '../../../../src/state/oauth-ops.ts';
import { CookieJar, SPA_REDIRECT, authorizeAndLogin, authorizeUrl, browserTest, form, pkce, redirectParams, sessionCount, spaParams } from './helpers.ts';
import type { BrowserTest } from './helpers.ts';

const ADMIN = { ip: '192.0.2.50' };

async function alice(bt: BrowserTest): Promise<UserRecord> {
  const r = await bt.t.node.read({ domain: 'users', op: 'get', args: { sub: bt.aliceSub }, timeoutMs: 1000 });
  assert.ok(r.ok && r.value);
  return r.value as UserRecord;
}

async function admin(bt: BrowserTest, domain: string, op: string, args: Record<string, unknown>): Promise<void> {
  const r = await bt.t.node.write({ domain, op, args: { ...args, meta: ADMIN }, timeoutMs: 1000 });
  assert.ok(r.ok, JSON.stringify(r));
}

/** Signed in at /authorize; returns the code the SPA got and its verifier. */
async function signIn(bt: BrowserTest, jar: CookieJar, scope = 'openid'): Promise<{ code: string; verifier: string }> {
  const p = pkce();
  const res = await authorizeAndLogin(bt, jar, spaParams(p, { scope }));
  return { code: redirectParams(res, SPA_REDIRECT).get('code')!, verifier: p.verifier };
}

/** Does the browser still have a session? A signed-in user gets the code at once; a signed-out one the login page. */
async function signedIn(bt: BrowserTest, jar: CookieJar): Promise<boolean> {
  const res = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar.header() });
  if (res.statusCode === 200 && /<h1>Sign in<\/h1>/.test(res.body)) return false;
  assert.equal(res.statusCode, 302, res.body);
  return true;
}

const token = (bt: BrowserTest, fields: Record<string, string>) => {
  const f = form({ client_id: 'spa', ...fields });
  return bt.t.app.inject({ method: 'POST', url: '/token', headers: f.headers, payload: f.payload });
};

test('a factor reset signs the user out of every browser at once', async () => {
  const bt = await browserTest();
  try {
    const one = new CookieJar();
    const two = new CookieJar();
    await signIn(bt, one);
    await signIn(bt, two);
    assert.equal(sessionCount(bt), 2);
    assert.ok(await signedIn(bt, one));
    await admin(bt, 'mfa', 'reset', { sub: bt.aliceSub });
    assert.equal(sessionCount(bt), 0);
    assert.equal(await signedIn(bt, one), false);
    assert.equal(await signedIn(bt, two), false);
  } finally {
    await bt.t.close();
  }
});

test('a disable ends the sessions for good (enabling does not bring them back); so does a password change', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    await signIn(bt, jar);
    const u = await alice(bt);
    await admin(bt, 'users', 'update', { user: { ...u, disabled: true } });
    await admin(bt, 'users', 'update', { user: { ...u, disabled: false } });
    assert.equal(sessionCount(bt), 0);
    assert.equal(await signedIn(bt, jar), false);

    await signIn(bt, jar);
    assert.ok(await signedIn(bt, jar));
    await admin(bt, 'users', 'update', { user: { ...u, password_hash: u.password_hash + 'x' } });
    assert.equal(await signedIn(bt, jar), false);
  } finally {
    await bt.t.close();
  }
});

test('a disabled user’s refresh token is refused, and still after the user is enabled again; a new sign-in gets a working one', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const { code, verifier } = await signIn(bt, jar, 'openid offline_access');
    const first = await token(bt, { grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, code_verifier: verifier });
    assert.equal(first.statusCode, 200, first.body);
    const rt = (first.json() as { refresh_token: string }).refresh_token;
    const r1 = await token(bt, { grant_type: 'refresh_token', refresh_token: rt });
    assert.equal(r1.statusCode, 200, r1.body);
    const rt2 = (r1.json() as { refresh_token: string }).refresh_token;

    const u = await alice(bt);
    await admin(bt, 'users', 'update', { user: { ...u, disabled: true } });
    const refused = await token(bt, { grant_type: 'refresh_token', refresh_token: rt2 });
    assert.equal(refused.statusCode, 400);
    assert.deepEqual(refused.json(), { error: 'invalid_grant', error_description: 'the refresh token has been revoked' });

    await admin(bt, 'users', 'update', { user: { ...u, disabled: false } });
    const still = await token(bt, { grant_type: 'refresh_token', refresh_token: rt2 });
    assert.equal(still.statusCode, 400);
    assert.equal((still.json() as { error: string }).error, 'invalid_grant');

    const again = await signIn(bt, new CookieJar(), 'openid offline_access');
    const fresh = await token(bt, { grant_type: 'authorization_code', code: again.code, redirect_uri: SPA_REDIRECT, code_verifier: again.verifier });
    assert.equal(fresh.statusCode, 200, fresh.body);
    const ok = await token(bt, { grant_type: 'refresh_token', refresh_token: (fresh.json() as { refresh_token: string }).refresh_token });
    assert.equal(ok.statusCode, 200, ok.body);
  } finally {
    await bt.t.close();
  }
});

test('a code issued before the user was disabled is not redeemed', async () => {
  const bt = await browserTest();
  try {
    const { code, verifier } = await signIn(bt, new CookieJar(), 'openid offline_access');
    const u = await alice(bt);
    await admin(bt, 'users', 'update', { user: { ...u, disabled: true } });
    const r = await token(bt, { grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, code_verifier: verifier });
    assert.equal(r.statusCode, 400);
    assert.equal((r.json() as { error: string }).error, 'invalid_grant');
  } finally {
    await bt.t.close();
  }
});
