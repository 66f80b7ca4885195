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

// The operations themselves (arguments, results, refusals) are the table MFA_WRITES / MFA_READS in
// src/state/mfa.ts: the single source of their types, their apply-side checks and the client stubs
// (src/state/contract.ts, docs/write-path.md "The contract").
