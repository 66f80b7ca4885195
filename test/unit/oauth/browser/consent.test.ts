// Consent for third-party clients, form_post responses, HTML escaping, and the code exchanged at
// /token end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { TEST_ISSUER } from '../../../support/oauth-app.ts';
import { CookieJar, PARTNER_REDIRECT, SPA_REDIRECT, authorizeAndLogin, authorizeUrl, browserTest, codeRecord, form, hiddenField, pkce, redirectParams, spaParams } from './helpers.ts';
import type { BrowserTest, Pkce } from './helpers.ts';

function partnerParams(p: Pkce, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { response_type: 'code', client_id: 'partner', redirect_uri: PARTNER_REDIRECT, scope: 'openid email', state: 'ps', code_challenge: p.challenge, code_challenge_method: 'S256', ...extra };
}

async function consentPost(bt: BrowserTest, jar: CookieJar, fields: Record<string, string>) {
  const f = form(fields);
  const res = await bt.t.app.inject({ method: 'POST', url: '/consent', headers: { ...f.headers, ...jar.header() }, payload: f.payload });
  jar.take(res);
  return res;
}

test('a third-party client gets the consent page after login; Deny is access_denied, Allow is the code', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const page = await authorizeAndLogin(bt, jar, partnerParams(pkce()));
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /<strong>Partner App<\/strong> asks to:/);
    assert.match(page.body, /See your email address/);
    assert.match(page.body, /Signed in as Alice Liddell \(alice\)/);
    assert.match(String(page.headers['content-security-policy']), /form-action 'self' https:\/\/partner\.example;/);
    const interaction = hiddenField(page.body, 'interaction');
    const csrf = hiddenField(page.body, 'csrf');

    const deny = await consentPost(bt, jar, { interaction, csrf, decision: 'deny' });
    assert.equal(deny.statusCode, 303);
    const dq = redirectParams(deny, PARTNER_REDIRECT);
    assert.equal(dq.get('error'), 'access_denied');
    assert.equal(dq.get('state'), 'ps');
    assert.equal(dq.get('iss'), TEST_ISSUER);
    assert.equal(dq.get('code'), null);

    const allow = await consentPost(bt, jar, { interaction, csrf, decision: 'allow' });
    const aq = redirectParams(allow, PARTNER_REDIRECT);
    const rec = codeRecord(bt, aq.get('code')!);
    assert.ok(rec);
    assert.equal(rec.payload.clientId, 'partner');
    assert.deepEqual(rec.payload.scope, ['openid', 'email']);

    // Consent is asked again on the next request (not remembered); prompt=none then fails.
    const next = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(partnerParams(pkce())), headers: jar.header() });
    assert.match(next.body, /Allow access\?/);
    const none = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(partnerParams(pkce(), { prompt: 'none' })), headers: jar.header() });
    assert.equal(redirectParams(none, PARTNER_REDIRECT).get('error'), 'consent_required');
  } finally {
    await bt.t.close();
  }
});

test('prompt=consent asks a first-party client too', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const page = await authorizeAndLogin(bt, jar, spaParams(pkce(), { prompt: 'consent' }));
    assert.match(page.body, /Allow access\?/);
    const res = await consentPost(bt, jar, { interaction: hiddenField(page.body, 'interaction'), csrf: hiddenField(page.body, 'csrf'), decision: 'allow' });
    assert.ok(redirectParams(res, SPA_REDIRECT).get('code'));
  } finally {
    await bt.t.close();
  }
});

test('consent CSRF: a wrong or missing csrf value, or another browser, is refused and issues nothing', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const page = await authorizeAndLogin(bt, jar, partnerParams(pkce()));
    const interaction = hiddenField(page.body, 'interaction');
    const csrf = hiddenField(page.body, 'csrf');
    const codesBefore = bt.t.node.state.get('tok.code')?.size ?? 0;
    const forged: Record<string, string>[] = [
      { interaction, csrf: csrf.slice(0, -1) + (csrf.endsWith('A') ? 'B' : 'A'), decision: 'allow' },
      { interaction, decision: 'allow' },
    ];
    for (const fields of forged) {
      const res = await consentPost(bt, jar, fields);
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.headers.location, undefined);
    }
    // The right csrf from a browser without the interaction cookie (only the session cookie).
    const other = new CookieJar();
    other.cookies.set('raftauth_session', jar.cookies.get('raftauth_session')!);
    const res = await consentPost(bt, other, { interaction, csrf, decision: 'allow' });
    assert.equal(res.statusCode, 403);
    assert.equal(bt.t.node.state.get('tok.code')?.size ?? 0, codesBefore);
    // No decision.
    const nodecision = await consentPost(bt, jar, { interaction, csrf });
    assert.equal(nodecision.statusCode, 400);
  } finally {
    await bt.t.close();
  }
});

test('form_post: the code comes in an auto-submitting form whose inline script only the CSP nonce allows', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const res = await authorizeAndLogin(bt, jar, spaParams(pkce(), { response_mode: 'form_post', state: 'a"b<c' }));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers.location, undefined);
    assert.match(res.body, /<form method="post" action="https:\/\/spa\.example\/cb">/);
    const code = hiddenField(res.body, 'code');
    assert.ok(codeRecord(bt, code));
    assert.equal(hiddenField(res.body, 'state'), 'a"b<c');
    assert.match(res.body, /name="state" value="a&#34;b&#60;c"/);
    assert.equal(hiddenField(res.body, 'iss'), TEST_ISSUER);
    const nonce = /<script nonce="([A-Za-z0-9_-]+)">document\.forms\[0\]\.submit\(\);<\/script>/.exec(res.body)?.[1];
    assert.ok(nonce);
    assert.equal(
      res.headers['content-security-policy'],
      `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; form-action 'self' https://spa.example; frame-ancestors 'none'; base-uri 'none'`,
    );
    assert.equal(res.headers['cache-control'], 'no-store');
    // A session already there: the form_post page comes straight from GET /authorize.
    const again = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { response_mode: 'form_post' })), headers: jar.header() });
    assert.equal(again.statusCode, 200);
    assert.ok(codeRecord(bt, hiddenField(again.body, 'code')));
  } finally {
    await bt.t.close();
  }
});

test('a client name with markup is escaped on every page', async () => {
  const bt = await browserTest();
  try {
    const evil = '<script>alert(1)</script>&"\'';
    await bt.t.addClient({ client_id: 'evil', client_name: evil, token_endpoint_auth_method: 'none', redirect_uris: ['https://evil.example/cb'], grant_types: ['authorization_code'], first_party: false });
    const jar = new CookieJar();
    const p = pkce();
    const params = { response_type: 'code', client_id: 'evil', redirect_uri: 'https://evil.example/cb', scope: 'profile', code_challenge: p.challenge, code_challenge_method: 'S256' };
    const loginPage = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(params), headers: jar.header() });
    const consent = await authorizeAndLogin(bt, jar, params);
    const badRedirect = await bt.t.app.inject({ method: 'GET', url: authorizeUrl({ ...params, redirect_uri: 'https://x.example/' }) });
    for (const res of [loginPage, consent, badRedirect]) {
      assert.ok(!res.body.includes('<script>'), res.body);
      assert.ok(res.body.includes('&#60;script&#62;alert(1)&#60;/script&#62;&#38;&#34;&#39;'), res.body);
    }
  } finally {
    await bt.t.close();
  }
});

test('end to end: the code from the login page is exchanged at /token for tokens about alice', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const p = pkce();
    const res = await authorizeAndLogin(bt, jar, spaParams(p, { scope: 'openid profile', nonce: 'nonce-e2e' }));
    const code = redirectParams(res, SPA_REDIRECT).get('code')!;
    const f = form({ grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, client_id: 'spa', code_verifier: p.verifier });
    const tok = await bt.t.app.inject({ method: 'POST', url: '/token', ...f });
    assert.equal(tok.statusCode, 200, tok.body);
    const body = tok.json<{ access_token: string; id_token: string; token_type: string; scope: string }>();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, 'openid profile');
    const jwks = createLocalJWKSet((await bt.t.app.inject({ method: 'GET', url: '/jwks.json' })).json());
    const at = await jwtVerify(body.access_token, jwks, { issuer: TEST_ISSUER, typ: 'at+jwt', currentDate: new Date(bt.t.clock.now) });
    assert.equal(at.payload.sub, bt.aliceSub);
    assert.equal(at.payload.client_id, 'spa');
    assert.deepEqual(at.payload.amr, ['pwd']);
    const id = decodeJwt(body.id_token);
    assert.equal(id.sub, bt.aliceSub);
    assert.equal(id.aud, 'spa');
    assert.equal(id.nonce, 'nonce-e2e');
    assert.equal(id.auth_time, Math.floor(bt.t.clock.now / 1000));
    assert.equal(id.acr, 'urn:raftauth:acr:pwd');
    // The ID token is a valid id_token_hint for the same user…
    const hinted = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { prompt: 'none', id_token_hint: body.id_token })), headers: jar.header() });
    assert.ok(redirectParams(hinted, SPA_REDIRECT).get('code'), hinted.body);
    // …even after it expired; but an access token is not an ID token.
    bt.t.clock.now += (bt.t.config.idTokenTtlS + 60) * 1000;
    const expired = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { id_token_hint: body.id_token, max_age: '999999' })), headers: jar.header() });
    assert.ok(redirectParams(expired, SPA_REDIRECT).get('code'), expired.body);
    const notId = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { id_token_hint: body.access_token })), headers: jar.header() });
    assert.equal(redirectParams(notId, SPA_REDIRECT).get('error'), 'invalid_request');
    // The code is single use.
    const second = await bt.t.app.inject({ method: 'POST', url: '/token', ...f });
    assert.equal(second.statusCode, 400);
    assert.equal(second.json<{ error: string }>().error, 'invalid_grant');
  } finally {
    await bt.t.close();
  }
});

test('id_token_hint naming another user than the signed-in one asks for login (login_required with prompt=none)', async () => {
  const bt = await browserTest();
  try {
    await bt.t.addUser('bob', 'bob password 123');
    const bobJar = new CookieJar();
    const p = pkce();
    const page = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(p)), headers: bobJar.header() });
    bobJar.take(page);
    const f0 = form({ interaction: hiddenField(page.body, 'interaction'), username: 'bob', password: 'bob password 123' });
    const bobLogin = await bt.t.app.inject({ method: 'POST', url: '/login', headers: { ...f0.headers, ...bobJar.header() }, payload: f0.payload });
    const code = redirectParams(bobLogin, SPA_REDIRECT).get('code')!;
    const tok = await bt.t.app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT, client_id: 'spa', code_verifier: p.verifier }) });
    const bobIdToken = tok.json<{ id_token: string }>().id_token;
    // Alice's browser presents Bob's ID token as the hint.
    const aliceJar = new CookieJar();
    await authorizeAndLogin(bt, aliceJar, spaParams(pkce()));
    const res = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { prompt: 'none', id_token_hint: bobIdToken })), headers: aliceJar.header() });
    assert.equal(redirectParams(res, SPA_REDIRECT).get('error'), 'login_required');
    const page2 = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { id_token_hint: bobIdToken })), headers: aliceJar.header() });
    assert.match(page2.body, /<h1>Sign in<\/h1>/);
  } finally {
    await bt.t.close();
  }
});
