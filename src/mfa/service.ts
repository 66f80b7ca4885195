// The worker-side MFA service: what the login flow (src/oauth/) and the admin API call. The
// cryptography happens here (TOTP code check with the unsealed secret, WebAuthn signatures with
// @simplewebauthn/server); the decisions that need cluster-wide state (replay, single use,
// counters, throttling) are proposed to the `mfa` domain (src/state/mfa.ts, contract
// src/state/mfa-ops.ts), so no node can be used to gain attempts or replay a code.
//
// Every function answers user errors (a wrong code, a throttled user, a stale challenge) with a
// discriminated union; it throws only for what the caller cannot fix: the cluster unavailable
// (TemporarilyUnavailable from nodeWrite/nodeRead), the crypto runtime not ready, or a
// precondition the flow must have checked (DomainRefusal, e.g. startTotpEnrollment for a user
// whose TOTP is already confirmed: ALREADY_EXISTS).
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
// Temporary: the typed-contract branch (issue 14 decision 3) moves these into the state layer's stubs
// and removes both imports (scripts/check-layers.ts PENDING_REMOVAL lists them too).
// eslint-disable-next-line @typescript-eslint/no-restricted-imports
import { DomainRefusal, nodeRead, nodeWrite } from '../oauth/context.ts';
// eslint-disable-next-line @typescript-eslint/no-restricted-imports
import type { OAuthContext } from '../oauth/context.ts';
import { randomToken } from '../crypto/tokens.ts';
import type { RequestMeta, Throttled, ThrottleKind, TotpFactorView, WebAuthnCredentialView } from '../state/mfa-ops.ts';
import type { FactorsView } from '../state/mfa.ts';
import { MAX_CREDENTIAL_NAME_CHARS, MFA_DOMAIN } from '../state/mfa.ts';
import type { MfaConfig } from './config.ts';
import { generateTotpSecret, matchTotpStep, totpQrSvg, totpUri } from './totp.ts';
import { generateRecoveryCodes, recoveryHash } from './recovery.ts';
import {
  WEBAUTHN_CHALLENGE_TTL_MS,
  authenticationOptions,
  registrationOptions,
  responseChallenge,
  responseCredentialId,
  verifyAuthentication,
  verifyRegistration,
} from './webauthn.ts';

export type { RequestMeta, Throttled, ThrottleKind } from '../state/mfa-ops.ts';
export type { MfaConfig } from './config.ts';

export interface MfaStatus {
  /** MFA is required for this user (per-user policy; the flow may also require it per client or scope). */
  readonly required: boolean;
  readonly factors: {
    /** A confirmed TOTP factor. */
    readonly totp: boolean;
    /** Registered WebAuthn credentials. */
    readonly webauthn: number;
    /** Unused recovery codes. */
    readonly recovery: number;
  };
}

export interface FactorList {
  readonly required: boolean;
  /** Using a recovery code asks for re-enrollment (per-user policy, default true). */
  readonly reenrollAfterRecovery: boolean;
  readonly totp: { readonly confirmed: boolean; readonly createdAt: number } | null;
  /** The credentials without their public keys. */
  readonly webauthn: readonly Omit<WebAuthnCredentialView, 'publicKey'>[];
  readonly recovery: { readonly remaining: number };
  /** As of ctx.now(): an expired lock or backoff is null. */
  readonly lock: { readonly failures: number; readonly lockedUntil: number | null; readonly backoffUntil: number | null };
}

export type ThrottleCheck = { readonly ok: true } | Throttled;
export type FailureResult = { readonly ok: true; readonly failures: number } | Throttled;

export interface TotpEnrollment {
  /** base32 secret, for manual entry. */
  readonly secret: string;
  /** otpauth://totp/… URI (the QR code's content). */
  readonly uri: string;
  /** The URI as an SVG QR code. */
  readonly qrSvg: string;
}

export type TotpVerifyResult =
  | { readonly ok: true; readonly enrolled: boolean }
  /** 'invalid' may carry retryAt: the failure put the user (or IP) in backoff until then. */
  | { readonly ok: false; readonly reason: 'invalid' | 'replay' | 'throttled' | 'locked' | 'no_factor'; readonly retryAt?: number };

export interface WebAuthnUser {
  readonly sub: string;
  /** Account name shown by the authenticator (the username). */
  readonly name: string;
  readonly displayName: string;
}

export type WebAuthnRegistrationResult =
  | { readonly ok: true; readonly credentialId: string }
  | { readonly ok: false; readonly reason: 'invalid' | 'challenge' | 'already_registered' | 'too_many'; readonly message: string };

export type WebAuthnAuthenticationResult =
  | { readonly ok: true; readonly sub: string; readonly userVerified: boolean; readonly credentialId: string }
  | {
      readonly ok: false;
      readonly reason: 'invalid' | 'challenge' | 'unknown_credential' | 'counter_regression' | 'throttled' | 'locked';
      readonly retryAt?: number;
      readonly message?: string;
    };

export type RecoveryUseResult =
  | { readonly ok: true; readonly remaining: number; readonly forceReenroll: boolean }
  | { readonly ok: false; readonly reason: 'invalid' | 'throttled' | 'locked'; readonly retryAt?: number };

/** The meta sent to apply: only the fields the audit accepts (a caller's object may carry more). */
function wire(meta: RequestMeta & { readonly clientId?: string | null }): { ip: string | null; clientId?: string | null } {
  return meta.clientId !== undefined ? { ip: meta.ip, clientId: meta.clientId } : { ip: meta.ip };
}

function write<T>(ctx: OAuthContext, op: string, args: unknown): Promise<T> {
  return nodeWrite<T>(ctx, MFA_DOMAIN, op, args);
}

function readFactors(ctx: OAuthContext, sub: string): Promise<FactorsView> {
  return nodeRead<FactorsView>(ctx, MFA_DOMAIN, 'factors', { sub });
}

function isThrottledAnswer(v: { ok: boolean; reason?: string }): v is Throttled {
  return v.ok === false && (v.reason === 'throttled' || v.reason === 'locked');
}

// ---------------------------------------------------------------------------------------------
// Status and throttling

export async function mfaStatus(ctx: OAuthContext, sub: string): Promise<MfaStatus> {
  return statusOf(await readFactors(ctx, sub));
}

/**
 * The user's factors, sealed TOTP secret included (a linearizable read): for a flow that needs
 * both the status and, next, a verification (statusOf, then verifyTotp with `.totp`), in one read.
 */
export function mfaFactors(ctx: OAuthContext, sub: string): Promise<FactorsView> {
  return readFactors(ctx, sub);
}

export function statusOf(f: FactorsView): MfaStatus {
  return { required: f.required, factors: { totp: f.totp?.confirmed === true, webauthn: f.webauthn.length, recovery: f.recovery.remaining } };
}

/** Before verifying any credential: is this user (or, with sub null, this IP) allowed an attempt now? */
export function checkThrottle(ctx: OAuthContext, sub: string | null, kind: ThrottleKind, meta: RequestMeta): Promise<ThrottleCheck> {
  return write<ThrottleCheck>(ctx, 'throttle.check', { sub, kind, meta: wire(meta) });
}

/** A failed attempt (login.ts: a wrong password; sub null for an unknown username). */
export function recordFailure(ctx: OAuthContext, sub: string | null, kind: ThrottleKind, meta: RequestMeta): Promise<FailureResult> {
  return write<FailureResult>(ctx, 'throttle.fail', { sub, kind, meta: wire(meta) });
}

/** A successful attempt clears the user's counter of that kind (not a lock, not the IP's counter). */
export async function recordSuccess(ctx: OAuthContext, sub: string, kind: ThrottleKind, meta: RequestMeta): Promise<void> {
  await write(ctx, 'throttle.reset', { sub, kind, meta: wire(meta) });
}

// ---------------------------------------------------------------------------------------------
// TOTP

function totpAad(sub: string): string {
  return `totp:${sub}`;
}

/**
 * A new unconfirmed TOTP secret for the user (replacing an unconfirmed one), sealed in state; the
 * first valid code (verifyTotp) confirms it. `account` is the label shown in the app (the
 * username); the issuer is the OAuth issuer's host. Throws DomainRefusal ALREADY_EXISTS if the user
 * has a confirmed TOTP factor (the flow offers enrollment only to users without one).
 */
export async function startTotpEnrollment(ctx: OAuthContext, sub: string, account: string, meta: RequestMeta = { ip: null }): Promise<TotpEnrollment> {
  const secret = generateTotpSecret();
  const sealed = ctx.crypto.sealer().sealValue(secret, totpAad(sub));
  await write(ctx, 'totp.enroll', { sub, sealed, meta: wire(meta) });
  const uri = totpUri({ secret, issuer: issuerLabel(ctx), account });
  return { secret, uri, qrSvg: await totpQrSvg(uri) };
}

/** What authenticator apps show as the issuer: the issuer URL's host name (no port: no colon, see totpUri). */
function issuerLabel(ctx: OAuthContext): string {
  try {
    return new URL(ctx.config.issuer).hostname;
  } catch {
    return ctx.config.issuer;
  }
}

/**
 * Verify a TOTP code (also confirms a pending enrollment): unseal the factor's secret, match the
 * code within ±1 step, and propose the outcome as one totp.verify, which checks the throttle and
 * decides accept / replay / counted failure in the same apply (docs/mfa.md "Verification path").
 * One replicated write per attempt; the answer is apply's, so a guess is never answered before
 * it is counted.
 *
 * `factor`: the user's TOTP factor as the caller just read it (a linearizable read, e.g. the MFA
 * form's own factors read), saving a read here; undefined reads it. Apply refuses a step matched
 * against a factor that has since been replaced (CONFLICT); the factor is then read again and the
 * code matched once more.
 */
export async function verifyTotp(ctx: OAuthContext, sub: string, code: string, meta: RequestMeta, factor?: TotpFactorView | null): Promise<TotpVerifyResult> {
  let f = factor === undefined ? (await readFactors(ctx, sub)).totp : factor;
  for (let attempt = 0; ; attempt++) {
    if (f === null) return { ok: false, reason: 'no_factor' };
    try {
      return await write<TotpVerifyResult>(ctx, 'totp.verify', totpVerifyArgs(ctx, sub, code, meta, f));
    } catch (e) {
      if (!(e instanceof DomainRefusal)) throw e;
      // Removed between the read and the verify.
      if (e.code === 'NOT_FOUND') return { ok: false, reason: 'no_factor' };
      // Re-enrolled in between: once more against the current factor (a second change in that
      // moment is a user racing their own enrollment: answered as a replaced factor).
      if (e.code !== 'CONFLICT') throw e;
      if (attempt > 0) return { ok: false, reason: 'no_factor' };
    }
    f = (await readFactors(ctx, sub)).totp;
  }
}

/**
 * The arguments of totp.verify for `code` against the factor as read: the matched step (null when
 * no step within ±1 matches). The secret is unsealed here, on the worker; only the step is proposed.
 * Also the `verify` part of totp.signIn (session.ts commitSession), which a sign-in page uses to
 * verify the code and write the upgraded session in one command.
 */
export function totpVerifyArgs(ctx: OAuthContext, sub: string, code: string, meta: RequestMeta, f: TotpFactorView): { sub: string; step: number | null; createdAt: number; meta: ReturnType<typeof wire> } {
  const secret = ctx.crypto.sealer().openValue<string>(f.sealed, totpAad(sub));
  return { sub, step: matchTotpStep(secret, code, ctx.now()), createdAt: f.createdAt, meta: wire(meta) };
}

export async function removeTotp(ctx: OAuthContext, sub: string, meta: RequestMeta): Promise<boolean> {
  return (await write<{ existed: boolean }>(ctx, 'totp.remove', { sub, meta: wire(meta) })).existed;
}

// ---------------------------------------------------------------------------------------------
// WebAuthn

async function newChallenge(ctx: OAuthContext, purpose: 'register' | 'authenticate', sub: string | null): Promise<string> {
  const challenge = randomToken();
  await write(ctx, 'webauthn.challenge', { challenge, purpose, sub, exp: ctx.now() + WEBAUTHN_CHALLENGE_TTL_MS });
  return challenge;
}

type Consumed = { ok: true; sub: string | null } | { ok: false; reason: 'unknown' | 'expired' | 'used' | 'purpose' };

/** Spend the challenge the response answers; it must have been made for `sub` (null: passkey login). */
async function consume(ctx: OAuthContext, response: unknown, purpose: 'register' | 'authenticate', sub: string | null): Promise<{ ok: true; challenge: string } | { ok: false; message: string }> {
  const challenge = responseChallenge(response);
  if (challenge === null) return { ok: false, message: 'the response carries no challenge of ours' };
  const c = await write<Consumed>(ctx, 'webauthn.consume', { challenge, purpose });
  if (!c.ok) return { ok: false, message: `challenge ${c.reason}` };
  if (c.sub !== sub) return { ok: false, message: 'challenge was made for another user' };
  return { ok: true, challenge };
}

/** Creation options for navigator.credentials.create(); the challenge is stored (5 minutes, single use). */
export async function webauthnRegistrationOptions(ctx: OAuthContext, mfaConfig: MfaConfig, user: WebAuthnUser): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const f = await readFactors(ctx, user.sub);
  const challenge = await newChallenge(ctx, 'register', user.sub);
  return registrationOptions(mfaConfig, user, challenge, f.webauthn);
}

/** Verify a registration response and store the credential under `name` (1..64 characters, shown in lists). */
export async function webauthnVerifyRegistration(
  ctx: OAuthContext,
  mfaConfig: MfaConfig,
  sub: string,
  response: RegistrationResponseJSON,
  name: string,
  meta: RequestMeta,
): Promise<WebAuthnRegistrationResult> {
  const label = typeof name === 'string' ? name.trim() : '';
  // eslint-disable-next-line no-control-regex
  if (label.length === 0 || label.length > MAX_CREDENTIAL_NAME_CHARS || /[\u0000-\u001f\u007f-\u009f]/.test(label)) {
    return { ok: false, reason: 'invalid', message: `the name must be 1..${MAX_CREDENTIAL_NAME_CHARS} characters without control characters` };
  }
  const c = await consume(ctx, response, 'register', sub);
  if (!c.ok) return { ok: false, reason: 'challenge', message: c.message };
  const v = await verifyRegistration(mfaConfig, response, c.challenge);
  if (!v.ok) return { ok: false, reason: 'invalid', message: v.message };
  const credential = { ...v.credential, name: label, createdAt: 0, lastUsedAt: null };
  try {
    await write(ctx, 'webauthn.register', { sub, credential, meta: wire(meta) });
  } catch (e) {
    if (e instanceof DomainRefusal && e.code === 'ALREADY_EXISTS') return { ok: false, reason: 'already_registered', message: e.message };
    if (e instanceof DomainRefusal && e.code === 'RESOURCE_EXHAUSTED') return { ok: false, reason: 'too_many', message: e.message };
    throw e;
  }
  return { ok: true, credentialId: v.credential.id };
}

/**
 * Request options for navigator.credentials.get(). With a sub (WebAuthn as the second factor):
 * that user's credentials in allowCredentials. With null (passkey login): none, so the
 * authenticator offers its discoverable credentials.
 */
export async function webauthnAuthenticationOptions(ctx: OAuthContext, mfaConfig: MfaConfig, sub: string | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const allow = sub === null ? null : (await readFactors(ctx, sub)).webauthn;
  const challenge = await newChallenge(ctx, 'authenticate', sub);
  return authenticationOptions(mfaConfig, challenge, allow);
}

type VerifyAnswer =
  | { ok: true }
  | { ok: false; reason: 'challenge'; why: 'missing' | 'unknown' | 'used' | 'expired' | 'purpose' | 'other_user'; retryAt?: number }
  | { ok: false; reason: 'unknown_credential' | 'invalid' | 'counter_regression'; retryAt?: number }
  | Throttled;

/** What the page says about a challenge that cannot be used (the messages of the separate-command flow). */
const CHALLENGE_MESSAGES: Readonly<Record<Extract<VerifyAnswer, { reason: 'challenge' }>['why'], string>> = {
  missing: 'the response carries no challenge of ours',
  unknown: 'challenge unknown',
  used: 'challenge used',
  expired: 'challenge expired',
  purpose: 'challenge purpose',
  other_user: 'challenge was made for another user',
};

/**
 * Verify an assertion. With sub null (passkey login), the credential found by its id names the
 * user. One replicated write (webauthn.verify): the credential is read and the signature checked
 * against the response's own challenge first, then apply checks the throttle, spends the challenge
 * (ours, unused, unexpired, for this purpose and user) and records the counter or the failure,
 * together (docs/mfa.md "Verification path").
 */
export async function webauthnVerifyAuthentication(
  ctx: OAuthContext,
  mfaConfig: MfaConfig,
  sub: string | null,
  response: AuthenticationResponseJSON,
  meta: RequestMeta,
): Promise<WebAuthnAuthenticationResult> {
  const challenge = responseChallenge(response);
  const id = responseCredentialId(response);
  const found = id === null ? null : await nodeRead<{ sub: string; credential: WebAuthnCredentialView } | null>(ctx, MFA_DOMAIN, 'webauthn.byCredentialId', { credentialId: id });
  const mine = found !== null && (sub === null || found.sub === sub) ? found : null;
  // The expected challenge is the response's own: whether it is one of ours, unused and unexpired
  // is apply's decision (W3C WebAuthn §7.2 step 12 then holds for the challenge apply accepts).
  const v = mine === null || challenge === null ? null : await verifyAuthentication(mfaConfig, response, challenge, mine.credential, mine.sub, sub !== null);
  let r: VerifyAnswer;
  try {
    r = await write<VerifyAnswer>(ctx, 'webauthn.verify', {
      sub,
      challenge,
      credentialId: mine?.credential.id ?? null,
      owner: mine?.sub ?? null,
      newCounter: v?.ok ? v.newCounter : null,
      meta: wire(meta),
    });
  } catch (e) {
    if (e instanceof DomainRefusal && e.code === 'NOT_FOUND') return { ok: false, reason: 'unknown_credential', message: 'the credential was removed' };
    throw e;
  }
  if (r.ok) return { ok: true, sub: mine!.sub, userVerified: v!.ok && v!.userVerified, credentialId: mine!.credential.id };
  if (isThrottledAnswer(r)) return r;
  switch (r.reason) {
    case 'challenge':
      return { ok: false, reason: 'challenge', message: CHALLENGE_MESSAGES[r.why] };
    case 'unknown_credential':
      // Counted against the user we expected (if any) and the IP: probing for credential ids costs attempts.
      return { ok: false, reason: 'unknown_credential', message: 'no such credential for this user' };
    case 'invalid':
      return { ok: false, reason: 'invalid', message: v !== null && !v.ok ? v.message : 'assertion signature did not verify', ...(r.retryAt !== undefined ? { retryAt: r.retryAt } : {}) };
    case 'counter_regression':
      return { ok: false, reason: 'counter_regression', message: 'the signature counter did not increase (cloned authenticator?)' };
  }
}

export async function removeWebAuthnCredential(ctx: OAuthContext, sub: string, credentialId: string, meta: RequestMeta): Promise<boolean> {
  return (await write<{ existed: boolean }>(ctx, 'webauthn.remove', { sub, credentialId, meta: wire(meta) })).existed;
}

// ---------------------------------------------------------------------------------------------
// Recovery codes

/** Ten new codes (the old ones stop working); show them once, they are stored only hashed. */
export async function regenerateRecoveryCodes(ctx: OAuthContext, sub: string, meta: RequestMeta): Promise<string[]> {
  const { codes, hashes } = generateRecoveryCodes();
  await write(ctx, 'recovery.set', { sub, hashes, meta: wire(meta) });
  return codes;
}

/** Use one code (as typed: case, '-' and spaces do not matter). Apply checks the throttle first. */
export async function useRecoveryCode(ctx: OAuthContext, sub: string, code: string, meta: RequestMeta): Promise<RecoveryUseResult> {
  const hash = recoveryHash(typeof code === 'string' ? code : '');
  return write<RecoveryUseResult>(ctx, 'recovery.use', { sub, hash, meta: wire(meta) });
}

// ---------------------------------------------------------------------------------------------
// Administration

/** Remove every factor of the user (audited mfa.reset); counters and policy stay. */
export async function resetFactors(ctx: OAuthContext, sub: string, meta: RequestMeta): Promise<{ totp: boolean; webauthn: number; recovery: number }> {
  return (await write<{ removed: { totp: boolean; webauthn: number; recovery: number } }>(ctx, 'reset', { sub, meta: wire(meta) })).removed;
}

/** Clear the user's lock and failure counters (audited user.unlocked). */
export async function unlockUser(ctx: OAuthContext, sub: string, meta: RequestMeta): Promise<{ wasLocked: boolean }> {
  return write<{ wasLocked: boolean }>(ctx, 'unlock', { sub, meta: wire(meta) });
}

/** Per-user policy (audited user.updated). reenrollAfterRecovery absent keeps the current value. */
export async function setMfaRequired(ctx: OAuthContext, sub: string, required: boolean, meta: RequestMeta, reenrollAfterRecovery?: boolean): Promise<void> {
  await write(ctx, 'policy.set', { sub, required, ...(reenrollAfterRecovery !== undefined ? { reenrollAfterRecovery } : {}), meta: wire(meta) });
}

/** The user's factors for the admin API: no secrets, no public keys. */
export async function listFactors(ctx: OAuthContext, sub: string): Promise<FactorList> {
  const f = await readFactors(ctx, sub);
  const now = ctx.now();
  return {
    required: f.required,
    reenrollAfterRecovery: f.reenrollAfterRecovery,
    totp: f.totp === null ? null : { confirmed: f.totp.confirmed, createdAt: f.totp.createdAt },
    webauthn: f.webauthn.map((c) => ({
      id: c.id,
      counter: c.counter,
      transports: c.transports,
      name: c.name,
      createdAt: c.createdAt,
      lastUsedAt: c.lastUsedAt,
      discoverable: c.discoverable,
    })),
    recovery: f.recovery,
    lock: {
      failures: f.lock.lockedUntil !== null && f.lock.lockedUntil <= now ? 0 : f.lock.failures,
      lockedUntil: f.lock.lockedUntil !== null && f.lock.lockedUntil > now ? f.lock.lockedUntil : null,
      backoffUntil: f.lock.backoffUntil !== null && f.lock.backoffUntil > now ? f.lock.backoffUntil : null,
    },
  };
}
