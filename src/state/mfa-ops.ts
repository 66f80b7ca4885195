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

/**
 * What a failure was a guess of. `device_code`: a user code typed on the device verification page
 * (RFC 8628 §5.1), counted by `device.lookup` only.
 */
export type ThrottleKind = 'password' | 'totp' | 'recovery' | 'webauthn' | 'device_code';

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
  /**
   * A reservation: { ok: true } (the attempt counted as in flight, see MAX_PENDING_ATTEMPTS) or
   * Throttled (nothing written). No longer proposed for TOTP (totp.verify decides in one command).
   */
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
   * Older nodes' TOTP success (after their throttle.check); still applied, no longer proposed.
   * The worker verified a code and found it matches `step` (T = floor(unixSeconds / 30)).
   * Apply: throttled → Throttled; step <= lastStep → { ok: false, reason: 'replay' } (audited
   * mfa.replay_refused, counted as a failure); else lastStep = step, confirms an unconfirmed
   * factor (audited mfa.enrolled) and returns { ok: true, enrolled: boolean } (mfa.verified).
   */
  | { op: 'totp.accept'; args: { sub: string; step: number; meta: RequestMeta } }
  /**
   * One TOTP attempt in one command (what the service proposes; throttle.check + totp.accept /
   * throttle.fail are still applied for nodes of an older version during a rolling upgrade, but
   * no longer proposed). The worker matched the code against the factor created at `createdAt`
   * (from its read) and found `step`, or null for no match. Apply, in this order: throttled or
   * locked → Throttled, nothing evaluated or written; no factor → NOT_FOUND; the factor is not
   * the one read (another createdAt) → CONFLICT (read again); step null → a counted failure
   * (mfa.failed, maybe user.locked): { ok: false, reason: 'invalid', retryAt? } or Throttled
   * 'locked' when it locked the user; step <= lastStep → { ok: false, reason: 'replay' }
   * (mfa.replay_refused, counted); else as totp.accept: { ok: true, enrolled }. The check and the
   * outcome are one command, so parallel guesses are each counted, in log order, before any is
   * answered: no reservation is needed (docs/mfa.md "Verification path").
   */
  | { op: 'totp.verify'; args: { sub: string; step: number | null; createdAt: number; meta: RequestMeta } }
  /** totp.verify, then (accepted only) the tokens domain's session.create / session.replace with these args: { factor, session? }. */
  | { op: 'totp.signIn'; args: { verify: { sub: string; step: number | null; createdAt: number; meta: RequestMeta }; session: { op: 'session.create' | 'session.replace'; args: Record<string, unknown> } } }
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
  /**
   * One assertion in one command (what the service proposes; throttle.check, webauthn.consume,
   * throttle.fail and webauthn.accept stay applied for older nodes, no longer proposed for an
   * assertion). `sub`: the user the assertion must be of (null: passkey login). The worker found
   * the credential (`credentialId`, `owner`; both null when none of this user) and checked the
   * signature against the response's challenge (`newCounter`, null when it did not verify).
   * Apply: throttled → Throttled (nothing written); challenge bad → { ok: false, reason:
   * 'challenge', why: 'missing' | 'unknown' | 'used' | 'expired' | 'purpose' | 'other_user',
   * retryAt? } (spent if it existed; counted); no credential → { ok: false, reason:
   * 'unknown_credential', retryAt? } (counted); the credential no longer the owner's → NOT_FOUND;
   * no valid signature → { ok: false, reason: 'invalid', retryAt? } (counted against the owner);
   * the owner throttled → Throttled; counter regression → { ok: false, reason:
   * 'counter_regression' } (audited, counted); else { ok: true } (mfa.verified). A counted
   * failure that locks the user answers Throttled 'locked'.
   */
  | {
      op: 'webauthn.verify';
      args: { sub: string | null; challenge: string | null; credentialId: string | null; owner: string | null; newCounter: number | null; meta: RequestMeta };
    }
  | { op: 'webauthn.remove'; args: { sub: string; credentialId: string; meta: RequestMeta } }
  // --- recovery codes ---
  /** Replace the user's codes with these hashes (10). Audited mfa.recovery_regenerated. */
  | { op: 'recovery.set'; args: { sub: string; hashes: readonly string[]; meta: RequestMeta } }
  /** Use one code once: { ok: true, remaining, forceReenroll } or { ok: false, reason: 'invalid' } (counted) or Throttled. Audited mfa.recovery_used. */
  | { op: 'recovery.use'; args: { sub: string; hash: string; meta: RequestMeta } }
  // --- device user codes (RFC 8628 §5.1: "rate-limit user_code verification attempts") ---
  /**
   * The signed-in user `sub` typed a user code on the device page; apply looks it up (the tokens
   * domain's `tok.ucode` / `tok.device`) and decides in the same command: throttled or locked
   * (kind device_code, per user and per IP) → Throttled, nothing looked up or written; a code that
   * names no pending, unexpired request → a counted failure (mfa.failed factor device_code, maybe
   * user.locked): { ok: false, reason: 'unknown' | 'used' | 'expired', retryAt? } (retryAt when
   * this failure started a backoff), or Throttled 'locked' when it locked the user; a pending code
   * → { ok: true, device: DeviceView }, nothing written: a found code resets no counter (anyone can
   * make a valid code at /device_authorization, so finding one proves nothing about the guesser).
   */
  | { op: 'device.lookup'; args: { sub: string; userCodeHash: string; meta: RequestMeta } }
  // --- admin ---
  /** Remove every factor of the user (audited mfa.reset). */
  | { op: 'reset'; args: { sub: string; meta: RequestMeta } }
  /** Per-user policy: MFA required for this user. */
  | { op: 'policy.set'; args: { sub: string; required: boolean; meta: RequestMeta } };
// reads: 'factors' { sub } → { totp: TotpFactorView | null, webauthn: WebAuthnCredentialView[], recovery: { remaining: number }, required: boolean, lock: { failures, lockedUntil, backoffUntil } }
//        'webauthn.byCredentialId' { credentialId } → { sub, credential } | null (passkey login without a username)
