// Issue 13, defect 4: the MFA pages offered security-key (WebAuthn) enrolment on an issuer where
// browsers cannot run WebAuthn (an IP-address RP ID such as 127.0.0.1, or plain http on a host
// that is not localhost): the ceremony ended in "That did not work (SecurityError)" with no way
// forward. Where WebAuthn cannot work, the pages must not offer it and must say why; where it can
// (https, http://localhost), they offer it as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { webauthnUnavailable } from '../../../../src/mfa/config.ts';
import type { MfaStatus } from '../../../../src/mfa/service.ts';
import { planMfa } from '../../../../src/oauth/mfa-policy.ts';
import { CHALLENGES_KEYSPACE } from '../../../../src/state/mfa.ts';
import type { BrowserTest } from './helpers.ts';
import { CookieJar, authorizeAndLogin, browserTest, form, hiddenField, pkce, spaParams } from './helpers.ts';

const status = (f: Partial<MfaStatus['factors']>, required = false): MfaStatus => ({ required, factors: { totp: false, webauthn: 0, recovery: 0, ...f } });

test('webauthnUnavailable: a domain RP ID and a secure-context origin (https, http://localhost) are needed; otherwise it says why', () => {
  assert.equal(webauthnUnavailable({ rpId: 'auth.example.com', origins: ['https://auth.example.com'] }), null);
  assert.equal(webauthnUnavailable({ rpId: 'localhost', origins: ['http://localhost:8080'] }), null);
  assert.equal(webauthnUnavailable({ rpId: 'localhost', origins: ['http://app.localhost:8080'] }), null);
  const ip = webauthnUnavailable({ rpId: '127.0.0.1', origins: ['http://127.0.0.1:8080'] });
  assert.match(ip ?? '', /cannot be used here/);
  assert.match(ip ?? '', /IP address \(127\.0\.0\.1\)/);
  const plain = webauthnUnavailable({ rpId: 'auth.example.com', origins: ['http://auth.example.com'] });
  assert.match(plain ?? '', /only on https sites or http:\/\/localhost/);
  assert.match(plain ?? '', /http:\/\/auth\.example\.com/);
});

test('planMfa without WebAuthn: enrolment offers no security key, verification skips credentials it cannot use, and a security-key-only path is a dead end said as such', () => {
  // No factor yet: enrol (TOTP only, the page explains); level 2 would need a security key.
  assert.deepEqual(planMfa(status({}), 1, 0, false), { kind: 'enroll', webauthnOnly: false });
  assert.deepEqual(planMfa(status({}), 2, 0, false), { kind: 'webauthn_unavailable' });
  // A user with a key and an app: the app only.
  assert.deepEqual(planMfa(status({ webauthn: 1, totp: true, recovery: 10 }), 1, 0, false), { kind: 'verify', methods: ['totp', 'recovery'] });
  assert.deepEqual(planMfa(status({ webauthn: 1, totp: true, recovery: 10 }), 1, 0, true), { kind: 'verify', methods: ['webauthn', 'totp', 'recovery'] });
  // Only a key, no recovery code left: nothing usable here.
  assert.deepEqual(planMfa(status({ webauthn: 1 }), 1, 0, false), { kind: 'webauthn_unavailable' });
  // Level 2 (phishing-resistant) with a key registered, or a key to register: impossible here.
  assert.deepEqual(planMfa(status({ webauthn: 1, totp: true }), 2, 1, false), { kind: 'webauthn_unavailable' });
  assert.deepEqual(planMfa(status({ totp: true }), 2, 1, false), { kind: 'webauthn_unavailable' });
  assert.deepEqual(planMfa(status({ totp: true }), 2, 1, true), { kind: 'register_webauthn' });
});

async function post(bt: BrowserTest, jar: CookieJar, url: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  const f = form(fields);
  const res = await bt.t.app.inject({ method: 'POST', url, headers: { ...f.headers, ...jar.header() }, payload: f.payload });
  jar.take(res);
  return res;
}

const h1 = (res: LightMyRequestResponse): string => /<h1>([^<]*)<\/h1>/.exec(res.body)?.[1] ?? `(no h1, status ${res.statusCode})`;

/** An issuer on 127.0.0.1, as `npm start` used to make: no secure context, an IP address as RP ID. */
const IP_ISSUER = { issuer: 'http://127.0.0.1:8080', mfa: { rpId: '127.0.0.1', rpName: 'raftauth', origins: ['http://127.0.0.1:8080'], requiredScopes: ['email'] } };

test('on an http://127.0.0.1 issuer the enrolment page offers the authenticator app only and says why; the security-key routes refuse with the same reason', async () => {
  const bt = await browserTest(IP_ISSUER);
  try {
    const jar = new CookieJar();
    const page = await authorizeAndLogin(bt, jar, spaParams(pkce(), { scope: 'openid email' }));
    assert.equal(page.statusCode, 200, page.body);
    assert.equal(h1(page), 'Set up two-step verification');
    assert.match(page.body, /action="\/mfa\/enroll\/totp"/);
    assert.doesNotMatch(page.body, /\/mfa\/enroll\/webauthn/);
    assert.doesNotMatch(page.body, /Register a security key/);
    assert.match(page.body, /Security keys and passkeys cannot be used here/);
    const fields = { interaction: hiddenField(page.body, 'interaction'), csrf: hiddenField(page.body, 'csrf') };
    // Posting the registration form anyway (an old page, a crafted request): refused, no challenge written.
    for (const path of ['/mfa/enroll/webauthn', '/mfa/enroll/webauthn/finish']) {
      const res = await post(bt, jar, path, { ...fields, response: '{}' });
      assert.equal(res.statusCode, 400, `${path}: ${res.body}`);
      assert.doesNotMatch(res.body, /id="webauthn-options"/);
      assert.match(res.body, /Security keys and passkeys cannot be used here/);
    }
    assert.equal(bt.t.node.entries(CHALLENGES_KEYSPACE).length, 0, 'no WebAuthn challenge written');
  } finally {
    await bt.t.close();
  }
});

test('on an http://127.0.0.1 issuer a request that needs a security key (acr_values phr) gets a page saying it cannot work here, not a ceremony that fails', async () => {
  const bt = await browserTest(IP_ISSUER);
  try {
    const page = await authorizeAndLogin(bt, new CookieJar(), spaParams(pkce(), { acr_values: 'urn:raftauth:acr:phr' }));
    assert.equal(page.statusCode, 400, page.body);
    assert.equal(h1(page), 'Security key needed');
    assert.match(page.body, /asks for a sign-in with a security key or passkey/);
    assert.match(page.body, /Security keys and passkeys cannot be used here/);
    assert.doesNotMatch(page.body, /id="webauthn-options"|<script/);
    assert.equal(bt.t.node.entries(CHALLENGES_KEYSPACE).length, 0, 'no WebAuthn challenge written');
  } finally {
    await bt.t.close();
  }
});

test('on an http://localhost issuer (what npm start uses) the enrolment page offers both ways, without the explanation', async () => {
  const bt = await browserTest({ issuer: 'http://localhost:8080', mfa: { rpId: 'localhost', rpName: 'raftauth', origins: ['http://localhost:8080'], requiredScopes: ['email'] } });
  try {
    const page = await authorizeAndLogin(bt, new CookieJar(), spaParams(pkce(), { scope: 'openid email' }));
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /action="\/mfa\/enroll\/totp"/);
    assert.match(page.body, /action="\/mfa\/enroll\/webauthn"/);
    assert.doesNotMatch(page.body, /cannot be used here/);
  } finally {
    await bt.t.close();
  }
});
