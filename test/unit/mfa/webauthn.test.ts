// The WebAuthn ceremony layer (src/mfa/webauthn.ts) against real authenticator responses from a
// software authenticator: options, verification, and every way a response must be refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomToken } from '../../../src/crypto/tokens.ts';
import {
  WEBAUTHN_CHALLENGE_TTL_MS,
  authenticationOptions,
  registrationOptions,
  responseChallenge,
  responseCredentialId,
  verifyAuthentication,
  verifyRegistration,
  webauthnUserHandleB64,
} from '../../../src/mfa/webauthn.ts';
import type { MfaConfig } from '../../../src/mfa/config.ts';
import { getFactor, registeredFactors } from '../../../src/mfa/index.ts';
import { SoftAuthenticator } from './soft-authenticator.ts';

const CFG: MfaConfig = { rpId: 'login.example.com', rpName: 'Example Login', origins: ['https://login.example.com', 'https://login.example.com:8443'] };
const ORIGIN = 'https://login.example.com';
const USER = { sub: 'user-123', name: 'alice', displayName: 'Alice Liddell' };

async function registered(auth = new SoftAuthenticator(ORIGIN)) {
  const challenge = randomToken();
  const options = await registrationOptions(CFG, USER, challenge, []);
  const response = auth.create(options);
  const v = await verifyRegistration(CFG, response, challenge);
  if (!v.ok) assert.fail(v.message);
  return { auth, credential: { ...v.credential }, v };
}

test('registration options: RP, user handle (not the sub), our challenge, no attestation, passkeys and UV preferred, exclusions', async () => {
  const challenge = randomToken();
  const o = await registrationOptions(CFG, USER, challenge, [{ id: 'AAAA', transports: ['usb', 'bogus'] }]);
  assert.deepEqual(o.rp, { name: 'Example Login', id: 'login.example.com' });
  assert.equal(o.challenge, challenge);
  assert.equal(o.user.id, webauthnUserHandleB64(USER.sub));
  assert.notEqual(Buffer.from(o.user.id, 'base64url').toString('utf8'), USER.sub);
  assert.equal(Buffer.from(o.user.id, 'base64url').length, 32);
  assert.equal(o.user.name, 'alice');
  assert.equal(o.user.displayName, 'Alice Liddell');
  assert.equal(o.attestation, 'none');
  assert.equal(o.timeout, WEBAUTHN_CHALLENGE_TTL_MS);
  assert.equal(o.authenticatorSelection?.residentKey, 'preferred');
  assert.equal(o.authenticatorSelection?.userVerification, 'preferred');
  assert.deepEqual(o.excludeCredentials, [{ id: 'AAAA', transports: ['usb'], type: 'public-key' }]);
  assert.equal(o.extensions?.credProps, true);
  assert.ok(o.pubKeyCredParams.some((p) => p.alg === -7), 'ES256 offered');
});

test('authentication options: allowCredentials for a known user, none for a passkey login', async () => {
  const challenge = randomToken();
  const known = await authenticationOptions(CFG, challenge, [{ id: 'AAAA', transports: ['internal'] }]);
  assert.equal(known.challenge, challenge);
  assert.equal(known.rpId, CFG.rpId);
  assert.equal(known.userVerification, 'preferred');
  assert.deepEqual(known.allowCredentials, [{ id: 'AAAA', transports: ['internal'], type: 'public-key' }]);
  const passkey = await authenticationOptions(CFG, challenge, null);
  assert.equal(passkey.allowCredentials, undefined);
});

test('a registration and an assertion from a real (software) authenticator verify; UV is reported', async () => {
  const { auth, credential, v } = await registered();
  assert.equal(v.userVerified, true);
  assert.equal(credential.discoverable, true);
  assert.deepEqual(credential.transports, ['usb']);
  assert.equal(credential.counter, 0);
  assert.equal(credential.id, b64(auth.credentials[0]!.id));
  const challenge = randomToken();
  const r = auth.get(await authenticationOptions(CFG, challenge, [credential]));
  assert.deepEqual(await verifyAuthentication(CFG, r, challenge, credential, USER.sub, true), { ok: true, newCounter: 1, userVerified: true });
  // Presence without verification: accepted (UV preferred), reported as not verified.
  const c2 = randomToken();
  const r2 = auth.get(await authenticationOptions(CFG, c2, [credential]), { userVerified: false });
  assert.deepEqual(await verifyAuthentication(CFG, r2, c2, credential, USER.sub, true), { ok: true, newCounter: 2, userVerified: false });
  // The second allowed origin works too.
  const c3 = randomToken();
  const r3 = auth.get(await authenticationOptions(CFG, c3, [credential]), { origin: 'https://login.example.com:8443' });
  assert.equal((await verifyAuthentication(CFG, r3, c3, credential, USER.sub, true)).ok, true);
});

test('a non-resident credential is recorded as not discoverable', async () => {
  const auth = new SoftAuthenticator(ORIGIN);
  const challenge = randomToken();
  const options = await registrationOptions(CFG, USER, challenge, []);
  const response = auth.create({ ...options, authenticatorSelection: { ...options.authenticatorSelection, residentKey: 'discouraged' } });
  const v = await verifyRegistration(CFG, response, challenge);
  assert.equal(v.ok && v.credential.discoverable, false);
});

test('registration responses are refused for a wrong origin, RP ID, challenge, type, or without user presence', async () => {
  const cases: [string, Parameters<SoftAuthenticator['create']>[1], RegExp][] = [
    ['origin', { origin: 'https://evil.example.net' }, /origin/i],
    ['origin (scheme)', { origin: 'http://login.example.com' }, /origin/i],
    ['RP ID', { rpId: 'example.com' }, /RP ID/i],
    ['challenge', { challenge: randomToken() }, /challenge/i],
    ['type', { type: 'webauthn.get' }, /type/i],
    ['user presence', { userPresent: false }, /present/i],
  ];
  for (const [what, o, re] of cases) {
    const challenge = randomToken();
    const options = await registrationOptions(CFG, USER, challenge, []);
    const v = await verifyRegistration(CFG, new SoftAuthenticator(ORIGIN).create(options, o), challenge);
    assert.equal(v.ok, false, what);
    if (!v.ok) assert.match(v.message, re, what);
  }
});

test('assertions are refused for a wrong origin, RP ID, challenge, type, a bad signature, or a foreign user handle', async () => {
  const { auth, credential } = await registered();
  const cases: [string, Parameters<SoftAuthenticator['get']>[1], RegExp][] = [
    ['origin', { origin: 'https://login.example.com.evil.net' }, /origin/i],
    ['RP ID', { rpId: 'evil.example.net' }, /RP ID/i],
    ['challenge', { challenge: randomToken() }, /challenge/i],
    ['type', { type: 'webauthn.create' }, /type/i],
    ['signature', { badSignature: true }, /signature/i],
    ['user presence', { userPresent: false }, /present/i],
    ['user handle', { userHandle: webauthnUserHandleB64('someone-else') }, /user handle/i],
  ];
  for (const [what, o, re] of cases) {
    const challenge = randomToken();
    const r = auth.get(await authenticationOptions(CFG, challenge, [credential]), o);
    const v = await verifyAuthentication(CFG, r, challenge, credential, USER.sub, true);
    assert.equal(v.ok, false, what);
    if (!v.ok) assert.match(v.message, re, what);
  }
  // Another credential's public key does not verify this one's signature.
  const other = await registered();
  const challenge = randomToken();
  const r = auth.get(await authenticationOptions(CFG, challenge, [credential]));
  assert.equal((await verifyAuthentication(CFG, r, challenge, other.credential, USER.sub, true)).ok, false);
});

test('a passkey login (no user identified first) needs the user handle, and it must be the owner\u2019s', async () => {
  const { auth, credential } = await registered();
  const c1 = randomToken();
  const r1 = auth.get(await authenticationOptions(CFG, c1, null));
  assert.equal(r1.response.userHandle, webauthnUserHandleB64(USER.sub));
  assert.equal((await verifyAuthentication(CFG, r1, c1, credential, USER.sub, false)).ok, true);
  const c2 = randomToken();
  const r2 = auth.get(await authenticationOptions(CFG, c2, null), { userHandle: null });
  const v2 = await verifyAuthentication(CFG, r2, c2, credential, USER.sub, false);
  assert.equal(v2.ok, false);
  if (!v2.ok) assert.match(v2.message, /user handle/);
  const c3 = randomToken();
  const r3 = auth.get(await authenticationOptions(CFG, c3, null));
  assert.equal((await verifyAuthentication(CFG, r3, c3, credential, 'another-sub', false)).ok, false);
});

test('the library does not decide counters (apply does): a regressed counter still verifies here', async () => {
  const { auth, credential } = await registered();
  const challenge = randomToken();
  const r = auth.get(await authenticationOptions(CFG, challenge, [credential]), { counter: 0 });
  assert.deepEqual(await verifyAuthentication(CFG, r, challenge, { ...credential }, USER.sub, true), { ok: true, newCounter: 0, userVerified: true });
});

test('responseChallenge and responseCredentialId accept only well-formed input', () => {
  const cdj = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const ch = randomToken();
  assert.equal(responseChallenge({ response: { clientDataJSON: cdj({ challenge: ch }) } }), ch);
  for (const bad of [null, 'x', {}, { response: null }, { response: { clientDataJSON: 5 } }, { response: { clientDataJSON: 'not json' } }, { response: { clientDataJSON: cdj({ challenge: 'short' }) } }, { response: { clientDataJSON: cdj({ challenge: 'a/b+c=' + 'x'.repeat(20) }) } }, { response: { clientDataJSON: 'A'.repeat(9000) } }]) {
    assert.equal(responseChallenge(bad), null, JSON.stringify(bad)?.slice(0, 80));
  }
  assert.equal(responseCredentialId({ id: 'abc_-' }), 'abc_-');
  for (const bad of [null, {}, { id: '' }, { id: 'a+b' }, { id: 'a'.repeat(1365) }, { id: 7 }]) assert.equal(responseCredentialId(bad), null);
});

test('factor registry: each factor once, RFC 8176 amr values', () => {
  assert.deepEqual(registeredFactors().map((f) => f.type).sort(), ['recovery', 'totp', 'webauthn']);
  assert.deepEqual(getFactor('totp').amrFor({}), ['otp']);
  assert.deepEqual(getFactor('webauthn').amrFor({ userVerified: true }), ['hwk', 'user']);
  assert.deepEqual(getFactor('webauthn').amrFor({ userVerified: false }), ['hwk']);
  assert.deepEqual(getFactor('recovery').amrFor({}), []);
  assert.equal(getFactor('webauthn').phishingResistant, true);
  assert.equal(getFactor('totp').phishingResistant, false);
});

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}
