// The replicated MFA operations (issue 6): the contract between the HTTP workers (src/mfa/,
// src/oauth/ login flow) and the apply module (src/state/mfa.ts). Same conventions as
// oauth-ops.ts: times in ms since the epoch, compared with ctx.ts only; binary as Uint8Array;
// refusals that change nothing are DomainErrors; outcomes that must write *and* report a failure
// (a replay, a counter regression, a lockout) are normal results with ok: false.
//
// Every op also takes `meta: { ip: string | null }` (the client IP the serving node saw), used for
// per-IP throttling and audit records.
//
// What apply decides (DESIGN principle 3): TOTP replay (a time step accepted once per user, on
// every node), WebAuthn challenge single use and signature-counter monotonicity, recovery-code
// single use, and throttling: failures counted per user and per IP, exponential backoff, lockout.
// The worker does the cryptography (TOTP code check with the unsealed secret, WebAuthn signature
// check with @simplewebauthn/server) and proposes the *result*; apply enforces the rules that need
// cluster-wide state.

export interface RequestMeta {
  readonly ip: string | null;
}

/** Throttling policy: constants of the state machine (every node must apply the same). */
export const THROTTLE = {
  /** Failures allowed before backoff starts. */
  freeFailures: 3,
  /** Backoff after the (freeFailures+1)-th failure; doubles with each further failure. */
  baseBackoffMs: 1_000,
  maxBackoffMs: 15 * 60_000,
  /** Failures that lock the user (until an admin unlocks or lockMs passes). */
  lockAfterFailures: 10,
  lockMs: 60 * 60_000,
  /** Failure counters reset this long after the last failure. */
  windowMs: 24 * 3_600_000,
  /** Per-IP: failures across all users from one IP before that IP is backed off. */
  ipFreeFailures: 20,
} as const;

export type ThrottleKind = 'password' | 'totp' | 'recovery' | 'webauthn';

/** Answer of any op that consumed a credential attempt when the user or IP is throttled: nothing else happened. */
export interface Throttled {
  readonly ok: false;
  readonly reason: 'throttled' | 'locked';
  /** When a new attempt will be considered. */
  readonly retryAt: number;
}

export interface TotpFactorView {
  readonly confirmed: boolean;
  readonly createdAt: number;
  /** Sealed base32 secret (aad `totp:<sub>`). */
  readonly sealed: Uint8Array;
}

export interface WebAuthnCredentialView {
  /** base64url credential id. */
  readonly id: string;
  readonly publicKey: Uint8Array;
  readonly counter: number;
  readonly transports: readonly string[];
  readonly name: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  /** Discoverable (resident) credential with a user handle: passkey login without a username. */
  readonly discoverable: boolean;
}

export type MfaOp =
  // --- throttling, checked before any credential verification and counted after a failure ---
  /** Read-only in effect: { ok: true } or Throttled (nothing written). */
  | { op: 'throttle.check'; args: { sub: string | null; kind: ThrottleKind; meta: RequestMeta } }
  /** A failed password/TOTP/recovery/WebAuthn attempt: counts per user and per IP; may lock (audited). Returns { ok: true, failures } or Throttled/locked. */
  | { op: 'throttle.fail'; args: { sub: string | null; kind: ThrottleKind; meta: RequestMeta } }
  /** A successful primary login resets the password counter. */
  | { op: 'throttle.reset'; args: { sub: string; kind: ThrottleKind; meta: RequestMeta } }
  /** Admin: clear counters and lock. */
  | { op: 'unlock'; args: { sub: string; meta: RequestMeta } }
  // --- TOTP (RFC 6238) ---
  /** Store an unconfirmed secret (replaces an unconfirmed one; ALREADY_EXISTS if a confirmed one exists). */
  | { op: 'totp.enroll'; args: { sub: string; sealed: Uint8Array; meta: RequestMeta } }
  /**
   * The worker verified a code and found it matches `step` (T = floor(unixSeconds / 30)).
   * Apply: throttled → Throttled; step <= lastStep → { ok: false, reason: 'replay' } (audited
   * mfa.replay_refused, counted as a failure); else lastStep = step, confirms an unconfirmed
   * factor (audited mfa.enrolled) and returns { ok: true, enrolled: boolean } (mfa.verified).
   */
  | { op: 'totp.accept'; args: { sub: string; step: number; meta: RequestMeta } }
  | { op: 'totp.remove'; args: { sub: string; meta: RequestMeta } }
  // --- WebAuthn ---
  /** A single-use challenge, valid until exp, bound to a purpose and (for registration / 2nd factor) a user. */
  | { op: 'webauthn.challenge'; args: { challenge: string; purpose: 'register' | 'authenticate'; sub: string | null; exp: number } }
  /** Consume a challenge: { ok: true, sub } or { ok: false, reason: 'unknown' | 'expired' | 'used' | 'purpose' }. Written either way (used). */
  | { op: 'webauthn.consume'; args: { challenge: string; purpose: 'register' | 'authenticate' } }
  /** Add a verified credential (ALREADY_EXISTS for a known id). Audited mfa.enrolled. At most 20 per user. */
  | { op: 'webauthn.register'; args: { sub: string; credential: WebAuthnCredentialView; meta: RequestMeta } }
  /**
   * The worker verified an assertion with the stored public key; newCounter is the authenticator's.
   * Apply: counter regression (newCounter <= stored, unless both are 0: RFC/W3C "counter not
   * supported") → { ok: false, reason: 'counter_regression' } (audited mfa.counter_regression,
   * counted as a failure); else stores the counter and lastUsedAt → { ok: true } (mfa.verified).
   */
  | { op: 'webauthn.accept'; args: { sub: string; credentialId: string; newCounter: number; meta: RequestMeta } }
  | { op: 'webauthn.remove'; args: { sub: string; credentialId: string; meta: RequestMeta } }
  // --- recovery codes ---
  /** Replace the user's codes with these hashes (10). Audited mfa.recovery_regenerated. */
  | { op: 'recovery.set'; args: { sub: string; hashes: readonly string[]; meta: RequestMeta } }
  /** Use one code once: { ok: true, remaining, forceReenroll } or { ok: false, reason: 'invalid' } (counted) or Throttled. Audited mfa.recovery_used. */
  | { op: 'recovery.use'; args: { sub: string; hash: string; meta: RequestMeta } }
  // --- admin ---
  /** Remove every factor of the user (audited mfa.reset). */
  | { op: 'reset'; args: { sub: string; meta: RequestMeta } }
  /** Per-user policy: MFA required for this user. */
  | { op: 'policy.set'; args: { sub: string; required: boolean; meta: RequestMeta } };
// reads: 'factors' { sub } → { totp: TotpFactorView | null, webauthn: WebAuthnCredentialView[], recovery: { remaining: number }, required: boolean, lock: { failures, lockedUntil, backoffUntil } }
//        'webauthn.byCredentialId' { credentialId } → { sub, credential } | null (passkey login without a username)
