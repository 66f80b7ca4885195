// /authorize request validation (RFC 6749 §4.1.1, §4.1.2.1; RFC 7636; RFC 9207; OIDC Core §3.1.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_ISSUER } from '../../../support/oauth-app.ts';
import { PARTNER_REDIRECT, SPA_REDIRECT, authorizeUrl, browserTest, form, pkce, redirectParams, spaParams } from './helpers.ts';
import type { BrowserTest } from './helpers.ts';

async function get(bt: BrowserTest, url: string) {
  return bt.t.app.inject({ method: 'GET', url });
}

function assertPage(res: Awaited<ReturnType<typeof get>>, status: number, text: RegExp): void {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.headers.location, undefined, 'an error page never redirects');
  assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
  assert.match(res.body, text);
}

test('a missing or unknown client, or a redirect URI not registered, is shown on a page and never redirected', async () => {
  const bt = await browserTest();
  try {
    const p = pkce();
    assertPage(await get(bt, authorizeUrl(spaParams(p, { client_id: undefined }))), 400, /no client_id/);
    assertPage(await get(bt, authorizeUrl(spaParams(p, { client_id: 'nobody' }))), 400, /No application is registered with client_id nobody/);
    // Exact string match (RFC 9700 §4.1.3): a trailing slash, another path, an added query all differ.
    for (const bad of [SPA_REDIRECT + '/', 'https://spa.example/other', SPA_REDIRECT + '?x=1', 'https://evil.example/cb', 'HTTPS://spa.example/cb']) {
      assertPage(await get(bt, authorizeUrl(spaParams(p, { redirect_uri: bad }))), 400, /redirect_uri is not registered/);
    }
    // Omitted: never for an OpenID request (OIDC Core §3.1.2.1) …
    assertPage(await get(bt, authorizeUrl(spaParams(p, { redirect_uri: undefined }))), 400, /must carry redirect_uri/);
    // … nor for a client with several registered (RFC 6749 §3.1.2.3).
    assertPage(await get(bt, authorizeUrl({ response_type: 'code', client_id: 'partner', scope: 'profile', code_challenge: p.challenge, code_challenge_method: 'S256' })), 400, /does not have exactly one/);
    // Duplicated client_id: which one is meant is unknown, so no redirect either.
    assertPage(await get(bt, `${authorizeUrl(spaParams(p))}&client_id=partner`), 400, /more than once/);
    // No error page is a redirect, whatever the other parameters say.
    assertPage(await get(bt, authorizeUrl(spaParams(p, { client_id: 'nobody', response_type: 'token', response_mode: 'form_post' }))), 400, /No application/);
  } finally {
    await bt.t.close();
  }
});

test('a redirect URI omitted by a non-OpenID request of a client with exactly one is that one', async () => {
  const bt = await browserTest();
  try {
    const res = await get(bt, authorizeUrl(spaParams(pkce(), { redirect_uri: undefined, scope: 'profile', response_type: 'token' })));
    // Redirected (the target is known), with the error of the next check.
    const q = redirectParams(res, SPA_REDIRECT);
    assert.equal(q.get('error'), 'unsupported_response_type');
  } finally {
    await bt.t.close();
  }
});

test('every later error is redirected with error, error_description, state and iss', async () => {
  const bt = await browserTest();
  try {
    const p = pkce();
    const cases: [Record<string, string | undefined>, string, RegExp][] = [
      [{ response_type: 'token' }, 'unsupported_response_type', /only response_type=code/],
      [{ response_type: 'code id_token' }, 'unsupported_response_type', /only response_type=code/],
      [{ response_type: undefined }, 'invalid_request', /response_type/],
      [{ scope: 'openid admin' }, 'invalid_scope', /scope admin is not allowed/],
      [{ scope: 'openid  profile' }, 'invalid_request', /space-delimited/],
      [{ code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request', /code_challenge is required for public clients/],
      [{ code_challenge_method: undefined }, 'invalid_request', /missing, which means plain \(RFC 7636 §4.3\), and plain is not allowed/],
      [{ code_challenge_method: 'plain' }, 'invalid_request', /plain is not allowed/],
      [{ code_challenge_method: 'S512' }, 'invalid_request', /S512 is not supported/],
      [{ code_challenge: 'too-short' }, 'invalid_request', /43-character/],
      [{ code_challenge: undefined }, 'invalid_request', /without code_challenge/],
      [{ response_mode: 'fragment' }, 'invalid_request', /fragment is not supported/],
      [{ response_mode: 'web_message' }, 'invalid_request', /web_message is not supported/],
      [{ request: 'eyJhbGciOiJub25lIn0.e30.' }, 'request_not_supported', /request objects/],
      [{ request_uri: 'urn:ietf:params:oauth:request_uri:abc' }, 'request_uri_not_supported', /request_uri/],
      [{ prompt: 'none login' }, 'invalid_request', /prompt=none cannot be combined/],
      [{ prompt: 'create' }, 'invalid_request', /prompt value "create"/],
      [{ max_age: '-1' }, 'invalid_request', /max_age/],
      [{ max_age: '1.5' }, 'invalid_request', /max_age/],
      [{ id_token_hint: 'not.a.jwt' }, 'invalid_request', /id_token_hint/],
      [{ state: 'x'.repeat(5000) }, 'invalid_request', /exceed 4096/],
      // prompt=none without a session (OIDC Core §3.1.2.6).
      [{ prompt: 'none' }, 'login_required', /not signed in/],
    ];
    for (const [extra, error, description] of cases) {
      const res = await get(bt, authorizeUrl(spaParams(p, extra)));
      assert.equal(res.statusCode, 302, `${JSON.stringify(extra)}: ${res.body}`);
      const q = redirectParams(res, SPA_REDIRECT);
      assert.equal(q.get('error'), error, JSON.stringify(extra));
      assert.match(q.get('error_description') ?? '', description, JSON.stringify(extra));
      assert.equal(q.get('state'), extra.state ?? 'st-1', 'state is echoed verbatim');
      assert.equal(q.get('iss'), TEST_ISSUER, 'RFC 9207 iss');
      assert.equal(q.get('code'), null);
    }
    // No state sent: none returned.
    const res = await get(bt, authorizeUrl(spaParams(p, { state: undefined, response_type: 'token' })));
    assert.equal(redirectParams(res, SPA_REDIRECT).has('state'), false);
  } finally {
    await bt.t.close();
  }
});

test('unauthorized_client when the client lacks the authorization_code grant; the redirect keeps its own query', async () => {
  const bt = await browserTest();
  try {
    await bt.t.addClient({ client_id: 'm2m', redirect_uris: ['https://m2m.example/cb?a=1&b=%2F'], grant_types: ['client_credentials'] });
    const p = pkce();
    const res = await get(bt, authorizeUrl({ response_type: 'code', client_id: 'm2m', redirect_uri: 'https://m2m.example/cb?a=1&b=%2F', state: 's t&x', code_challenge: p.challenge, code_challenge_method: 'S256' }));
    // RFC 6749 §3.1.2: the registered query is retained byte for byte.
    const q = redirectParams(res, 'https://m2m.example/cb?a=1&b=%2F');
    assert.equal(q.get('error'), 'unauthorized_client');
    assert.equal(q.get('state'), 's t&x');
    assert.equal(q.get('iss'), TEST_ISSUER);
  } finally {
    await bt.t.close();
  }
});

test('a duplicated parameter is invalid_request, redirected when client and redirect URI are unambiguous', async () => {
  const bt = await browserTest();
  try {
    const p = pkce();
    const res = await get(bt, `${authorizeUrl(spaParams(p))}&scope=email`);
    const q = redirectParams(res, SPA_REDIRECT);
    assert.equal(q.get('error'), 'invalid_request');
    assert.match(q.get('error_description') ?? '', /scope is included more than once/);
    assert.equal(q.get('state'), 'st-1');
  } finally {
    await bt.t.close();
  }
});

test('PKCE: confidential clients too by default; without it only when configured; plain only when allowed', async () => {
  const strict = await browserTest();
  try {
    const res = await get(strict, authorizeUrl({ response_type: 'code', client_id: 'partner', redirect_uri: PARTNER_REDIRECT, scope: 'profile' }));
    assert.equal(redirectParams(res, PARTNER_REDIRECT).get('error'), 'invalid_request');
  } finally {
    await strict.t.close();
  }
  const lax = await browserTest({ requirePkceForConfidential: false, allowPlainPkce: true });
  try {
    // Confidential without PKCE, and public with a method-less (plain) challenge: both go on to the login page.
    const a = await get(lax, authorizeUrl({ response_type: 'code', client_id: 'partner', redirect_uri: PARTNER_REDIRECT, scope: 'profile' }));
    assert.equal(a.statusCode, 200, a.body);
    assert.match(a.body, /Sign in/);
    const b = await get(lax, authorizeUrl(spaParams(pkce(), { code_challenge: 'a'.repeat(43), code_challenge_method: undefined })));
    assert.equal(b.statusCode, 200, b.body);
    // The public client still needs a challenge.
    const c = await get(lax, authorizeUrl(spaParams(pkce(), { code_challenge: undefined, code_challenge_method: undefined })));
    assert.equal(redirectParams(c, SPA_REDIRECT).get('error'), 'invalid_request');
  } finally {
    await lax.t.close();
  }
});

test('form_post errors are an auto-submitting form to the redirect URI', async () => {
  const bt = await browserTest();
  try {
    const res = await get(bt, authorizeUrl(spaParams(pkce(), { response_mode: 'form_post', scope: 'openid admin' })));
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers.location, undefined);
    assert.match(res.body, new RegExp(`<form method="post" action="${SPA_REDIRECT}">`));
    assert.match(res.body, /name="error" value="invalid_scope"/);
    assert.match(res.body, /name="state" value="st-1"/);
    assert.ok(res.body.includes(`name="iss" value="${TEST_ISSUER}"`), res.body);
  } finally {
    await bt.t.close();
  }
});

test('POST /authorize takes the same parameters as a form; other content types get a page', async () => {
  const bt = await browserTest();
  try {
    const f = form(spaParams(pkce()) as Record<string, string>);
    const res = await bt.t.app.inject({ method: 'POST', url: '/authorize', headers: f.headers, payload: f.payload });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.body, /Sign in to continue to <strong>Single Page App<\/strong>/);
    const bad = await bt.t.app.inject({ method: 'POST', url: '/authorize', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ client_id: 'spa' }) });
    assertPage(bad, 400, /must be application\/x-www-form-urlencoded/);
    const err = await bt.t.app.inject({ method: 'POST', url: '/authorize', ...form({ ...(spaParams(pkce()) as Record<string, string>), response_type: 'token' }) });
    // A redirect answering a POST is 303 (RFC 9700 §4.12).
    assert.equal(err.statusCode, 303);
    assert.equal(redirectParams(err, SPA_REDIRECT).get('error'), 'unsupported_response_type');
  } finally {
    await bt.t.close();
  }
});
