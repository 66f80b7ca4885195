// Passkey sign-in without a username (POST /login/passkey, src/oauth/passkey-login.ts) through the
// pages, as a browser does it (cookies carried by hand), with the software authenticator of the MFA
// tests making real ES256 assertions: the sign-in page's discoverable-credential request, success
// (acr phr, amr hwk user mfa, the MFA prompt skipped, audited), and every refusal changing nothing
// but the failure counters: replayed challenge, unknown or removed credential, user-handle
// mismatch, counter regression, no user verification, wrong origin, a disabled account, another
// browser's interaction, the address throttle. Also the device page's sign-in, consent after a
// passkey, a max_age step-up that must not claim a password, and an issuer where passkeys cannot
// work (no option, route refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import pino from 'pino';
import { CryptoRuntime } from '../../../../src/crypto/runtime.ts';
import { randomToken } from '../../../../src/crypto/tokens.ts';
import { webauthnRegistrationOptions, webauthnVerifyRegistration, removeWebAuthnCredential, listFactors } from '../../../../src/mfa/service.ts';
import { webauthnUserHandleB64 } from '../../../../src/mfa/webauthn.ts';
import { mfaConfigOf } from '../../../../src/oauth/config.ts';
import type { OAuthContext } from '../../../../src/oauth/context.ts';
import { LOGIN_THROTTLED } from '../../../../src/oauth/login.ts';
import { passkeysAvailable } from '../../../../src/oauth/login-page.ts';
import { PASSKEY_CHALLENGE, PASSKEY_CLONED, PASSKEY_INVALID, PASSKEY_REFUSED, PASSKEY_UNKNOWN } from '../../../../src/oauth/passkey-login.ts';
import { ACR_PHR } from '../../../../src/oauth/session.ts';
import { AUDIT_KEYSPACE } from '../../../../src/state/audit.ts';
import type { AuditRecord } from '../../../../src/state/audit-ops.ts';
import { unpackValue } from '../../../../src/state/command.ts';
import { THROTTLE } from '../../../../src/state/mfa-ops.ts';
import { CHALLENGES_KEYSPACE, IP_THROTTLE_KEYSPACE } from '../../../../src/state/mfa.ts';
import type { UserRecord } from '../../../../src/state/oauth-ops.ts';
import { SoftAuthenticator } from '../../mfa/soft-authenticator.ts';
import type { BrowserTest } from './helpers.ts';
import { CookieJar, PARTNER_REDIRECT, SPA_REDIRECT, authorizeUrl, browserTest, codeRecord, deviceRequest, form, hiddenField, pkce, redirectParams, sessionCount, spaParams } from './helpers.ts';

/** WebAuthn needs a domain RP ID and a secure context: http://localhost is one (login-page.ts passkeysAvailable). */
const ISSUER = 'http://localhost:8080';
const ORIGIN = 'http://localhost:8080';

interface PasskeyTest {
  readonly bt: BrowserTest;
  readonly ctx: OAuthContext;
  readonly auth: SoftAuthenticator;
  readonly credentialId: string;
}

function serviceContext(bt: BrowserTest): OAuthContext {
  const t = bt.t;
  return { node: t.node, cache: t.cache.local, crypto: new CryptoRuntime(t.cache.local, t.master), config: t.config, log: pino({ level: 'silent' }), now: () => t.clock.now, requestTimeoutMs: 1_000 };
}

/** Register a resident key for `sub` the way the MFA registration page does (the options it would send). */
async function registerPasskey(ctx: OAuthContext, auth: SoftAuthenticator, user: { sub: string; username: string }): Promise<string> {
  const cfg = mfaConfigOf(ctx.config);
  const options = await webauthnRegistrationOptions(ctx, cfg, { sub: user.sub, name: user.username, displayName: user.username });
  // Registration asks for a passkey (a discoverable credential) when the authenticator can make one.
  assert.equal(options.authenticatorSelection?.residentKey, 'preferred');
  const r = await webauthnVerifyRegistration(ctx, cfg, user.sub, auth.create(options), 'Phone', { ip: null });
  assert.ok(r.ok, JSON.stringify(r));
  return r.credentialId;
}

async function setup(config: Record<string, unknown> = {}): Promise<PasskeyTest> {
  const bt = await browserTest({ issuer: ISSUER, ...config });
  const ctx = serviceContext(bt);
  const auth = new SoftAuthenticator(ORIGIN);
  const credentialId = await registerPasskey(ctx, auth, { sub: bt.aliceSub, username: 'alice' });
  return { bt, ctx, auth, credentialId };
}

function h1(res: LightMyRequestResponse): string {
  return /<h1>([^<]*)<\/h1>/.exec(res.body)?.[1] ?? `(no h1, status ${res.statusCode})`;
}

/** The passkey request options the sign-in page carries. */
function passkeyOptions(html: string): PublicKeyCredentialRequestOptionsJSON {
  const m = /<script type="application\/json" id="webauthn-options">([^<]*)<\/script>/.exec(html);
  assert.ok(m, `the page carries passkey options:\n${html}`);
  return JSON.parse(m[1]!) as PublicKeyCredentialRequestOptionsJSON;
}

/** The passkey form's interaction (the second hidden interaction field: the password form comes first). */
function passkeyInteraction(html: string): string {
  const m = /<form method="post" action="\/login\/passkey" id="webauthn-form" data-mode="authenticate">\n<input type="hidden" name="interaction" value="([^"]*)">/.exec(html);
  assert.ok(m, `the page has the passkey form:\n${html}`);
  return m[1]!;
}

async function get(bt: BrowserTest, jar: CookieJar, url: string): Promise<LightMyRequestResponse> {
  const res = await bt.t.app.inject({ method: 'GET', url, headers: jar.header() });
  jar.take(res);
  return res;
}

async function post(bt: BrowserTest, jar: CookieJar, url: string, fields: Record<string, string>, remoteAddress?: string): Promise<LightMyRequestResponse> {
  const f = form(fields);
  const res = await bt.t.app.inject({ method: 'POST', url, headers: { ...f.headers, ...jar.header() }, payload: f.payload, ...(remoteAddress !== undefined ? { remoteAddress } : {}) });
  jar.take(res);
  return res;
}

/** Sign-in page of a new authorization request for the SPA. */
async function signInPage(bt: BrowserTest, jar: CookieJar, extra: Record<string, string | undefined> = {}): Promise<LightMyRequestResponse> {
  const page = await get(bt, jar, authorizeUrl(spaParams(pkce(), extra)));
  assert.equal(page.statusCode, 200, page.body);
  assert.equal(h1(page), 'Sign in');
  return page;
}

/** The authenticator answers the page's request; the page script posts it. */
function passkeyPost(bt: BrowserTest, jar: CookieJar, page: LightMyRequestResponse, answer: unknown, remoteAddress?: string): Promise<LightMyRequestResponse> {
  return post(bt, jar, '/login/passkey', { interaction: passkeyInteraction(page.body), response: JSON.stringify(answer) }, remoteAddress);
}

function audits(bt: BrowserTest): AuditRecord[] {
  return bt.t.node.entries(AUDIT_KEYSPACE).map(([, v]) => unpackValue<AuditRecord>(v));
}

async function storedCounter(p: PasskeyTest): Promise<number> {
  return (await listFactors(p.ctx, p.bt.aliceSub)).webauthn.find((c) => c.id === p.credentialId)!.counter;
}

function errorText(res: LightMyRequestResponse): string {
  return (/<p class="error" role="alert">([^<]*)<\/p>/.exec(res.body)?.[1] ?? '').replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
}

/** A refusal: the sign-in page again with `message` and a fresh challenge, no session, no cookie. */
function assertRefused(res: LightMyRequestResponse, status: number, message: string, previousChallenge: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(h1(res), 'Sign in');
  assert.ok(errorText(res).startsWith(message), `"${errorText(res)}" starts with "${message}"`);
  assert.notEqual(passkeyOptions(res.body).challenge, previousChallenge, 'a new challenge');
  const cookies = res.headers['set-cookie'];
  assert.ok(!String(cookies ?? '').includes('raftauth_session='), 'no session cookie');
}

test('the sign-in page offers a passkey: a discoverable-credential request (no allowCredentials, UV required) with scripts from our origin', async () => {
  const { bt } = await setup();
  try {
    const jar = new CookieJar();
    const page = await signInPage(bt, jar);
    const o = passkeyOptions(page.body);
    assert.equal(o.allowCredentials, undefined);
    assert.equal(o.userVerification, 'required');
    assert.equal(o.rpId, 'localhost');
    assert.match(o.challenge, /^[A-Za-z0-9_-]{43}$/);
    // Stored server-side like the second-factor page's challenge: single use, 5-minute expiry, no user.
    const stored = bt.t.node.entries(CHALLENGES_KEYSPACE).map(([k, v]) => [k, unpackValue<{ purpose: string; sub: string | null; exp: number }>(v)] as const);
    const rec = stored.find(([k]) => k === o.challenge)?.[1];
    assert.ok(rec, 'the challenge is in the mfa domain');
    assert.equal(rec.purpose, 'authenticate');
    assert.equal(rec.sub, null);
    assert.equal(rec.exp, bt.t.clock.now + 5 * 60_000);
    assert.match(page.body, /<button type="button" id="webauthn-start">Sign in with a passkey<\/button>/);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    assert.match(page.body, /<script src="\/mfa\/assets\/simplewebauthn-browser.js"><\/script>\s*<script src="\/mfa\/assets\/webauthn.js"><\/script>/);
    // The password form is still there, first.
    assert.match(page.body, /<form method="post" action="\/login">/);
    assert.equal(passkeyInteraction(page.body), hiddenField(page.body, 'interaction'));
  } finally {
    await bt.t.close();
  }
});

test('passkey sign-in: the credential names the user, the MFA prompt is skipped, acr phr and amr hwk user mfa in the code, audited; the challenge cannot be replayed', async () => {
  const p = await setup();
  const { bt, auth } = p;
  try {
    const jar = new CookieJar();
    const page = await signInPage(bt, jar);
    const answer = auth.get(passkeyOptions(page.body));
    assert.equal(answer.response.userHandle, webauthnUserHandleB64(bt.aliceSub));
    const before = audits(bt).length;
    const res = await passkeyPost(bt, jar, page, answer);
    // alice has a factor (so MFA level 1 is needed) and no password was typed: the passkey met it.
    const q = redirectParams(res, SPA_REDIRECT);
    assert.equal(res.statusCode, 303);
    assert.equal(q.get('state'), 'st-1');
    const rec = codeRecord(bt, q.get('code')!);
    assert.ok(rec);
    const a = rec.payload.auth as { sub: string; acr: string; amr: string[]; authTime: number };
    assert.equal(a.sub, bt.aliceSub);
    assert.equal(a.acr, ACR_PHR);
    assert.deepEqual(a.amr, ['hwk', 'user', 'mfa']);
    assert.equal(a.authTime, Math.floor(bt.t.clock.now / 1000));
    assert.equal(await storedCounter(p), 1);
    const events = audits(bt).slice(before).map((e) => [e.type, e.sub] as const);
    assert.deepEqual(events, [
      ['mfa.verified', bt.aliceSub],
      ['login.succeeded', bt.aliceSub],
    ]);
    assert.equal(sessionCount(bt), 1);

    // The same answer again (a replay, or a double submit): the challenge is spent on the whole cluster.
    const again = await passkeyPost(bt, jar, page, answer);
    assertRefused(again, 400, PASSKEY_CHALLENGE, passkeyOptions(page.body).challenge);
    assert.equal(sessionCount(bt), 1);
    assert.equal(await storedCounter(p), 1);
  } finally {
    await bt.t.close();
  }
});

test('refusals change nothing: unknown credential, user-handle mismatch, counter regression, no user verification, wrong origin, wrong RP ID, missing answer', async () => {
  const p = await setup();
  const { bt, auth } = p;
  try {
    const jar = new CookieJar();
    const before = (await signInPage(bt, jar));
    // One good sign-in first, so the stored counter is 1.
    assert.equal((await passkeyPost(bt, jar, before, auth.get(passkeyOptions(before.body)))).statusCode, 303);
    const sessions = sessionCount(bt);
    const jar2 = new CookieJar();
    let page = await signInPage(bt, jar2);
    // Each refusal is alice's failure too once her credential is known: her backoff (after
    // THROTTLE.freeFailures) is cleared between attempts, so each answer is judged on its own.
    const unlock = async (): Promise<void> => {
      assert.ok((await bt.t.node.write({ domain: 'mfa', op: 'unlock', args: { sub: bt.aliceSub, meta: { ip: null } }, timeoutMs: 1000 })).ok);
    };
    const attempt = async (answer: unknown, status: number, message: string): Promise<void> => {
      await unlock();
      const res = await passkeyPost(bt, jar2, page, answer);
      assertRefused(res, status, message, passkeyOptions(page.body).challenge);
      assert.equal(sessionCount(bt), sessions);
      assert.equal(await storedCounter(p), 1, 'the counter did not move');
      page = res;
    };

    const stranger = new SoftAuthenticator(ORIGIN);
    const reg = await webauthnRegistrationOptions(p.ctx, mfaConfigOf(p.ctx.config), { sub: 'ghost', name: 'ghost', displayName: 'G' });
    stranger.create(reg); // never verified: unknown to the server
    await attempt(stranger.get(passkeyOptions(page.body)), 400, PASSKEY_UNKNOWN);

    // W3C §7.2 step 6: the user handle must be the credential owner's.
    await attempt(auth.get(passkeyOptions(page.body), { userHandle: webauthnUserHandleB64('someone-else') }), 400, PASSKEY_INVALID);
    // A discoverable request must get the user handle back.
    await attempt(auth.get(passkeyOptions(page.body), { userHandle: null }), 400, PASSKEY_INVALID);
    // Step 17: user verification was required.
    await attempt(auth.get(passkeyOptions(page.body), { userVerified: false }), 400, PASSKEY_INVALID);
    // Steps 13 and 15: origin and RP ID hash.
    await attempt(auth.get(passkeyOptions(page.body), { origin: 'http://evil.localhost:8080' }), 400, PASSKEY_INVALID);
    await attempt(auth.get(passkeyOptions(page.body), { rpId: 'evil.example' }), 400, PASSKEY_INVALID);
    // A signature over a challenge we never made (the page's one is not answered).
    await attempt(auth.get(passkeyOptions(page.body), { challenge: randomToken() }), 400, PASSKEY_CHALLENGE);
    // A bad signature.
    await attempt(auth.get(passkeyOptions(page.body), { badSignature: true }), 400, PASSKEY_INVALID);

    // Step 22: a counter that did not increase (a cloned authenticator) is refused in apply and audited.
    await unlock();
    const res = await passkeyPost(bt, jar2, page, auth.get(passkeyOptions(page.body), { counter: 1 }));
    assertRefused(res, 400, PASSKEY_CLONED, passkeyOptions(page.body).challenge);
    assert.equal(await storedCounter(p), 1);
    assert.equal(sessionCount(bt), sessions);
    const regression = audits(bt).filter((e) => e.type === 'mfa.counter_regression');
    assert.equal(regression.length, 1);
    assert.equal(regression[0]!.sub, bt.aliceSub);
    page = res;

    // No answer, or not JSON: the page again (nothing consumed).
    for (const response of [undefined, 'not json', '[1]', 'x'.repeat(8 * 1024 + 1)]) {
      const fields: Record<string, string> = { interaction: passkeyInteraction(page.body) };
      if (response !== undefined) fields.response = response;
      const r = await post(bt, jar2, '/login/passkey', fields);
      assert.equal(r.statusCode, 400, r.body);
      assert.equal(sessionCount(bt), sessions);
    }

    // The counted failures: alice's (handle mismatch, missing handle, no UV, origin, RP ID, signature, regression) and the address's.
    const ip = bt.t.node.entries(IP_THROTTLE_KEYSPACE).map(([k, v]) => [k, unpackValue<{ failures: number }>(v).failures] as const);
    assert.deepEqual(ip, [['127.0.0.1', 9]]);
  } finally {
    await bt.t.close();
  }
});

test('the passkey form is bound to the browser like the password form: another browser or no interaction is refused', async () => {
  const { bt, auth } = await setup();
  try {
    const jar = new CookieJar();
    const page = await signInPage(bt, jar);
    const answer = auth.get(passkeyOptions(page.body));
    // Login CSRF: the attacker's interaction posted from the victim's browser (no matching cookie).
    const other = new CookieJar();
    const forged = await post(bt, other, '/login/passkey', { interaction: passkeyInteraction(page.body), response: JSON.stringify(answer) });
    assert.equal(forged.statusCode, 403, forged.body);
    assert.equal(h1(forged), 'Sign-in request refused');
    const none = await post(bt, jar, '/login/passkey', { response: JSON.stringify(answer) });
    assert.equal(none.statusCode, 400);
    assert.equal(h1(none), 'Sign-in request not found');
    assert.equal(sessionCount(bt), 0);
    // Refused before the ceremony: the challenge is still good for the real browser.
    assert.equal((await passkeyPost(bt, jar, page, answer)).statusCode, 303);
  } finally {
    await bt.t.close();
  }
});

test('throttling: failures count per client address; past the free ones every passkey from that address waits, others do not', async () => {
  const { bt, auth } = await setup();
  try {
    const jar = new CookieJar();
    let page = await signInPage(bt, jar);
    const stranger = new SoftAuthenticator(ORIGIN);
    const reg = await webauthnRegistrationOptions(serviceContext(bt), mfaConfigOf(bt.t.config), { sub: 'ghost', name: 'ghost', displayName: 'G' });
    stranger.create(reg);
    const ATTACKER = '203.0.113.7';
    for (let n = 1; n <= THROTTLE.ipFreeFailures; n++) {
      const res = await passkeyPost(bt, jar, page, stranger.get(passkeyOptions(page.body)), ATTACKER);
      assert.equal(res.statusCode, 400, `attempt ${n}: ${res.body}`);
      assert.equal(errorText(res), PASSKEY_UNKNOWN);
      page = res;
    }
    // The (ipFreeFailures+1)-th failure starts the address's backoff.
    const over = await passkeyPost(bt, jar, page, stranger.get(passkeyOptions(page.body)), ATTACKER);
    assert.equal(over.statusCode, 400, over.body);
    page = over;
    const throttled = await passkeyPost(bt, jar, page, auth.get(passkeyOptions(page.body)), ATTACKER);
    assert.equal(throttled.statusCode, 429, throttled.body);
    assert.ok(errorText(throttled).startsWith(LOGIN_THROTTLED), errorText(throttled));
    assert.equal(sessionCount(bt), 0);
    // The throttled attempt verified nothing: alice's counter did not move.
    assert.equal((await listFactors(serviceContext(bt), bt.aliceSub)).webauthn[0]!.counter, 0);
    // Another address is not affected.
    const ok = await passkeyPost(bt, jar, throttled, auth.get(passkeyOptions(throttled.body)), '198.51.100.1');
    assert.equal(ok.statusCode, 303, ok.body);
  } finally {
    await bt.t.close();
  }
});

test('a disabled account, and a credential removed since, cannot sign in; nothing of theirs changes', async () => {
  const p = await setup();
  const { bt, auth } = p;
  try {
    const jar = new CookieJar();
    let page = await signInPage(bt, jar);
    const user = unpackValue<UserRecord>(bt.t.node.state.get('users')!.get(bt.aliceSub)!);
    const w = await bt.t.node.write({ domain: 'users', op: 'update', args: { user: { ...user, disabled: true } }, timeoutMs: 1000 });
    assert.ok(w.ok);
    const verifiedBefore = audits(bt).filter((e) => e.type === 'mfa.verified').length;
    let res = await passkeyPost(bt, jar, page, auth.get(passkeyOptions(page.body)));
    assertRefused(res, 403, PASSKEY_REFUSED, passkeyOptions(page.body).challenge);
    assert.equal(await storedCounter(p), 0);
    assert.equal(audits(bt).filter((e) => e.type === 'mfa.verified').length, verifiedBefore);
    assert.equal(sessionCount(bt), 0);
    page = res;

    const w2 = await bt.t.node.write({ domain: 'users', op: 'update', args: { user: { ...user, disabled: false } }, timeoutMs: 1000 });
    assert.ok(w2.ok);
    assert.equal(await removeWebAuthnCredential(p.ctx, bt.aliceSub, p.credentialId, { ip: null }), true);
    res = await passkeyPost(bt, jar, page, auth.get(passkeyOptions(page.body)));
    assertRefused(res, 400, PASSKEY_UNKNOWN, passkeyOptions(page.body).challenge);
    assert.equal(sessionCount(bt), 0);
  } finally {
    await bt.t.close();
  }
});

test('after a passkey: consent for a third-party client; acr_values=phr is met; a user whose policy requires MFA is not asked again', async () => {
  const { bt, auth } = await setup();
  try {
    await bt.t.node.write({ domain: 'mfa', op: 'policy.set', args: { sub: bt.aliceSub, required: true }, timeoutMs: 1000 });
    const jar = new CookieJar();
    const pk = pkce();
    const page = await get(bt, jar, authorizeUrl({ response_type: 'code', client_id: 'partner', redirect_uri: PARTNER_REDIRECT, scope: 'openid', state: 's', code_challenge: pk.challenge, code_challenge_method: 'S256', acr_values: ACR_PHR }));
    assert.equal(h1(page), 'Sign in');
    const res = await passkeyPost(bt, jar, page, auth.get(passkeyOptions(page.body)));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(h1(res), 'Allow access?');
    const consent = await post(bt, jar, '/consent', { interaction: hiddenField(res.body, 'interaction'), csrf: hiddenField(res.body, 'csrf'), decision: 'allow' });
    const q = redirectParams(consent, PARTNER_REDIRECT);
    assert.equal((codeRecord(bt, q.get('code')!)!.payload.auth as { acr: string }).acr, ACR_PHR);
  } finally {
    await bt.t.close();
  }
});

test('max_age on a passkey session re-does the key only, and the amr does not claim a password', async () => {
  const { bt, auth } = await setup();
  try {
    const jar = new CookieJar();
    const page = await signInPage(bt, jar);
    assert.equal((await passkeyPost(bt, jar, page, auth.get(passkeyOptions(page.body)))).statusCode, 303);
    bt.t.clock.now += 120_000;
    const step = await get(bt, jar, authorizeUrl(spaParams(pkce(), { max_age: '60' })));
    assert.equal(step.statusCode, 200, step.body);
    assert.equal(h1(step), 'Two-step verification');
    assert.match(step.body, /data-mode="authenticate"/);
    const options = passkeyOptions(step.body);
    assert.equal((options.allowCredentials ?? []).length, 1, 'the second-factor page names the user’s credentials');
    const res = await post(bt, jar, '/mfa/webauthn', { interaction: hiddenField(step.body, 'interaction'), csrf: hiddenField(step.body, 'csrf'), response: JSON.stringify(auth.get(options)) });
    const q = redirectParams(res, SPA_REDIRECT);
    const a = codeRecord(bt, q.get('code')!)!.payload.auth as { acr: string; amr: string[]; authTime: number };
    assert.equal(a.acr, ACR_PHR);
    assert.deepEqual(a.amr, ['hwk', 'user', 'mfa']);
    assert.equal(a.authTime, Math.floor(bt.t.clock.now / 1000));
  } finally {
    await bt.t.close();
  }
});

test('the device page’s sign-in offers the passkey too, and returns to the device page', async () => {
  const { bt, auth } = await setup();
  try {
    // A pending device request (as device-authorization.ts stores it).
    const { userCode } = await deviceRequest(bt, ['openid']);
    const jar = new CookieJar();
    const page = await get(bt, jar, `/device?user_code=${encodeURIComponent(userCode)}`);
    assert.equal(h1(page), 'Sign in');
    const res = await passkeyPost(bt, jar, page, auth.get(passkeyOptions(page.body)));
    assert.equal(res.statusCode, 303, res.body);
    assert.equal(res.headers.location, `/device?user_code=${encodeURIComponent(userCode)}`);
    const confirm = await get(bt, jar, String(res.headers.location));
    assert.equal(h1(confirm), 'Connect a device?');
  } finally {
    await bt.t.close();
  }
});

test('no passkey option where browsers cannot run WebAuthn (an IP-address RP ID, a plain-http non-local origin); the route refuses', async () => {
  assert.equal(passkeysAvailable({ rpId: '127.0.0.1', rpName: 'x', origins: ['http://127.0.0.1:8080'] }), false);
  assert.equal(passkeysAvailable({ rpId: 'auth.example.com', rpName: 'x', origins: ['http://auth.example.com'] }), false);
  assert.equal(passkeysAvailable({ rpId: 'auth.example.com', rpName: 'x', origins: ['https://auth.example.com'] }), true);
  assert.equal(passkeysAvailable({ rpId: 'localhost', rpName: 'x', origins: ['http://localhost:3000'] }), true);
  const bt = await browserTest({ issuer: 'http://127.0.0.1:8080' });
  try {
    const jar = new CookieJar();
    const page = await get(bt, jar, authorizeUrl(spaParams(pkce())));
    assert.equal(h1(page), 'Sign in');
    assert.doesNotMatch(page.body, /webauthn|passkey/i);
    assert.doesNotMatch(String(page.headers['content-security-policy']), /script-src/);
    assert.equal(bt.t.node.entries(CHALLENGES_KEYSPACE).length, 0, 'no challenge written');
    const res = await post(bt, jar, '/login/passkey', { interaction: hiddenField(page.body, 'interaction'), response: '{}' });
    assert.equal(res.statusCode, 404);
  } finally {
    await bt.t.close();
  }
});
