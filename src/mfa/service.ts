// The worker-side MFA service: what the login flow (src/oauth/) and the admin API call. The
// cryptography happens here (TOTP code check with the unsealed secret, WebAuthn signatures with
// @simplewebauthn/server); the decisions that need cluster-wide state (replay, single use,
// counters, throttling) are proposed to the `mfa` domain (src/state/mfa.ts, contract
// src/state/mfa-ops.ts), so no node can be used to gain attempts or replay a code.
//
// Every function answers user errors (a wrong code, a throttled user, a stale challenge) with a
// discriminated union; it throws only for what the caller cannot fix: the cluster unavailable
// (a ContractError with the node's code, UNAVAILABLE / TIMEOUT / STOPPING, which the HTTP layer
// answers 503), the crypto runtime not ready, or a precondition the flow must have checked (a
// ContractError of kind 'refused', e.g. startTotpEnrollment for a user whose TOTP is already
// confirmed: ALREADY_EXISTS). The domain is called through its typed stubs (src/state/mfa.ts `mfa`).
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { randomToken } from '../crypto/tokens.ts';
import type { CryptoRuntime } from '../crypto/runtime.ts';
import type { RequestMeta, Throttled, ThrottleKind, TotpFactorView, WebAuthnCredentialView } from '../state/mfa-ops.ts';
import type { FactorsView } from '../state/mfa.ts';
import { MAX_CREDENTIAL_NAME_CHARS, mfa } from '../state/mfa.ts';
import type { MFA_WRITES } from '../state/mfa.ts';
import { must } from '../state/contract.ts';
import type { ResultOf, StateClient } from '../state/contract.ts';
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

/**
 * What the service needs of its caller: the state stubs' client (node and deadline), the crypto
 * runtime (sealing), the issuer (the TOTP label) and a clock. An OAuthContext is one.
 */
export interface MfaContext extends StateClient {
  readonly crypto: CryptoRuntime;
  readonly config: { readonly issuer: string };
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}
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

export type ThrottleCheck = ResultOf<(typeof MFA_WRITES)['throttle.check']>;
export type FailureResult = ResultOf<(typeof MFA_WRITES)['throttle.fail']>;

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

async function readFactors(ctx: MfaContext, sub: string): Promise<FactorsView> {
  return must(await mfa.read.factors(ctx, { sub }), 'mfa.factors');
}

function isThrottledAnswer(v: { ok: boolean; reason?: string }): v is Throttled {
  return v.ok === false && (v.reason === 'throttled' || v.reason === 'locked');
}

// ---------------------------------------------------------------------------------------------
// Status and throttling

export async function mfaStatus(ctx: MfaContext, sub: string): Promise<MfaStatus> {
  return statusOf(await readFactors(ctx, sub));
}

/**
 * The user's factors, sealed TOTP secret included (a linearizable read): for a flow that needs
 * both the status and, next, a verification (statusOf, then verifyTotp with `.totp`), in one read.
 */
export function mfaFactors(ctx: MfaContext, sub: string): Promise<FactorsView> {
  return readFactors(ctx, sub);
}

export function statusOf(f: FactorsView): MfaStatus {
  return { required: f.required, factors: { totp: f.totp?.confirmed === true, webauthn: f.webauthn.length, recovery: f.recovery.remaining } };
}

/** Before verifying any credential: is this user (or, with sub null, this IP) allowed an attempt now? */
export async function checkThrottle(ctx: MfaContext, sub: string | null, kind: ThrottleKind, meta: RequestMeta): Promise<ThrottleCheck> {
  return must(await mfa['throttle.check'](ctx, { sub, kind, meta: wire(meta) }), 'mfa.throttle.check');
}

/** A failed attempt (login.ts: a wrong password; sub null for an unknown username). */
export async function recordFailure(ctx: MfaContext, sub: string | null, kind: ThrottleKind, meta: RequestMeta): Promise<FailureResult> {
  return must(await mfa['throttle.fail'](ctx, { sub, kind, meta: wire(meta) }), 'mfa.throttle.fail');
}

/** A successful attempt clears the user's counter of that kind (not a lock, not the IP's counter). */
export async function recordSuccess(ctx: MfaContext, sub: string, kind: ThrottleKind, meta: RequestMeta): Promise<void> {
  must(await mfa['throttle.reset'](ctx, { sub, kind, meta: wire(meta) }), 'mfa.throttle.reset');
}

// ---------------------------------------------------------------------------------------------
// TOTP

function totpAad(sub: string): string {
  return `totp:${sub}`;
}

/**
 * A new unconfirmed TOTP secret for the user (replacing an unconfirmed one), sealed in state; the
 * first valid code (verifyTotp) confirms it. `account` is the label shown in the app (the
 * username); the issuer is the OAuth issuer's host. Throws a ContractError ALREADY_EXISTS if the user
 * has a confirmed TOTP factor (the flow offers enrollment only to users without one).
 */
export async function startTotpEnrollment(ctx: MfaContext, sub: string, account: string, meta: RequestMeta = { ip: null }): Promise<TotpEnrollment> {
  const secret = generateTotpSecret();
  const sealed = ctx.crypto.sealer().sealValue(secret, totpAad(sub));
  must(await mfa['totp.enroll'](ctx, { sub, sealed, meta: wire(meta) }), 'mfa.totp.enroll');
  const uri = totpUri({ secret, issuer: issuerLabel(ctx), account });
  return { secret, uri, qrSvg: await totpQrSvg(uri) };
}

/** What authenticator apps show as the issuer: the issuer URL's host name (no port: no colon, see totpUri). */
function issuerLabel(ctx: MfaContext): string {
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
export async function verifyTotp(ctx: MfaContext, sub: string, code: string, meta: RequestMeta, factor?: TotpFactorView | null): Promise<TotpVerifyResult> {
  let f = factor === undefined ? (await readFactors(ctx, sub)).totp : factor;
  for (let attempt = 0; ; attempt++) {
    if (f === null) return { ok: false, reason: 'no_factor' };
    const o = await mfa['totp.verify'](ctx, totpVerifyArgs(ctx, sub, code, meta, f));
    if (o.kind === 'ok') return o.value;
    if (o.kind === 'error') must(o, 'mfa.totp.verify');
    else
      switch (o.code) {
        // Removed between the read and the verify.
        case 'NOT_FOUND':
          return { ok: false, reason: 'no_factor' };
        // Re-enrolled in between: once more against the current factor (a second change in that
        // moment is a user racing their own enrollment: answered as a replaced factor).
        case 'CONFLICT':
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
export function totpVerifyArgs(ctx: MfaContext, sub: string, code: string, meta: RequestMeta, f: TotpFactorView): { sub: string; step: number | null; createdAt: number; meta: ReturnType<typeof wire> } {
  const secret = ctx.crypto.sealer().openValue<string>(f.sealed, totpAad(sub));
  return { sub, step: matchTotpStep(secret, code, ctx.now()), createdAt: f.createdAt, meta: wire(meta) };
}

export async function removeTotp(ctx: MfaContext, sub: string, meta: RequestMeta): Promise<boolean> {
  return must(await mfa['totp.remove'](ctx, { sub, meta: wire(meta) }), 'mfa.totp.remove').existed;
}

// ---------------------------------------------------------------------------------------------
// WebAuthn

async function newChallenge(ctx: MfaContext, purpose: 'register' | 'authenticate', sub: string | null): Promise<string> {
  const challenge = randomToken();
  must(await mfa['webauthn.challenge'](ctx, { challenge, purpose, sub, exp: ctx.now() + WEBAUTHN_CHALLENGE_TTL_MS }), 'mfa.webauthn.challenge');
  return challenge;
}

/** Spend the challenge the response answers; it must have been made for `sub` (null: passkey login). */
async function consume(ctx: MfaContext, response: unknown, purpose: 'register' | 'authenticate', sub: string | null): Promise<{ ok: true; challenge: string } | { ok: false; message: string }> {
  const challenge = responseChallenge(response);
  if (challenge === null) return { ok: false, message: 'the response carries no challenge of ours' };
  const c = must(await mfa['webauthn.consume'](ctx, { challenge, purpose }), 'mfa.webauthn.consume');
  if (!c.ok) return { ok: false, message: `challenge ${c.reason}` };
  if (c.sub !== sub) return { ok: false, message: 'challenge was made for another user' };
  return { ok: true, challenge };
}

/** Creation options for navigator.credentials.create(); the challenge is stored (5 minutes, single use). */
export async function webauthnRegistrationOptions(ctx: MfaContext, mfaConfig: MfaConfig, user: WebAuthnUser): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const f = await readFactors(ctx, user.sub);
  const challenge = await newChallenge(ctx, 'register', user.sub);
  return registrationOptions(mfaConfig, user, challenge, f.webauthn);
}

/** Verify a registration response and store the credential under `name` (1..64 characters, shown in lists). */
export async function webauthnVerifyRegistration(
  ctx: MfaContext,
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
  const o = await mfa['webauthn.register'](ctx, { sub, credential, meta: wire(meta) });
  switch (o.kind) {
    case 'ok':
      return { ok: true, credentialId: v.credential.id };
    case 'refused':
      return { ok: false, reason: o.code === 'ALREADY_EXISTS' ? 'already_registered' : 'too_many', message: o.message };
    case 'error':
      return must(o, 'mfa.webauthn.register');
  }
}

/**
 * Request options for navigator.credentials.get(). With a sub (WebAuthn as the second factor):
 * that user's credentials in allowCredentials. With null (passkey login): none, so the
 * authenticator offers its discoverable credentials.
 */
export async function webauthnAuthenticationOptions(ctx: MfaContext, mfaConfig: MfaConfig, sub: string | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const allow = sub === null ? null : (await readFactors(ctx, sub)).webauthn;
  const challenge = await newChallenge(ctx, 'authenticate', sub);
  return authenticationOptions(mfaConfig, challenge, allow);
}

type VerifyAnswer = ResultOf<(typeof MFA_WRITES)['webauthn.verify']>;

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
  ctx: MfaContext,
  mfaConfig: MfaConfig,
  sub: string | null,
  response: AuthenticationResponseJSON,
  meta: RequestMeta,
): Promise<WebAuthnAuthenticationResult> {
  const challenge = responseChallenge(response);
  const id = responseCredentialId(response);
  const found = id === null ? null : must(await mfa.read['webauthn.byCredentialId'](ctx, { credentialId: id }), 'mfa.webauthn.byCredentialId');
  const mine = found !== null && (sub === null || found.sub === sub) ? found : null;
  // The expected challenge is the response's own: whether it is one of ours, unused and unexpired
  // is apply's decision (W3C WebAuthn §7.2 step 12 then holds for the challenge apply accepts).
  const v = mine === null || challenge === null ? null : await verifyAuthentication(mfaConfig, response, challenge, mine.credential, mine.sub, sub !== null);
  const o = await mfa['webauthn.verify'](ctx, {
    sub,
    challenge,
    credentialId: mine?.credential.id ?? null,
    owner: mine?.sub ?? null,
    newCounter: v?.ok ? v.newCounter : null,
    meta: wire(meta),
  });
  if (o.kind === 'refused') return { ok: false, reason: 'unknown_credential', message: 'the credential was removed' };
  const r = must(o, 'mfa.webauthn.verify');
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

export async function removeWebAuthnCredential(ctx: MfaContext, sub: string, credentialId: string, meta: RequestMeta): Promise<boolean> {
  return must(await mfa['webauthn.remove'](ctx, { sub, credentialId, meta: wire(meta) }), 'mfa.webauthn.remove').existed;
}

// ---------------------------------------------------------------------------------------------
// Recovery codes

/** Ten new codes (the old ones stop working); show them once, they are stored only hashed. */
export async function regenerateRecoveryCodes(ctx: MfaContext, sub: string, meta: RequestMeta): Promise<string[]> {
  const { codes, hashes } = generateRecoveryCodes();
  must(await mfa['recovery.set'](ctx, { sub, hashes, meta: wire(meta) }), 'mfa.recovery.set');
  return codes;
}

/** Use one code (as typed: case, '-' and spaces do not matter). Apply checks the throttle first. */
export async function useRecoveryCode(ctx: MfaContext, sub: string, code: string, meta: RequestMeta): Promise<RecoveryUseResult> {
  const hash = recoveryHash(typeof code === 'string' ? code : '');
  return must(await mfa['recovery.use'](ctx, { sub, hash, meta: wire(meta) }), 'mfa.recovery.use');
}

// ---------------------------------------------------------------------------------------------
// Administration

/** Remove every factor of the user (audited mfa.reset); counters and policy stay. */
export async function resetFactors(ctx: MfaContext, sub: string, meta: RequestMeta): Promise<{ totp: boolean; webauthn: number; recovery: number }> {
  return must(await mfa.reset(ctx, { sub, meta: wire(meta) }), 'mfa.reset').removed;
}

/** Clear the user's lock and failure counters (audited user.unlocked). */
export async function unlockUser(ctx: MfaContext, sub: string, meta: RequestMeta): Promise<{ wasLocked: boolean }> {
  return must(await mfa.unlock(ctx, { sub, meta: wire(meta) }), 'mfa.unlock');
}

/** Per-user policy (audited user.updated). reenrollAfterRecovery absent keeps the current value. */
export async function setMfaRequired(ctx: MfaContext, sub: string, required: boolean, meta: RequestMeta, reenrollAfterRecovery?: boolean): Promise<void> {
  must(await mfa['policy.set'](ctx, { sub, required, ...(reenrollAfterRecovery !== undefined ? { reenrollAfterRecovery } : {}), meta: wire(meta) }), 'mfa.policy.set');
}

/** The user's factors for the admin API: no secrets, no public keys. */
export async function listFactors(ctx: MfaContext, sub: string): Promise<FactorList> {
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
