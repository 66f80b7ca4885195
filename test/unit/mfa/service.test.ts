// The MFA service (src/mfa/service.ts) over oauthTestApp's node: the real domains, sealing with the
// bootstrapped data key, a settable clock. TOTP enrollment and verification (skew, replay,
// expiry, throttling, lockout), WebAuthn ceremonies (reused and expired challenges, wrong origin,
// cloned authenticator, passkey login), recovery codes, admin functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { oauthTestApp } from '../../support/oauth-app.ts';
import type { TestOAuth } from '../../support/oauth-app.ts';
import { CryptoRuntime } from '../../../src/crypto/runtime.ts';
import { ContractError } from '../../../src/state/contract.ts';
import type { OAuthContext } from '../../../src/oauth/context.ts';
import { THROTTLE } from '../../../src/state/mfa-ops.ts';
import { AUDIT_KEYSPACE } from '../../../src/state/audit.ts';
import { unpackValue } from '../../../src/state/command.ts';
import type { AuditRecord } from '../../../src/state/audit-ops.ts';
import { TOTP_KEYSPACE } from '../../../src/state/mfa.ts';
import { TOTP_PERIOD_S, totpCodeAt, totpStep } from '../../../src/mfa/totp.ts';
import { WEBAUTHN_CHALLENGE_TTL_MS } from '../../../src/mfa/webauthn.ts';
import type { MfaConfig } from '../../../src/mfa/config.ts';
import * as mfa from '../../../src/mfa/index.ts';
import { SoftAuthenticator } from './soft-authenticator.ts';

const META = { ip: '198.51.100.20' };
const STEP_MS = TOTP_PERIOD_S * 1000;
const CFG: MfaConfig = { rpId: 'login.example.com', rpName: 'Example', origins: ['https://login.example.com'] };
const ORIGIN = 'https://login.example.com';

async function setup(): Promise<{ t: TestOAuth; ctx: OAuthContext; audits: () => AuditRecord[] }> {
  const t = await oauthTestApp();
  const ctx: OAuthContext = {
    node: t.node,
    cache: t.cache.local,
    crypto: new CryptoRuntime(t.cache.local, t.master),
    config: t.config,
    log: pino({ level: 'silent' }),
    now: () => t.clock.now,
    requestTimeoutMs: 1_000,
  };
  const audits = (): AuditRecord[] => t.node.entries(AUDIT_KEYSPACE).map(([, v]) => unpackValue<AuditRecord>(v));
  return { t, ctx, audits };
}

// ---------------------------------------------------------------------------------------------
// TOTP

test('TOTP enrollment: sealed secret, URI and QR; the first code confirms; replays, skew and expiry', async () => {
  const { t, ctx, audits } = await setup();
  try {
    const e = await mfa.startTotpEnrollment(ctx, 'alice', 'alice', META);
    assert.match(e.secret, /^[A-Z2-7]{32}$/);
    assert.ok(e.uri.startsWith('otpauth://totp/localhost:alice?'), e.uri);
    assert.match(e.qrSvg, /^<svg/);
    // The secret is not in state in clear (DESIGN principle 5).
    const stored = t.node.entries(TOTP_KEYSPACE);
    assert.equal(stored.length, 1);
    assert.ok(!Buffer.from(stored[0]![1]).includes(Buffer.from(e.secret)), 'secret sealed');
    assert.deepEqual((await mfa.mfaStatus(ctx, 'alice')).factors, { totp: false, webauthn: 0, recovery: 0 });

    const s = totpStep(t.clock.now);
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s), META), { ok: true, enrolled: true });
    assert.deepEqual((await mfa.mfaStatus(ctx, 'alice')).factors, { totp: true, webauthn: 0, recovery: 0 });
    // The same code again (another node, a shoulder surfer): refused.
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s), META), { ok: false, reason: 'replay' });
    // A phone one step ahead: accepted; after it, the code of the current step is a replay.
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s + 1), META), { ok: true, enrolled: false });
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s), META), { ok: false, reason: 'replay' });
    // Two steps of skew either way: not a code.
    t.clock.now += 3 * STEP_MS;
    const s3 = totpStep(t.clock.now);
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s3 + 2), META), { ok: false, reason: 'invalid' });
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s3 - 2), META), { ok: false, reason: 'invalid' });
    // An expired code (from three steps ago).
    const late = await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s + 1), META);
    // Four failures since the last success (a replay, three wrong codes): the fourth starts the backoff.
    assert.deepEqual(late, { ok: false, reason: 'invalid', retryAt: t.clock.now + THROTTLE.baseBackoffMs });
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s3 - 1), META), { ok: false, reason: 'throttled', retryAt: late.ok ? 0 : late.retryAt });
    t.clock.now = late.ok ? 0 : late.retryAt!;
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', totpCodeAt(e.secret, s3 - 1), META), { ok: true, enrolled: false });
    assert.equal((await mfa.listFactors(ctx, 'alice')).lock.failures, 0, 'a success clears the TOTP counter');
    // Once confirmed, enrollment is refused until the factor is removed.
    await assert.rejects(mfa.startTotpEnrollment(ctx, 'alice', 'alice', META), (err: unknown) => err instanceof ContractError && err.kind === 'refused' && err.code === 'ALREADY_EXISTS');
    assert.equal(await mfa.removeTotp(ctx, 'alice', META), true);
    assert.deepEqual(await mfa.verifyTotp(ctx, 'alice', '123456', META), { ok: false, reason: 'no_factor' });
    const types = audits().map((r) => r.type);
    assert.deepEqual(types.filter((x) => x.startsWith('mfa.')), [
      'mfa.enrolled',
      'mfa.replay_refused',
      'mfa.verified',
      'mfa.replay_refused',
      'mfa.failed',
      'mfa.failed',
      'mfa.failed',
      'mfa.verified',
      'mfa.reset',
    ]);
    assert.ok(audits().every((r) => r.ip === META.ip));
  } finally {
    await t.close();
  }
});

test('TOTP throttling: backoff after the free failures (even a right code waits), lockout, unlock', async () => {
  const { t, ctx, audits } = await setup();
  try {
    const e = await mfa.startTotpEnrollment(ctx, 'bob', 'bob', META);
    const right = (): string => totpCodeAt(e.secret, totpStep(t.clock.now));
    const wrong = (): string => String((Number(right()) + 1) % 1_000_000).padStart(6, '0');
    for (let i = 0; i < THROTTLE.freeFailures; i++) assert.deepEqual(await mfa.verifyTotp(ctx, 'bob', wrong(), META), { ok: false, reason: 'invalid' });
    assert.deepEqual(await mfa.verifyTotp(ctx, 'bob', wrong(), META), { ok: false, reason: 'invalid', retryAt: t.clock.now + THROTTLE.baseBackoffMs });
    // Throttled: the code is not even looked at.
    assert.deepEqual(await mfa.verifyTotp(ctx, 'bob', right(), META), { ok: false, reason: 'throttled', retryAt: t.clock.now + THROTTLE.baseBackoffMs });
    t.clock.now += THROTTLE.baseBackoffMs;
    // Keep failing until the lock (waiting out each backoff).
    let r: Awaited<ReturnType<typeof mfa.verifyTotp>> = { ok: true, enrolled: false };
    for (let i = THROTTLE.freeFailures + 1; i < THROTTLE.lockAfterFailures; i++) {
      r = await mfa.verifyTotp(ctx, 'bob', wrong(), META);
      t.clock.now += THROTTLE.maxBackoffMs;
    }
    assert.equal(r.ok === false && r.reason, 'locked');
    assert.deepEqual(await mfa.verifyTotp(ctx, 'bob', right(), META), { ok: false, reason: 'locked', retryAt: r.ok === false ? r.retryAt : 0 });
    const listed = await mfa.listFactors(ctx, 'bob');
    assert.equal(listed.lock.lockedUntil, r.ok === false ? r.retryAt : null);
    assert.equal(audits().filter((x) => x.type === 'user.locked').length, 1);
    // The password is locked as well (one lock per user).
    assert.equal((await mfa.checkThrottle(ctx, 'bob', 'password', META)).ok, false);
    assert.deepEqual(await mfa.unlockUser(ctx, 'bob', { ip: '10.1.1.1' }), { wasLocked: true });
    assert.deepEqual(await mfa.verifyTotp(ctx, 'bob', right(), META), { ok: true, enrolled: true });
    assert.equal((await mfa.listFactors(ctx, 'bob')).lock.lockedUntil, null);
  } finally {
    await t.close();
  }
});

test('concurrent TOTP attempts: each guess of a burst is counted before any is answered; past the free failures the rest are refused unevaluated; one code is accepted once', async () => {
  const { t, ctx } = await setup();
  try {
    const e = await mfa.startTotpEnrollment(ctx, 'ivan', 'ivan', META);
    const right = totpCodeAt(e.secret, totpStep(t.clock.now));
    assert.deepEqual(await mfa.verifyTotp(ctx, 'ivan', right, META), { ok: true, enrolled: true });
    t.clock.now += STEP_MS;
    const now = totpCodeAt(e.secret, totpStep(t.clock.now));
    // The same right code sent twice at the same moment (two nodes, a double submit): once.
    const twice = await Promise.all([mfa.verifyTotp(ctx, 'ivan', now, META), mfa.verifyTotp(ctx, 'ivan', now, META)]);
    assert.deepEqual(twice.map((r) => (r.ok ? 'ok' : r.reason)).sort(), ['ok', 'replay']);
    t.clock.now += STEP_MS;
    const next = totpCodeAt(e.secret, totpStep(t.clock.now));
    // Fifty wrong guesses at once: one totp.verify each, decided in log order. The replay above
    // was the first failure; the free failures and the one that starts the backoff are
    // evaluated, every later one is refused without evaluation (test/unit/state/mfa.test.ts has
    // a right code inside such a burst, in a fixed log order).
    const guesses = Array.from({ length: 50 }, (_, i) => String((Number(next) + 1 + i) % 1_000_000).padStart(6, '0'));
    const results = await Promise.all(guesses.map((g) => mfa.verifyTotp(ctx, 'ivan', g, META)));
    const evaluated = THROTTLE.freeFailures + 1 - 1;
    assert.equal(results.filter((r) => !r.ok && r.reason === 'invalid').length, evaluated);
    assert.equal(results.filter((r) => !r.ok && r.reason === 'throttled').length, 50 - evaluated);
    assert.deepEqual(await mfa.verifyTotp(ctx, 'ivan', next, META), { ok: false, reason: 'throttled', retryAt: t.clock.now + THROTTLE.baseBackoffMs });
    assert.equal((await mfa.listFactors(ctx, 'ivan')).lock.failures, THROTTLE.freeFailures + 1);
  } finally {
    await t.close();
  }
});

test('verifyTotp: one replicated write per attempt; a factor read before a re-enrollment is read again, not matched against the old secret', async () => {
  const { t, ctx } = await setup();
  try {
    const old = await mfa.startTotpEnrollment(ctx, 'jill', 'jill', META);
    const stale = (await mfa.mfaFactors(ctx, 'jill')).totp;
    const ops = (): string[] => t.node.log.map((e) => `${e.domain} ${e.op}`);
    // Re-enrolled (a new QR code) after the form's read; createdAt differs (leader time moved on).
    t.clock.now += 1;
    const e = await mfa.startTotpEnrollment(ctx, 'jill', 'jill', META);
    const from = t.node.log.length;
    // The old secret's code, matched against the stale factor: apply refuses it (CONFLICT), the
    // service reads again and the code is no match for the current secret: a counted failure.
    const s = totpStep(t.clock.now);
    assert.deepEqual(await mfa.verifyTotp(ctx, 'jill', totpCodeAt(old.secret, s), META, stale), { ok: false, reason: 'invalid' });
    assert.deepEqual(ops().slice(from), ['mfa totp.verify', 'mfa totp.verify']);
    assert.equal((await mfa.listFactors(ctx, 'jill')).lock.failures, 1);
    assert.equal((await mfa.listFactors(ctx, 'jill')).totp?.confirmed, false);
    // The new secret's code with the stale factor: read again, accepted.
    assert.deepEqual(await mfa.verifyTotp(ctx, 'jill', totpCodeAt(e.secret, s), META, stale), { ok: true, enrolled: true });
    // With the current factor: one write, no read needed.
    t.clock.now += STEP_MS;
    const cur = (await mfa.mfaFactors(ctx, 'jill')).totp;
    const from2 = t.node.log.length;
    assert.deepEqual(await mfa.verifyTotp(ctx, 'jill', totpCodeAt(e.secret, totpStep(t.clock.now)), META, cur), { ok: true, enrolled: false });
    assert.deepEqual(ops().slice(from2), ['mfa totp.verify']);
    // A factor removed since the read: no factor, nothing counted.
    await mfa.removeTotp(ctx, 'jill', META);
    assert.deepEqual(await mfa.verifyTotp(ctx, 'jill', '123456', META, cur), { ok: false, reason: 'no_factor' });
    assert.deepEqual(await mfa.verifyTotp(ctx, 'jill', '123456', META), { ok: false, reason: 'no_factor' });
    assert.equal((await mfa.listFactors(ctx, 'jill')).lock.failures, 0);
  } finally {
    await t.close();
  }
});

test('password throttling for the login flow: recordFailure / checkThrottle / recordSuccess, per IP for unknown users', async () => {
  const { t, ctx } = await setup();
  try {
    for (let i = 1; i <= THROTTLE.freeFailures; i++) assert.deepEqual(await mfa.recordFailure(ctx, 'carol', 'password', META), { ok: true, failures: i });
    assert.equal((await mfa.recordFailure(ctx, 'carol', 'password', META)).ok, false);
    assert.equal((await mfa.checkThrottle(ctx, 'carol', 'password', META)).ok, false);
    t.clock.now += THROTTLE.baseBackoffMs;
    assert.deepEqual(await mfa.checkThrottle(ctx, 'carol', 'password', META), { ok: true });
    await mfa.recordSuccess(ctx, 'carol', 'password', META);
    assert.deepEqual(await mfa.recordFailure(ctx, 'carol', 'password', META), { ok: true, failures: 1 });
    // Unknown usernames: the IP collects the failures.
    const ip = { ip: '203.0.113.50' };
    for (let i = 0; i < THROTTLE.ipFreeFailures; i++) await mfa.recordFailure(ctx, null, 'password', ip);
    assert.equal((await mfa.recordFailure(ctx, null, 'password', ip)).ok, false);
    assert.equal((await mfa.checkThrottle(ctx, 'someone-else', 'password', ip)).ok, false);
    assert.deepEqual(await mfa.checkThrottle(ctx, 'someone-else', 'password', { ip: '203.0.113.51' }), { ok: true });
  } finally {
    await t.close();
  }
});

// ---------------------------------------------------------------------------------------------
// WebAuthn

async function enrollKey(ctx: OAuthContext, sub: string, auth = new SoftAuthenticator(ORIGIN), name = 'YubiKey') {
  const options = await mfa.webauthnRegistrationOptions(ctx, CFG, { sub, name: sub, displayName: sub.toUpperCase() });
  const response = auth.create(options);
  const r = await mfa.webauthnVerifyRegistration(ctx, CFG, sub, response, name, META);
  if (!r.ok) assert.fail(`${r.reason}: ${r.message}`);
  return { auth, credentialId: r.credentialId, options, response };
}

test('WebAuthn registration: stored, listed, excluded next time; a reused or foreign challenge is refused', async () => {
  const { t, ctx, audits } = await setup();
  try {
    const { auth, credentialId, options, response } = await enrollKey(ctx, 'alice');
    const listed = await mfa.listFactors(ctx, 'alice');
    assert.equal(listed.webauthn.length, 1);
    assert.deepEqual({ ...listed.webauthn[0]!, createdAt: 0 }, { id: credentialId, counter: 0, transports: ['usb'], name: 'YubiKey', createdAt: 0, lastUsedAt: null, discoverable: true });
    assert.ok(!('publicKey' in listed.webauthn[0]!), 'no public key in the admin listing');
    // The same response again: its challenge is spent.
    assert.deepEqual(await mfa.webauthnVerifyRegistration(ctx, CFG, 'alice', response, 'again', META), { ok: false, reason: 'challenge', message: 'challenge used' });
    assert.equal(options.excludeCredentials?.length, 0);
    const next = await mfa.webauthnRegistrationOptions(ctx, CFG, { sub: 'alice', name: 'alice', displayName: 'A' });
    assert.deepEqual(next.excludeCredentials?.map((c) => c.id), [credentialId]);
    // A challenge made for alice cannot register a key for bob.
    const forBob = auth.clone();
    forBob.credentials.length = 0;
    const r = await mfa.webauthnVerifyRegistration(ctx, CFG, 'bob', forBob.create(next), 'key', META);
    assert.deepEqual(r, { ok: false, reason: 'challenge', message: 'challenge was made for another user' });
    // A bad name is refused before the challenge is spent.
    const o3 = await mfa.webauthnRegistrationOptions(ctx, CFG, { sub: 'alice', name: 'alice', displayName: 'A' });
    const fresh = new SoftAuthenticator(ORIGIN);
    const resp3 = fresh.create(o3);
    assert.equal((await mfa.webauthnVerifyRegistration(ctx, CFG, 'alice', resp3, '  ', META)).ok, false);
    assert.equal((await mfa.webauthnVerifyRegistration(ctx, CFG, 'alice', resp3, 'x'.repeat(65), META)).ok, false);
    assert.equal((await mfa.webauthnVerifyRegistration(ctx, CFG, 'alice', resp3, 'Phone', META)).ok, true);
    // A wrong origin is an invalid response.
    const o4 = await mfa.webauthnRegistrationOptions(ctx, CFG, { sub: 'alice', name: 'alice', displayName: 'A' });
    const r4 = await mfa.webauthnVerifyRegistration(ctx, CFG, 'alice', new SoftAuthenticator('https://evil.example').create(o4), 'evil', META);
    assert.equal(r4.ok === false && r4.reason, 'invalid');
    assert.equal((await mfa.mfaStatus(ctx, 'alice')).factors.webauthn, 2);
    assert.equal(audits().filter((x) => x.type === 'mfa.enrolled').length, 2);
  } finally {
    await t.close();
  }
});

test('WebAuthn as a second factor: verified once per challenge; expired challenge; wrong origin counts; cloned authenticator refused', async () => {
  const { t, ctx, audits } = await setup();
  try {
    const { auth, credentialId } = await enrollKey(ctx, 'dave');
    const o1 = await mfa.webauthnAuthenticationOptions(ctx, CFG, 'dave');
    assert.deepEqual(o1.allowCredentials?.map((c) => c.id), [credentialId]);
    const a1 = auth.get(o1);
    const from = t.node.log.length;
    assert.deepEqual(await mfa.webauthnVerifyAuthentication(ctx, CFG, 'dave', a1, META), { ok: true, sub: 'dave', userVerified: true, credentialId });
    // One replicated write: throttle, challenge, counter decided together.
    assert.deepEqual(t.node.log.slice(from).map((e) => `${e.domain} ${e.op}`), ['mfa webauthn.verify']);
    // Replaying the same assertion: the challenge is spent.
    const again = await mfa.webauthnVerifyAuthentication(ctx, CFG, 'dave', a1, META);
    assert.equal(again.ok === false && again.reason, 'challenge');
    // Expired challenge (valid on no node after its TTL).
    const o2 = await mfa.webauthnAuthenticationOptions(ctx, CFG, 'dave');
    t.clock.now += WEBAUTHN_CHALLENGE_TTL_MS;
    const expired = await mfa.webauthnVerifyAuthentication(ctx, CFG, 'dave', auth.get(o2), META);
    assert.deepEqual(expired, { ok: false, reason: 'challenge', message: 'challenge expired' });
    // Wrong origin: invalid, and counted as a failure.
    const o3 = await mfa.webauthnAuthenticationOptions(ctx, CFG, 'dave');
    const bad = await mfa.webauthnVerifyAuthentication(ctx, CFG, 'dave', auth.get(o3, { origin: 'https://phish.example' }), META);
    assert.equal(bad.ok === false && bad.reason, 'invalid');
    // The replay, the expired challenge and the wrong origin: three failed attempts.
    assert.equal((await mfa.listFactors(ctx, 'dave')).lock.failures, 3);
    // A challenge for dave does not serve eve.
    const o4 = await mfa.webauthnAuthenticationOptions(ctx, CFG, 'dave');
    const foreign = await mfa.webauthnVerifyAuthentication(ctx, CFG, 'eve', auth.get(o4), META);
    assert.equal(foreign.ok === false && foreign.reason, 'challenge');
    // A clone of the authenticator, behind on the counter: refused and audited.
    const clone = auth.clone();
    clone.credentials[0]!.counter = 0;
    const o5 = await mfa.webauthnAuthenticationOptions(ctx, CFG, 'dave');
    const cloned = await mfa.webauthnVerifyAuthentication(ctx, CFG, 'dave', clone.get(o5), META);
    assert.equal(cloned.ok === false && cloned.reason, 'counter_regression');
    assert.equal(audits().filter((x) => x.type === 'mfa.counter_regression').length, 1);
    // The original keeps working (its counter is ahead), once the backoff of four failures is over.
    const o5b = await mfa.webauthnAuthenticationOptions(ctx, CFG, 'dave');
    const held = await mfa.webauthnVerifyAuthentication(ctx, CFG, 'dave', auth.get(o5b), META);
    assert.deepEqual(held, { ok: false, reason: 'throttled', retryAt: t.clock.now + THROTTLE.baseBackoffMs });
    t.clock.now += THROTTLE.baseBackoffMs;
    const o6 = await mfa.webauthnAuthenticationOptions(ctx, CFG, 'dave');
    assert.equal((await mfa.webauthnVerifyAuthentication(ctx, CFG, 'dave', auth.get(o6), META)).ok, true);
    const listed = await mfa.listFactors(ctx, 'dave');
    assert.equal(listed.webauthn[0]!.counter, auth.credentials[0]!.counter);
    assert.equal(listed.webauthn[0]!.lastUsedAt, t.clock.now);
  } finally {
    await t.close();
  }
});

test('passkey login without a username: the credential names the user; unknown credentials are refused and counted per IP', async () => {
  const { t, ctx } = await setup();
  try {
    const { auth } = await enrollKey(ctx, 'frank');
    const o = await mfa.webauthnAuthenticationOptions(ctx, CFG, null);
    assert.equal(o.allowCredentials, undefined);
    const r = await mfa.webauthnVerifyAuthentication(ctx, CFG, null, auth.get(o), META);
    assert.equal(r.ok && r.sub, 'frank');
    // A challenge made for a passkey login cannot be used as frank's second factor, and vice versa.
    const o2 = await mfa.webauthnAuthenticationOptions(ctx, CFG, null);
    assert.equal((await mfa.webauthnVerifyAuthentication(ctx, CFG, 'frank', auth.get(o2), META)).ok, false);
    // An authenticator the server never saw.
    const stranger = new SoftAuthenticator(ORIGIN);
    const reg = await mfa.webauthnRegistrationOptions(ctx, CFG, { sub: 'ghost', name: 'ghost', displayName: 'G' });
    stranger.create(reg); // never verified: not stored
    const o3 = await mfa.webauthnAuthenticationOptions(ctx, CFG, null);
    const u = await mfa.webauthnVerifyAuthentication(ctx, CFG, null, stranger.get(o3), { ip: '192.0.2.99' });
    assert.equal(u.ok === false && u.reason, 'unknown_credential');
    const ipFailures = t.node.entries('mfa.ipthrottle').map(([k, v]) => [k, unpackValue<{ failures: number }>(v).failures]);
    assert.deepEqual(ipFailures.filter(([k]) => k === '192.0.2.99'), [['192.0.2.99', 1]]);
    // After removal the credential no longer logs anyone in.
    const id = (await mfa.listFactors(ctx, 'frank')).webauthn[0]!.id;
    assert.equal(await mfa.removeWebAuthnCredential(ctx, 'frank', id, META), true);
    const o4 = await mfa.webauthnAuthenticationOptions(ctx, CFG, null);
    const gone = await mfa.webauthnVerifyAuthentication(ctx, CFG, null, auth.get(o4), META);
    assert.equal(gone.ok === false && gone.reason, 'unknown_credential');
  } finally {
    await t.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Recovery codes and administration

test('recovery codes: shown once, each usable once as typed, exhausted codes fail, policy forces re-enrollment', async () => {
  const { t, ctx, audits } = await setup();
  try {
    const codes = await mfa.regenerateRecoveryCodes(ctx, 'gina', META);
    assert.equal(codes.length, 10);
    assert.equal((await mfa.mfaStatus(ctx, 'gina')).factors.recovery, 10);
    // Typed in upper case with spaces: the same code.
    const typed = codes[0]!.toUpperCase().replace('-', ' ');
    assert.deepEqual(await mfa.useRecoveryCode(ctx, 'gina', typed, META), { ok: true, remaining: 9, forceReenroll: true });
    assert.deepEqual(await mfa.useRecoveryCode(ctx, 'gina', codes[0]!, META), { ok: false, reason: 'invalid' });
    await mfa.setMfaRequired(ctx, 'gina', true, META, false);
    for (let i = 1; i < 10; i++) {
      assert.deepEqual(await mfa.useRecoveryCode(ctx, 'gina', codes[i]!, META), { ok: true, remaining: 9 - i, forceReenroll: i === 9 });
    }
    assert.deepEqual(await mfa.useRecoveryCode(ctx, 'gina', codes[5]!, META), { ok: false, reason: 'invalid' });
    const status = await mfa.mfaStatus(ctx, 'gina');
    assert.deepEqual(status, { required: true, factors: { totp: false, webauthn: 0, recovery: 0 } });
    // Regenerated codes replace the old ones.
    const fresh = await mfa.regenerateRecoveryCodes(ctx, 'gina', META);
    assert.equal(fresh.filter((c) => codes.includes(c)).length, 0);
    assert.equal((await mfa.useRecoveryCode(ctx, 'gina', fresh[3]!, META)).ok, true);
    assert.equal(audits().filter((x) => x.type === 'mfa.recovery_used').length, 11);
    // No codes are revealed in the audit log.
    const all = JSON.stringify(audits());
    for (const c of [...codes, ...fresh]) assert.ok(!all.includes(c) && !all.includes(c.replace('-', '')));
  } finally {
    await t.close();
  }
});

test('admin: listFactors, resetFactors, setMfaRequired', async () => {
  const { t, ctx } = await setup();
  try {
    const e = await mfa.startTotpEnrollment(ctx, 'hank', 'hank', META);
    await mfa.verifyTotp(ctx, 'hank', totpCodeAt(e.secret, totpStep(t.clock.now)), META);
    await enrollKey(ctx, 'hank');
    await mfa.regenerateRecoveryCodes(ctx, 'hank', META);
    await mfa.setMfaRequired(ctx, 'hank', true, META);
    const before = await mfa.listFactors(ctx, 'hank');
    assert.equal(before.required, true);
    assert.equal(before.reenrollAfterRecovery, true);
    assert.deepEqual(before.totp && { confirmed: before.totp.confirmed }, { confirmed: true });
    assert.equal(before.webauthn.length, 1);
    assert.deepEqual(before.recovery, { remaining: 10 });
    assert.deepEqual(before.lock, { failures: 0, lockedUntil: null, backoffUntil: null });
    assert.deepEqual(await mfa.resetFactors(ctx, 'hank', META), { totp: true, webauthn: 1, recovery: 10 });
    assert.deepEqual(await mfa.mfaStatus(ctx, 'hank'), { required: true, factors: { totp: false, webauthn: 0, recovery: 0 } });
    await mfa.setMfaRequired(ctx, 'hank', false, META);
    assert.equal((await mfa.mfaStatus(ctx, 'hank')).required, false);
    // A fresh TOTP enrollment works after the reset.
    const e2 = await mfa.startTotpEnrollment(ctx, 'hank', 'hank', META);
    assert.notEqual(e2.secret, e.secret);
  } finally {
    await t.close();
  }
});
