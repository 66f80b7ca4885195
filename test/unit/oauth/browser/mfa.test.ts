// The MFA prompt through the pages, as a browser does it (cookies carried by hand): enrollment
// when a policy requires MFA (client, scope, user, acr_values), TOTP verification with replay and
// throttling, recovery codes, step-up (acr_values, max_age) redoing only the second factor, acr and
// amr in the code, the ID token and the access token, password throttling, the WebAuthn pages and
// their scripts. WebAuthn ceremonies themselves run in the browser test (test/e2e/mfa.browser.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { decodeJwt } from 'jose';
import { normalizeUserCode, randomToken, randomUserCode, tokenHash } from '../../../../src/crypto/tokens.ts';
import { totpCodeAt, totpStep } from '../../../../src/mfa/totp.ts';
import type { DevicePayload } from '../../../../src/oauth/records.ts';
import { ACR_MFA, ACR_PASSWORD } from '../../../../src/oauth/session.ts';
import { THROTTLE } from '../../../../src/state/mfa-ops.ts';
import { unpackValue } from '../../../../src/state/command.ts';
import type { BrowserTest, Pkce } from './helpers.ts';
import { CookieJar, PASSWORD, SPA_REDIRECT, authorizeAndLogin, authorizeUrl, browserTest, codeRecord, deviceRequest, form, hiddenField, login, pkce, redirectParams, spaParams } from './helpers.ts';

async function post(bt: BrowserTest, jar: CookieJar, url: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  const f = form(fields);
  const res = await bt.t.app.inject({ method: 'POST', url, headers: { ...f.headers, ...jar.header() }, payload: f.payload });
  jar.take(res);
  return res;
}

/** interaction + csrf of an MFA page (the first form's). */
function pageFields(html: string): { interaction: string; csrf: string } {
  return { interaction: hiddenField(html, 'interaction'), csrf: hiddenField(html, 'csrf') };
}

function h1(res: LightMyRequestResponse): string {
  return /<h1>([^<]*)<\/h1>/.exec(res.body)?.[1] ?? `(no h1, status ${res.statusCode})`;
}

/** Enroll TOTP from the enrollment choice page; returns the secret and the response after the confirmation. */
async function enrollTotp(bt: BrowserTest, jar: CookieJar, choicePage: LightMyRequestResponse): Promise<{ secret: string; res: LightMyRequestResponse }> {
  assert.equal(h1(choicePage), 'Set up two-step verification', choicePage.body);
  const qr = await post(bt, jar, '/mfa/enroll/totp', pageFields(choicePage.body));
  assert.equal(qr.statusCode, 200, qr.body);
  assert.match(qr.body, /<svg[^>]*>/, 'the QR code is inline SVG');
  const secret = /id="totp-secret">([A-Z2-7 ]+)</.exec(qr.body)![1]!.replace(/ /g, '');
  assert.match(secret, /^[A-Z2-7]{32}$/, '20-byte base32 secret');
  const fields = { ...pageFields(qr.body), enrollment: hiddenField(qr.body, 'enrollment') };
  // A wrong code shows the same secret again (no new QR code to scan).
  const wrong = await post(bt, jar, '/mfa/enroll/totp/confirm', { ...fields, code: wrongCode(secret, bt.t.clock.now) });
  assert.equal(wrong.statusCode, 400, wrong.body);
  assert.match(wrong.body, /not valid/);
  assert.equal(/id="totp-secret">([A-Z2-7 ]+)</.exec(wrong.body)![1]!.replace(/ /g, ''), secret);
  const res = await post(bt, jar, '/mfa/enroll/totp/confirm', { ...pageFields(wrong.body), enrollment: fields.enrollment, code: totpCodeAt(secret, totpStep(bt.t.clock.now)) });
  return { secret, res };
}

/** A 6-digit code that matches no step within ±2 of now. */
function wrongCode(secret: string, now: number): string {
  const near = new Set([-2, -1, 0, 1, 2].map((d) => totpCodeAt(secret, totpStep(now) + d)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

async function redeem(bt: BrowserTest, code: string, p: Pkce, clientId: string): Promise<Record<string, unknown>> {
  const f = form({ grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, client_id: clientId, code_verifier: p.verifier });
  const res = await bt.t.app.inject({ method: 'POST', url: '/token', headers: f.headers, payload: f.payload });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Record<string, unknown>;
}

function auth(bt: BrowserTest, res: LightMyRequestResponse): { acr: string; amr: string[]; authTime: number } {
  const code = redirectParams(res, SPA_REDIRECT).get('code')!;
  return (codeRecord(bt, code)!.payload as { auth: { acr: string; amr: string[]; authTime: number } }).auth;
}

test('a client that requires MFA: enrollment with a QR code, recovery codes shown once, then acr/amr in the code and the tokens', async () => {
  const bt = await browserTest();
  try {
    await bt.t.addClient({ client_id: 'bank', client_name: 'Bank', token_endpoint_auth_method: 'none', redirect_uris: [SPA_REDIRECT], grant_types: ['authorization_code'], require_mfa: true });
    const jar = new CookieJar();
    const p = pkce();
    const choice = await authorizeAndLogin(bt, jar, spaParams(p, { client_id: 'bank', nonce: 'n1' }));
    assert.equal(choice.statusCode, 200, choice.body);
    assert.match(choice.body, /Bank requires two-step verification/);
    const { res: codesPage } = await enrollTotp(bt, jar, choice);
    assert.equal(h1(codesPage), 'Your recovery codes', codesPage.body);
    const codes = [...codesPage.body.matchAll(/<li>([a-z0-9-]+)<\/li>/g)].map((m) => m[1]!);
    assert.equal(codes.length, 10);
    const done = await post(bt, jar, '/mfa/continue', pageFields(codesPage.body));
    assert.equal(done.statusCode, 303, done.body);
    const a = auth(bt, done);
    assert.equal(a.acr, ACR_MFA);
    assert.deepEqual(a.amr, ['pwd', 'otp', 'mfa']);
    const tokens = await redeem(bt, redirectParams(done, SPA_REDIRECT).get('code')!, p, 'bank');
    const id = decodeJwt(tokens.id_token as string);
    assert.equal(id.acr, ACR_MFA);
    assert.deepEqual(id.amr, ['pwd', 'otp', 'mfa']);
    const at = decodeJwt(tokens.access_token as string);
    assert.equal(at.acr, ACR_MFA);
    assert.deepEqual(at.amr, ['pwd', 'otp', 'mfa']);
  } finally {
    await bt.t.close();
  }
});

test('a user with TOTP is asked for it after the password: wrong code, replayed code, then the next code; throttled after repeated failures', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    // Enroll through acr_values (no policy needed: asking for the mfa level forces it).
    const choice = await authorizeAndLogin(bt, jar, spaParams(pkce(), { acr_values: ACR_MFA }));
    const { secret, res: codesPage } = await enrollTotp(bt, jar, choice);
    const first = await post(bt, jar, '/mfa/continue', pageFields(codesPage.body));
    assert.equal(first.statusCode, 303);
    const usedCode = totpCodeAt(secret, totpStep(bt.t.clock.now));

    // A new browser: password, then the TOTP page (the user has a factor, so it is asked every time).
    const jar2 = new CookieJar();
    const page = await authorizeAndLogin(bt, jar2, spaParams(pkce()));
    assert.equal(h1(page), 'Two-step verification', page.body);
    assert.match(page.body, /action="\/mfa\/totp"/);
    assert.match(page.body, /name="method" value="recovery"/, 'recovery codes offered as an alternative');
    /** The replicated writes a request made, in order. */
    const writes = async (f: () => Promise<LightMyRequestResponse>): Promise<{ res: LightMyRequestResponse; ops: string[] }> => {
      const from = bt.t.node.log.length;
      const res = await f();
      return { res, ops: bt.t.node.log.slice(from).map((e) => `${e.domain} ${e.op}`) };
    };
    const { res: wrong, ops: wrongOps } = await writes(() => post(bt, jar2, '/mfa/totp', { ...pageFields(page.body), code: wrongCode(secret, bt.t.clock.now) }));
    assert.equal(wrong.statusCode, 400);
    assert.match(wrong.body, /not valid/);
    // One replicated write per attempt: the throttle check, the counted failure (and, had the code
    // been right, the upgraded session) are one command.
    assert.deepEqual(wrongOps, ['mfa totp.signIn']);
    // The step the enrollment used is spent (RFC 6238 §5.2: accepted once).
    const replay = await post(bt, jar2, '/mfa/totp', { ...pageFields(wrong.body), code: usedCode });
    assert.equal(replay.statusCode, 400, replay.body);
    assert.match(replay.body, /already used/);
    bt.t.clock.now += 30_000;
    const auditsBefore = bt.t.node.entries('audit').length;
    const { res: ok, ops } = await writes(() => post(bt, jar2, '/mfa/totp', { ...pageFields(replay.body), code: totpCodeAt(secret, totpStep(bt.t.clock.now)) }));
    assert.equal(ok.statusCode, 303, ok.body);
    assert.equal(auth(bt, ok).acr, ACR_MFA);
    // A successful sign-in: the verification, the session upgrade (new record and end of the old
    // one) and the code in ONE replicated write (mfa totp.signIn); audited as before.
    assert.deepEqual(ops, ['mfa totp.signIn']);
    const audited = bt.t.node.entries('audit').slice(auditsBefore).map(([, v]) => unpackValue<{ type: string; details: Record<string, unknown> }>(v));
    assert.deepEqual(audited.map((r) => r.type), ['mfa.verified', 'login.succeeded', 'logout']);
    assert.deepEqual(audited[2]!.details, { reason: 'replaced' });

    // Failures past the free ones are throttled: the page says so and verifies nothing.
    const jar3 = new CookieJar();
    let cur = await authorizeAndLogin(bt, jar3, spaParams(pkce()));
    for (let i = 0; i < THROTTLE.freeFailures + 1; i++) {
      cur = await post(bt, jar3, '/mfa/totp', { ...pageFields(cur.body), code: wrongCode(secret, bt.t.clock.now) });
    }
    // The next step's code is valid (±1 step window) and unused, yet refused while backed off.
    const throttled = await post(bt, jar3, '/mfa/totp', { ...pageFields(cur.body), code: totpCodeAt(secret, totpStep(bt.t.clock.now) + 1) });
    assert.equal(throttled.statusCode, 429, throttled.body);
    assert.match(throttled.body, /Too many failed attempts/);
  } finally {
    await bt.t.close();
  }
});

test('a recovery code is a second factor (amr pwd+mfa), works once, and asks for a new authenticator', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const choice = await authorizeAndLogin(bt, jar, spaParams(pkce(), { acr_values: ACR_MFA }));
    const { res: codesPage } = await enrollTotp(bt, jar, choice);
    const codes = [...codesPage.body.matchAll(/<li>([a-z0-9-]+)<\/li>/g)].map((m) => m[1]!);

    const jar2 = new CookieJar();
    const totpPage = await authorizeAndLogin(bt, jar2, spaParams(pkce()));
    const recoveryPage = await post(bt, jar2, '/mfa/choose', { ...pageFields(totpPage.body), method: 'recovery' });
    assert.equal(h1(recoveryPage), 'Use a recovery code');
    const bad = await post(bt, jar2, '/mfa/recovery', { ...pageFields(recoveryPage.body), code: 'aaaaa-aaaaa' });
    assert.equal(bad.statusCode, 400);
    // Typed in upper case with spaces: normalised.
    const used = await post(bt, jar2, '/mfa/recovery', { ...pageFields(bad.body), code: ` ${codes[0]!.toUpperCase().replace('-', ' ')} ` });
    assert.equal(used.statusCode, 200, used.body);
    assert.equal(h1(used), 'Set up two-step verification', 'reenrollAfterRecovery (the default) asks for a new authenticator');
    // Replacing the authenticator app is allowed now (the session has its second factor).
    bt.t.clock.now += 30_000;
    const { res: after } = await enrollTotp(bt, jar2, used);
    assert.equal(after.statusCode, 303, after.body);
    assert.equal(auth(bt, after).acr, ACR_MFA);

    // Without the re-enrollment policy: the code continues the sign-in; the same code again fails.
    const r = await bt.t.node.write({ domain: 'mfa', op: 'policy.set', args: { sub: bt.aliceSub, required: false, reenrollAfterRecovery: false, meta: { ip: null } }, timeoutMs: 1000 });
    assert.ok(r.ok, JSON.stringify(r));
    const jar3 = new CookieJar();
    const p3 = await authorizeAndLogin(bt, jar3, spaParams(pkce()));
    const r3 = await post(bt, jar3, '/mfa/choose', { ...pageFields(p3.body), method: 'recovery' });
    const again = await post(bt, jar3, '/mfa/recovery', { ...pageFields(r3.body), code: codes[0]! });
    assert.equal(again.statusCode, 400);
    assert.match(again.body, /not valid or was already used/);
    const second = await post(bt, jar3, '/mfa/recovery', { ...pageFields(again.body), code: codes[1]! });
    assert.equal(second.statusCode, 303, second.body);
    const a = auth(bt, second);
    assert.equal(a.acr, ACR_MFA);
    // RFC 8176 has no value for a recovery code: two factors ('mfa') with the password.
    assert.deepEqual(a.amr, ['pwd', 'mfa']);
  } finally {
    await bt.t.close();
  }
});

test('step-up: acr_values above the session and max_age re-do only the second factor; prompt=none answers login_required', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    // A password-only session (no factor, no policy).
    const plain = await authorizeAndLogin(bt, jar, spaParams(pkce()));
    assert.equal(plain.statusCode, 303);
    assert.equal(auth(bt, plain).acr, ACR_PASSWORD);
    // prompt=none cannot show the MFA page.
    const none = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { prompt: 'none', acr_values: ACR_MFA })), headers: jar.header() });
    assert.equal(redirectParams(none, SPA_REDIRECT).get('error'), 'login_required');
    // acr_values=mfa with the session: the enrollment page directly, no password page.
    const step = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { acr_values: ACR_MFA })), headers: jar.header() });
    jar.take(step);
    assert.equal(h1(step), 'Set up two-step verification');
    const { secret, res: codesPage } = await enrollTotp(bt, jar, step);
    const done = await post(bt, jar, '/mfa/continue', pageFields(codesPage.body));
    const upgraded = auth(bt, done);
    assert.equal(upgraded.acr, ACR_MFA);

    // Later, max_age exceeded: the TOTP page, not the password page; auth_time moves to now.
    bt.t.clock.now += 120_000;
    const p = pkce();
    const old = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(p, { max_age: '60' })), headers: jar.header() });
    jar.take(old);
    assert.equal(h1(old), 'Two-step verification', old.body);
    const ok = await post(bt, jar, '/mfa/totp', { ...pageFields(old.body), code: totpCodeAt(secret, totpStep(bt.t.clock.now)) });
    assert.equal(ok.statusCode, 303, ok.body);
    const a = auth(bt, ok);
    assert.equal(a.authTime, Math.floor(bt.t.clock.now / 1000));
    // Within max_age now: no page at all.
    const fresh = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { max_age: '60' })), headers: jar.header() });
    assert.equal(fresh.statusCode, 302, fresh.body);
  } finally {
    await bt.t.close();
  }
});

test('policy: mfa.requiredScopes and the per-user policy require MFA; other requests do not', async () => {
  const bt = await browserTest({ mfa: { rpId: 'localhost', rpName: 'raftauth', origins: ['http://localhost:8080'], requiredScopes: ['email'] } });
  try {
    const noEmail = await authorizeAndLogin(bt, new CookieJar(), spaParams(pkce(), { scope: 'openid profile' }));
    assert.equal(noEmail.statusCode, 303);
    const withEmail = await authorizeAndLogin(bt, new CookieJar(), spaParams(pkce(), { scope: 'openid email' }));
    assert.equal(withEmail.statusCode, 200);
    assert.match(withEmail.body, /The access requested \(email\) requires two-step verification/);

    const r = await bt.t.node.write({ domain: 'mfa', op: 'policy.set', args: { sub: bt.aliceSub, required: true, meta: { ip: null } }, timeoutMs: 1000 });
    assert.ok(r.ok, JSON.stringify(r));
    const perUser = await authorizeAndLogin(bt, new CookieJar(), spaParams(pkce(), { scope: 'openid profile' }));
    assert.equal(perUser.statusCode, 200);
    assert.match(perUser.body, /Your account requires two-step verification/);
  } finally {
    await bt.t.close();
  }
});

test('the MFA forms refuse a wrong CSRF value and an interaction from another browser', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const page = await authorizeAndLogin(bt, jar, spaParams(pkce(), { acr_values: ACR_MFA }));
    const f = pageFields(page.body);
    const csrf = await post(bt, jar, '/mfa/enroll/totp', { ...f, csrf: 'x'.repeat(43) });
    assert.equal(csrf.statusCode, 403);
    const other = await post(bt, new CookieJar(), '/mfa/enroll/totp', f);
    assert.equal(other.statusCode, 403);
    // A method the plan does not offer (no factor yet: nothing to verify) is refused without verifying.
    const totp = await post(bt, jar, '/mfa/totp', { ...f, code: '123456' });
    assert.equal(totp.statusCode, 400);
  } finally {
    await bt.t.close();
  }
});

test('password guesses are throttled per account: after the free failures even the right password waits', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const page = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar.header() });
    jar.take(page);
    const interaction = hiddenField(page.body, 'interaction');
    for (let i = 0; i < THROTTLE.freeFailures + 1; i++) {
      const res = await login(bt, jar, interaction, 'alice', 'wrong password');
      assert.ok(res.statusCode === 400 || res.statusCode === 429, res.body);
    }
    const blocked = await login(bt, jar, interaction, 'alice', PASSWORD);
    assert.equal(blocked.statusCode, 429, blocked.body);
    assert.match(blocked.body, /Too many failed sign-in attempts/);
    assert.equal(jar.cookies.has('raftauth_session'), false);
    bt.t.clock.now += THROTTLE.baseBackoffMs * 2;
    const ok = await login(bt, jar, interaction, 'alice', PASSWORD);
    assert.equal(ok.statusCode, 303, ok.body);
  } finally {
    await bt.t.close();
  }
});

test('acr_values=phr for a user without factors shows the WebAuthn registration page; its scripts come from our origin', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const page = await authorizeAndLogin(bt, jar, spaParams(pkce(), { acr_values: 'urn:raftauth:acr:phr' }));
    assert.equal(page.statusCode, 200, page.body);
    assert.equal(h1(page), 'Register a security key');
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline'[^;]*script|script-src[^;]*unsafe/);
    const options = JSON.parse(/<script type="application\/json" id="webauthn-options">([^<]*)<\/script>/.exec(page.body)![1]!) as { rp: { id: string }; challenge: string; user: { name: string } };
    assert.equal(options.rp.id, 'localhost');
    assert.equal(options.user.name, 'alice');
    assert.match(options.challenge, /^[A-Za-z0-9_-]+$/);
    for (const src of ['/mfa/assets/simplewebauthn-browser.js', '/mfa/assets/webauthn.js']) {
      assert.match(page.body, new RegExp(`<script src="${src}"></script>`));
      const js = await bt.t.app.inject({ method: 'GET', url: src });
      assert.equal(js.statusCode, 200);
      assert.match(String(js.headers['content-type']), /^text\/javascript/);
    }
    const lib = await bt.t.app.inject({ method: 'GET', url: '/mfa/assets/simplewebauthn-browser.js' });
    assert.match(lib.body, /SimpleWebAuthnBrowser/);
    // A forged registration answer is refused on the page, and the challenge is spent.
    const bad = await post(bt, jar, '/mfa/enroll/webauthn/finish', { ...pageFields(page.body), response: JSON.stringify({ id: 'x', rawId: 'x', type: 'public-key', response: { clientDataJSON: 'e30', attestationObject: 'oA' }, clientExtensionResults: {} }) });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.equal(h1(bad), 'Register a security key');
  } finally {
    await bt.t.close();
  }
});

test('discovery lists the acr values', async () => {
  const bt = await browserTest();
  try {
    const m = (await bt.t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json() as { acr_values_supported: string[] };
    assert.deepEqual(m.acr_values_supported, ['urn:raftauth:acr:pwd', 'urn:raftauth:acr:mfa', 'urn:raftauth:acr:phr']);
  } finally {
    await bt.t.close();
  }
});

test('device flow: a user with TOTP gives it after the password on the device page; a client that requires MFA asks for it before the confirmation', async () => {
  const bt = await browserTest();
  try {
    // alice gets TOTP through the code flow.
    const jar0 = new CookieJar();
    const choice = await authorizeAndLogin(bt, jar0, spaParams(pkce(), { acr_values: ACR_MFA }));
    const { secret } = await enrollTotp(bt, jar0, choice);
    bt.t.clock.now += 30_000;

    const { userCode } = await deviceRequest(bt, ['openid']);
    const jar = new CookieJar();
    const url = `/device?user_code=${encodeURIComponent(userCode)}`;
    const page = await bt.t.app.inject({ method: 'GET', url, headers: jar.header() });
    jar.take(page);
    const totp = await login(bt, jar, hiddenField(page.body, 'interaction'), 'alice', PASSWORD);
    assert.equal(h1(totp), 'Two-step verification', totp.body);
    const ok = await post(bt, jar, '/mfa/totp', { ...pageFields(totp.body), code: totpCodeAt(secret, totpStep(bt.t.clock.now)) });
    assert.equal(ok.statusCode, 303, ok.body);
    assert.equal(ok.headers.location, url);
    const confirm = await bt.t.app.inject({ method: 'GET', url, headers: jar.header() });
    assert.equal(h1(confirm), 'Connect a device?', confirm.body);

    // A password-only session of a user without factors, for a client that requires MFA: the
    // confirmation page is replaced by the MFA prompt, and a direct approval is refused.
    await bt.t.addUser('bob', PASSWORD);
    await bt.t.addClient({ client_id: 'tv', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], require_mfa: true });
    const code2 = randomUserCode();
    const hash2 = tokenHash(randomToken());
    const w2 = await bt.t.node.write({
      domain: 'tokens',
      op: 'device.create',
      args: {
        hash: hash2,
        userCodeHash: tokenHash(normalizeUserCode(code2)!),
        exp: bt.t.clock.now + 600_000,
        intervalMs: 5000,
        sealed: bt.sealer.sealValue({ clientId: 'tv', scope: ['openid'], audience: bt.t.config.issuer } satisfies DevicePayload, 'device:' + hash2),
      },
      timeoutMs: 1000,
    });
    assert.ok(w2.ok);
    const jarB = new CookieJar();
    const url2 = `/device?user_code=${encodeURIComponent(code2)}`;
    const p2 = await bt.t.app.inject({ method: 'GET', url: url2, headers: jarB.header() });
    jarB.take(p2);
    const back = await login(bt, jarB, hiddenField(p2.body, 'interaction'), 'bob', PASSWORD);
    assert.equal(back.statusCode, 303, 'no factor and no user policy: back to the device page');
    const gate = await bt.t.app.inject({ method: 'GET', url: url2, headers: jarB.header() });
    jarB.take(gate);
    assert.equal(h1(gate), 'Set up two-step verification', gate.body);
    const direct = await post(bt, jarB, '/device', { user_code: code2, csrf: hiddenField(gate.body, 'csrf'), decision: 'approve' });
    assert.equal(direct.statusCode, 403, direct.body);
  } finally {
    await bt.t.close();
  }
});
