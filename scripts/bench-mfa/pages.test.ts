// The page readers against the real renderers (src/oauth/mfa-pages.ts, pages.ts), served by a bare
// fastify app: if a page changes shape, the benchmark's set-up breaks here first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { FastifyReply } from 'fastify';
import { formPostPage } from '../../src/oauth/pages.ts';
import { MFA_PATHS, totpEnrollPage, totpPage, webauthnPage } from '../../src/oauth/mfa-pages.ts';
import type { MfaPageCommon } from '../../src/oauth/mfa-pages.ts';
import { formFor, hasAuthorizationCode, pageTitle, refusalReason, totpSecretOf, webauthnOptionsOf } from './pages.ts';

const common: MfaPageCommon = { path: (p) => p, interaction: 'sealed&"<x>', csrf: 'c-s-r-f', userLabel: 'Bench <User>', formActions: [] };

async function render(page: (reply: FastifyReply) => FastifyReply): Promise<{ status: number; body: string }> {
  const app = Fastify();
  app.get('/', (_req, reply) => page(reply));
  try {
    const res = await app.inject({ method: 'GET', url: '/' });
    return { status: res.statusCode, body: res.body };
  } finally {
    await app.close();
  }
}

test('the TOTP page: title, its form by action with the hidden fields decoded, not a code', async () => {
  const p = await render((r) => totpPage(r, { ...common, alternatives: ['recovery'] }));
  assert.equal(pageTitle(p.body), 'Two-step verification');
  const f = formFor(p.body, MFA_PATHS.totp);
  assert.ok(f);
  assert.equal(f.fields.interaction, 'sealed&"<x>');
  assert.equal(f.fields.csrf, 'c-s-r-f');
  assert.equal(f.fields.code, '');
  // The other form on the page (method choice) is found by its own action, not confused with this one.
  assert.equal(formFor(p.body, MFA_PATHS.choose)?.fields.csrf, 'c-s-r-f');
  assert.equal(formFor(p.body, MFA_PATHS.webauthn), null);
  assert.equal(hasAuthorizationCode(p.body), false);
});

test('the TOTP enrollment page: the secret without its grouping, and the sealed enrollment field', async () => {
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const p = await render((r) => totpEnrollPage(r, { ...common, qrSvg: '<svg></svg>', secret, enrollment: 'sealed-enrollment' }));
  assert.equal(totpSecretOf(p.body), secret);
  assert.equal(formFor(p.body, MFA_PATHS.enrollTotpConfirm)?.fields.enrollment, 'sealed-enrollment');
});

test('a WebAuthn page: the options from the JSON block (with < escaped), the form to post the answer to', async () => {
  const options = { challenge: 'abc', rpId: '127.0.0.1', allowCredentials: [{ id: 'xyz', type: 'public-key' }], note: '</script><b>' };
  const p = await render((r) => webauthnPage(r, { ...common, mode: 'authenticate', options, alternatives: [] }));
  assert.deepEqual(webauthnOptionsOf(p.body), options);
  const f = formFor(p.body, MFA_PATHS.webauthn);
  assert.ok(f);
  assert.equal(f.fields.response, '');
  assert.equal(webauthnOptionsOf('<p>no block</p>'), null);
  assert.equal(webauthnOptionsOf('<script type="application/json" id="webauthn-options">[1]</script>'), null, 'not an object');
});

test('hasAuthorizationCode: the form_post response with a code, not one with an error', async () => {
  const ok = await render((r) => formPostPage(r, 'http://127.0.0.1:9/cb', { code: 'the-code', state: 's', iss: 'http://127.0.0.1:1' }, 'http://127.0.0.1:9'));
  assert.equal(ok.status, 200);
  assert.equal(hasAuthorizationCode(ok.body), true);
  const err = await render((r) => formPostPage(r, 'http://127.0.0.1:9/cb', { error: 'access_denied', state: 's' }, 'http://127.0.0.1:9'));
  assert.equal(hasAuthorizationCode(err.body), false);
  const both = await render((r) => formPostPage(r, 'http://127.0.0.1:9/cb', { code: 'c', error: 'server_error' }, 'http://127.0.0.1:9'));
  assert.equal(hasAuthorizationCode(both.body), false);
});

test('refusalReason names the refusals of src/oauth/mfa.ts from the re-shown page', async () => {
  const withError = (error: string, status: number) => render((r) => totpPage(r, { ...common, alternatives: [], error, status }));
  const replay = await withError('That code was already used. Wait for the next code from your app.', 400);
  assert.equal(refusalReason(replay.status, replay.body), 'totp_replay');
  const invalid = await withError('That code is not valid. Check your app and try again.', 400);
  assert.equal(refusalReason(invalid.status, invalid.body), 'totp_invalid');
  const throttled = await withError('Too many failed attempts. Try again.', 429);
  assert.equal(refusalReason(throttled.status, throttled.body), 'throttled');
  const locked = await withError('Too many failed attempts: this account is locked.', 429);
  assert.equal(refusalReason(locked.status, locked.body), 'locked');
  assert.equal(refusalReason(403, '<h1>Request refused</h1>'), 'HTTP 403 Request refused');
  assert.equal(refusalReason(502, ''), 'HTTP 502');
});
