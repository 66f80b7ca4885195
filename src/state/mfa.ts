// The mfa domain (issue 6; its operations are the table MFA_WRITES below, shared types in src/state/mfa-ops.ts): the decisions about second factors that
// need cluster-wide state. The worker (src/mfa/service.ts) does the cryptography and proposes the
// result; apply decides, with nothing but state and ctx.ts:
// - TOTP replay: a time step is accepted at most once per user (RFC 6238 §5.2), on every node.
// - WebAuthn challenges are single use with an expiry, and signature counters only go up (W3C
//   WebAuthn Level 3 §7.2 step 22: a counter that does not grow signals a cloned authenticator).
// - Recovery codes are single use.
// - Throttling: failures counted per user (and per kind of credential) and per client IP, with
//   exponential backoff and a lockout; because the counters are replicated and decided here, an
//   attacker gains nothing by spreading attempts over nodes.
// Every event is audited with appendAudit in the same command as the change it describes.
//
// Records (msgpack):
//   mfa.totp        sub → TotpRecord { sealed, confirmed, createdAt, lastStep }
//   mfa.webauthn    sub → WebAuthnCredentialView[] (at most MAX_CREDENTIALS)
//   mfa.cred        credential id → sub (passkey login without a username)
//   mfa.chal        challenge → ChallengeRecord { purpose, sub, exp, usedAt }, with an entry in the
//                   tokens domain's expiry index (tok.exp), so the leader's existing sweep deletes
//                   it at exp (src/state/tokens.ts lists `mfa.chal` among the swept keyspaces).
//   mfa.recovery    sub → RecoveryRecord { hashes (unused ones), total, createdAt }
//   mfa.throttle    sub → UserThrottle { kinds: { [kind]: Counter }, lockedUntil, exp }
//   mfa.ipthrottle  ip  → Counter & { exp }
//                   Both carry `exp` (when everything in them is forgotten: the lock over, the last
//                   failure windowMs old) with an entry in tok.exp, so the sweep deletes them: an
//                   attacker rotating through IPs cannot grow state without bound.
//   mfa.policy      sub → PolicyRecord { required, reenrollAfterRecovery }
import type { ApplyContext, Domain, StateReader, Tx } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';
import type { AuditMeta } from './audit.ts';
import type { AuditEvent, AuditEventType } from './audit-ops.ts';
import { THROTTLE } from './mfa-ops.ts';
import type { Throttled, ThrottleKind, TotpFactorView, WebAuthnCredentialView } from './mfa-ops.ts';
import { EXPIRY_KEYSPACE, applyLoginSessionOp, deviceByUserCode, endUserSessions, expiryIndexKey } from './tokens.ts';
import type { DeviceView } from './tokens.ts';
import { MAX_ID_CHARS, bool, bytes, int, invalid, isPlainObject, obj, str, time, tokenId } from './validate.ts';
import { check, nullable, object, optional, read, readStubs, tableDomain, unknownValue, withDefault, write, writeStubs } from './contract.ts';
import type { Infer, Refuse } from './contract.ts';

export const MFA_DOMAIN = 'mfa';
export const TOTP_KEYSPACE = 'mfa.totp';
export const WEBAUTHN_KEYSPACE = 'mfa.webauthn';
export const CREDENTIAL_INDEX_KEYSPACE = 'mfa.cred';
export const CHALLENGES_KEYSPACE = 'mfa.chal';
export const RECOVERY_KEYSPACE = 'mfa.recovery';
export const THROTTLE_KEYSPACE = 'mfa.throttle';
export const IP_THROTTLE_KEYSPACE = 'mfa.ipthrottle';
export const POLICY_KEYSPACE = 'mfa.policy';

/** WebAuthn credentials per user. */
export const MAX_CREDENTIALS = 20;
/** Recovery codes per set (exactly this many). */
export const RECOVERY_CODES = 10;
/** RFC 6238 §4: X = 30 s. Apply only needs it to refuse steps far from its own time. */
export const TOTP_PERIOD_MS = 30_000;
/**
 * How far (in steps) a proposed TOTP step may be from the command's time. The worker accepts ±1
 * (at most ±2); one more absorbs the gap between the worker's clock and the leader's. A step far
 * in the future would otherwise block the user's TOTP until that time (every real code a "replay").
 */
export const MAX_STEP_SKEW = 3;
/** Longest lifetime of a WebAuthn challenge (the service uses 5 minutes, W3C §15.4's advice). */
export const MAX_CHALLENGE_TTL_MS = 10 * 60_000;
/** W3C WebAuthn §5.8.3 / §4: a credential id is at most 1023 bytes: 1364 base64url characters. */
export const MAX_CREDENTIAL_ID_CHARS = 1_364;
/** A COSE public key (EC2, OKP, or RSA up to 4096 bits) fits easily. */
export const MAX_PUBLIC_KEY_BYTES = 2_048;
/** Sealed TOTP secret: a 32-character base32 secret sealed is < 100 bytes. */
export const MAX_SEALED_SECRET_BYTES = 1_024;
export const MAX_TRANSPORTS = 8;
export const MAX_TRANSPORT_CHARS = 32;
export const MAX_CREDENTIAL_NAME_CHARS = 64;
/**
 * Attempts of one kind a user may have in flight (let through by throttle.check, not yet ended by
 * a failure or a success). The worker learns whether a code is right *before* apply counts the
 * failure, so without this bound N concurrent requests (on one node or many) would all pass the
 * check and get N guesses evaluated before the first failure lands. Two, not one: a double-clicked
 * submit must not lock a real user out of their own correct code.
 */
export const MAX_PENDING_ATTEMPTS = 2;
/** A let-through attempt whose worker never reported back (crash, timeout) frees its slot after this. */
export const ATTEMPT_LEASE_MS = 10_000;
/** W3C WebAuthn §6.1: signCount is an unsigned 32-bit integer. */
export const MAX_SIGN_COUNT = 0xffff_ffff;

const KINDS: readonly ThrottleKind[] = ['password', 'totp', 'recovery', 'webauthn', 'device_code'];
/** base64url without padding: credential ids, challenges, token hashes. */
const B64URL_RE = /^[A-Za-z0-9_-]+$/;

interface TotpRecord {
  readonly sealed: Uint8Array;
  readonly confirmed: boolean;
  readonly createdAt: number;
  /** The last accepted time step (RFC 6238 T); null before the first accepted code. */
  readonly lastStep: number | null;
}

type ChallengePurpose = 'register' | 'authenticate';

interface ChallengeRecord {
  readonly purpose: ChallengePurpose;
  readonly sub: string | null;
  readonly exp: number;
  /** Kept after use until exp, so a second use is told apart from an unknown challenge. */
  readonly usedAt: number | null;
}

interface RecoveryRecord {
  /** Hashes of the unused codes. */
  readonly hashes: string[];
  readonly total: number;
  readonly createdAt: number;
}

interface Counter {
  readonly failures: number;
  readonly lastFailureAt: number;
  readonly backoffUntil: number;
  /** Per user only: attempts let through by throttle.check and not finished yet (see MAX_PENDING_ATTEMPTS). */
  readonly pending?: number;
  readonly pendingUntil?: number;
}

interface UserThrottle {
  readonly kinds: Partial<Record<ThrottleKind, Counter>>;
  readonly lockedUntil: number | null;
}

const EMPTY = new Uint8Array(0);

interface PolicyRecord {
  readonly required: boolean;
  /** Using a recovery code asks the flow to enroll a new factor (forceReenroll). */
  readonly reenrollAfterRecovery: boolean;
}

const DEFAULT_POLICY: PolicyRecord = { required: false, reenrollAfterRecovery: true };

export interface LockView {
  /** Live failures (within THROTTLE.windowMs of the last one) summed over kinds, as of the last write. */
  readonly failures: number;
  readonly lockedUntil: number | null;
  readonly backoffUntil: number | null;
}

export interface FactorsView {
  readonly totp: TotpFactorView | null;
  readonly webauthn: WebAuthnCredentialView[];
  readonly recovery: { readonly remaining: number };
  readonly required: boolean;
  readonly reenrollAfterRecovery: boolean;
  readonly lock: LockView;
}

// ---------------------------------------------------------------------------------------------
// Storage helpers

function get<T>(r: StateReader, ks: string, key: string): T | null {
  const b = r.get(ks, key);
  return b === undefined ? null : unpackValue<T>(b);
}

function put(tx: Tx, ks: string, key: string, v: unknown): void {
  tx.put(ks, key, packValue(v));
}

function credentials(r: StateReader, sub: string): WebAuthnCredentialView[] {
  return get<WebAuthnCredentialView[]>(r, WEBAUTHN_KEYSPACE, sub) ?? [];
}

function putCredentials(tx: Tx, sub: string, list: readonly WebAuthnCredentialView[]): void {
  if (list.length === 0) tx.del(WEBAUTHN_KEYSPACE, sub);
  else put(tx, WEBAUTHN_KEYSPACE, sub, list);
}

/** Write a throttle record with its expiry, moving its tok.exp entry (the sweep deletes it at exp). */
function putExpiring(tx: Tx, ks: string, key: string, value: object, exp: number): void {
  const old = get<{ exp?: number }>(tx, ks, key);
  if (old?.exp !== undefined && old.exp !== exp) tx.del(EXPIRY_KEYSPACE, expiryIndexKey(old.exp, ks, key));
  put(tx, ks, key, { ...value, exp });
  tx.put(EXPIRY_KEYSPACE, expiryIndexKey(exp, ks, key), EMPTY);
}

function delExpiring(tx: Tx, ks: string, key: string): void {
  const old = get<{ exp?: number }>(tx, ks, key);
  if (old === null) return;
  tx.del(ks, key);
  if (old.exp !== undefined) tx.del(EXPIRY_KEYSPACE, expiryIndexKey(old.exp, ks, key));
}

/** When a user's throttle record holds nothing any more: its lock over and every counter forgotten. */
function userThrottleExp(u: UserThrottle): number {
  let exp = u.lockedUntil ?? 0;
  for (const c of Object.values(u.kinds)) {
    exp = Math.max(exp, c.backoffUntil, c.pendingUntil ?? 0);
    if (c.failures > 0) exp = Math.max(exp, c.lastFailureAt + THROTTLE.windowMs);
  }
  return exp;
}

function policy(r: StateReader, sub: string): PolicyRecord {
  return { ...DEFAULT_POLICY, ...(get<PolicyRecord>(r, POLICY_KEYSPACE, sub) ?? {}) };
}

function audit(ctx: ApplyContext, type: AuditEventType, meta: AuditMeta, sub: string | null, details: AuditEvent['details'] = {}): void {
  appendAudit(ctx.tx, ctx.ts, auditEvent(type, meta, { sub, details }));
}

// ---------------------------------------------------------------------------------------------
// Argument checks

function subject(v: unknown, name = 'sub'): string {
  return str(v, name, 1, MAX_ID_CHARS);
}

function nullableSubject(v: unknown, name = 'sub'): string | null {
  return v === null ? null : subject(v, name);
}

function kind(v: unknown): ThrottleKind {
  if (!KINDS.includes(v as ThrottleKind)) throw invalid(`kind must be one of ${KINDS.join(', ')}`);
  return v as ThrottleKind;
}

function purpose(v: unknown): ChallengePurpose {
  if (v !== 'register' && v !== 'authenticate') throw invalid("purpose must be 'register' or 'authenticate'");
  return v;
}

function b64url(v: unknown, name: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !B64URL_RE.test(v)) throw invalid(`${name} must be 1..${max} base64url characters`);
  return v;
}

function credentialView(v: unknown, ts: number): WebAuthnCredentialView {
  const o = obj(v, 'credential');
  const transports = o.transports;
  if (!Array.isArray(transports) || transports.length > MAX_TRANSPORTS) throw invalid(`credential.transports must be an array of at most ${MAX_TRANSPORTS}`);
  const ts2 = transports.map((t, i) => str(t, `credential.transports[${i}]`, 1, MAX_TRANSPORT_CHARS));
  return {
    id: b64url(o.id, 'credential.id', MAX_CREDENTIAL_ID_CHARS),
    publicKey: bytes(o.publicKey, 'credential.publicKey', MAX_PUBLIC_KEY_BYTES),
    counter: int(o.counter, 'credential.counter', 0, MAX_SIGN_COUNT),
    transports: ts2,
    name: str(o.name, 'credential.name', 1, MAX_CREDENTIAL_NAME_CHARS),
    // Apply's own times: the proposer's are not trusted for records.
    createdAt: ts,
    lastUsedAt: null,
    discoverable: bool(o.discoverable, 'credential.discoverable'),
  };
}

// ---------------------------------------------------------------------------------------------
// Throttling

const ZERO: Counter = { failures: 0, lastFailureAt: 0, backoffUntil: 0 };

/** A counter's failures as of ts: forgotten THROTTLE.windowMs after the last one (attempts in flight are kept). */
function live(c: Counter | undefined, ts: number): Counter {
  if (c === undefined) return ZERO;
  if (ts - c.lastFailureAt < THROTTLE.windowMs) return c;
  return c.pending !== undefined && c.pendingUntil !== undefined ? { ...ZERO, pending: c.pending, pendingUntil: c.pendingUntil } : ZERO;
}

/** Attempts in flight as of ts (their lease not over). */
function pendingOf(c: Counter | undefined, ts: number): number {
  return c?.pending !== undefined && c.pendingUntil !== undefined && c.pendingUntil > ts ? c.pending : 0;
}

/** The counter with one attempt in flight fewer (a failure or success ended it). */
function released(c: Counter, ts: number): Counter {
  const n = pendingOf(c, ts) - 1;
  const { pending: _p, pendingUntil: _u, ...rest } = c;
  return n > 0 ? { ...rest, pending: n, pendingUntil: c.pendingUntil! } : rest;
}

/** The user's throttle as of ts. An expired lock has served its purpose: counters start over. */
function userThrottle(r: StateReader, sub: string, ts: number): UserThrottle {
  const u = get<UserThrottle>(r, THROTTLE_KEYSPACE, sub);
  if (u === null || (u.lockedUntil !== null && u.lockedUntil <= ts)) return { kinds: {}, lockedUntil: null };
  return u;
}

/** Backoff after the n-th failure beyond the free ones (n >= 1): base, doubled each time, capped. */
export function backoffMs(n: number): number {
  // 2^40 s is far past the cap; the clamp keeps the arithmetic exact.
  return Math.min(THROTTLE.maxBackoffMs, THROTTLE.baseBackoffMs * 2 ** Math.min(n - 1, 40));
}

/** Throttled if the user is locked, this kind is in backoff for the user, or the IP is in backoff. */
function throttled(r: StateReader, sub: string | null, k: ThrottleKind, ip: string | null, ts: number): Throttled | null {
  if (sub !== null) {
    const u = userThrottle(r, sub, ts);
    if (u.lockedUntil !== null) return { ok: false, reason: 'locked', retryAt: u.lockedUntil };
  }
  let until = 0;
  if (sub !== null) until = live(userThrottle(r, sub, ts).kinds[k], ts).backoffUntil;
  if (ip !== null) until = Math.max(until, live(get<Counter>(r, IP_THROTTLE_KEYSPACE, ip) ?? undefined, ts).backoffUntil);
  return until > ts ? { ok: false, reason: 'throttled', retryAt: until } : null;
}

/**
 * The audit record of a failed attempt: login.failed for a password (sub null: no such user, or
 * the name was malformed), mfa.failed with the factor for the others. Issue 6: every login failure
 * is a security event; it is appended in the same command that counts it.
 */
function auditFailure(ctx: ApplyContext, k: ThrottleKind, meta: AuditMeta, sub: string | null, details: { reason: string; failures?: number }): void {
  if (k === 'password') audit(ctx, 'login.failed', meta, sub, { method: 'pwd', ...details });
  else audit(ctx, 'mfa.failed', meta, sub, { factor: k, ...details });
}

/**
 * Count one failed attempt of kind k for the user (if known) and the IP (if known); may lock the
 * user (audited user.locked). `auditFailed` appends login.failed or mfa.failed (auditFailure; not
 * for replays and counter regressions, which have their own event).
 */
function fail(ctx: ApplyContext, sub: string | null, k: ThrottleKind, meta: AuditMeta, reason: string, auditFailed: boolean, releases = true): { ok: true; failures: number } | Throttled {
  const { tx, ts } = ctx;
  const ip = meta.ip;
  if (ip !== null) {
    const c = live(get<Counter>(tx, IP_THROTTLE_KEYSPACE, ip) ?? undefined, ts);
    const failures = c.failures + 1;
    const over = failures - THROTTLE.ipFreeFailures;
    const backoffUntil = over > 0 ? ts + backoffMs(over) : c.backoffUntil;
    putExpiring(tx, IP_THROTTLE_KEYSPACE, ip, { failures, lastFailureAt: ts, backoffUntil } satisfies Counter, Math.max(ts + THROTTLE.windowMs, backoffUntil));
  }
  let failures = 0;
  if (sub !== null) {
    const u = userThrottle(tx, sub, ts);
    // An attempt that throttle.check let through ends here; totp.verify reserved none, so it
    // must not end one that an older node's throttle.check is still holding.
    const c = releases ? released(live(u.kinds[k], ts), ts) : live(u.kinds[k], ts);
    failures = c.failures + 1;
    const over = failures - THROTTLE.freeFailures;
    const counter: Counter = { ...c, failures, lastFailureAt: ts, backoffUntil: over > 0 ? ts + backoffMs(over) : c.backoffUntil };
    let lockedUntil = u.lockedUntil;
    const locks = lockedUntil === null && failures >= THROTTLE.lockAfterFailures;
    if (locks) lockedUntil = ts + THROTTLE.lockMs;
    const next: UserThrottle = { kinds: { ...u.kinds, [k]: counter }, lockedUntil };
    putExpiring(tx, THROTTLE_KEYSPACE, sub, next, userThrottleExp(next));
    if (auditFailed) auditFailure(ctx, k, meta, sub, { reason, failures });
    if (locks) audit(ctx, 'user.locked', meta, sub, { factor: k, failures, lockedUntil: lockedUntil! });
  } else if (auditFailed) {
    auditFailure(ctx, k, meta, null, { reason });
  }
  return throttled(tx, sub, k, ip, ts) ?? { ok: true, failures };
}

/** A success clears this kind's counter for the user, attempts in flight included (never the lock, never the IP's counter). */
function succeed(tx: Tx, sub: string, k: ThrottleKind, ts: number): void {
  if (tx.get(THROTTLE_KEYSPACE, sub) === undefined) return;
  // userThrottle forgets everything after an expired lock, so the counters that caused it go too.
  const u = userThrottle(tx, sub, ts);
  const kinds = { ...u.kinds };
  delete kinds[k];
  const next: UserThrottle = { kinds, lockedUntil: u.lockedUntil };
  if (u.lockedUntil === null && Object.keys(kinds).length === 0) delExpiring(tx, THROTTLE_KEYSPACE, sub);
  else putExpiring(tx, THROTTLE_KEYSPACE, sub, next, userThrottleExp(next));
}

// ---------------------------------------------------------------------------------------------
// Operations

// Argument schemas of the table below (checked in this order; the first bad field is reported).
const SUB = check((v, n) => subject(v, n));
const NULLABLE_SUB = check((v, n) => nullableSubject(v, n));
const KIND = check(kind);
/** The request's audit meta; absent: no ip, no sub, no client. Callers send any of the fields. */
const META = withDefault<AuditMeta, Partial<AuditMeta>>(auditMeta);
const STEP = check((v, n) => int(v, n, 0, Number.MAX_SAFE_INTEGER));
const CREDENTIAL_ID = check((v, n) => b64url(v, n, MAX_CREDENTIAL_ID_CHARS));
const COUNTER = check((v, n) => int(v, n, 0, MAX_SIGN_COUNT));
const TOKEN_ID = check(tokenId);

/** What a step check (totp.accept, totp.verify) answers. */
type StepAnswer = { ok: false; reason: 'replay' } | { ok: true; enrolled: boolean };
/** A counted failure's answer: the refusal, with the backoff it started (retryAt), or the lock it caused. */
type Counted<R> = (R & { retryAt?: number }) | Throttled;

const TOTP_VERIFY_ARGS = object({ sub: SUB, step: nullable(STEP), createdAt: check(time), meta: META });

/**
 * May this attempt go ahead? Throttled (nothing written) if the user is locked or in backoff, the
 * IP is in backoff, or the user already has MAX_PENDING_ATTEMPTS attempts of this kind in flight;
 * otherwise the attempt is let through and counted as in flight until throttle.fail, a success of
 * the kind (totp.accept, webauthn.accept, recovery.use, throttle.reset), or ATTEMPT_LEASE_MS.
 */
function throttleCheck(ctx: ApplyContext, a: { sub: string | null; kind: ThrottleKind; meta: AuditMeta }): { ok: true } | Throttled {
  const { sub, kind: k, meta } = a;
  const { tx, ts } = ctx;
  const t = throttled(tx, sub, k, meta.ip, ts);
  if (t) return t;
  if (sub !== null) {
    const u = userThrottle(tx, sub, ts);
    const c = live(u.kinds[k], ts);
    const n = pendingOf(c, ts);
    if (n >= MAX_PENDING_ATTEMPTS) return { ok: false, reason: 'throttled', retryAt: c.pendingUntil! } satisfies Throttled;
    const next: UserThrottle = { kinds: { ...u.kinds, [k]: { ...c, pending: n + 1, pendingUntil: ts + ATTEMPT_LEASE_MS } }, lockedUntil: u.lockedUntil };
    putExpiring(tx, THROTTLE_KEYSPACE, sub, next, userThrottleExp(next));
  }
  return { ok: true };
}

function unlock(ctx: ApplyContext, a: { sub: string; meta: AuditMeta }): { wasLocked: boolean } {
  const { sub, meta } = a;
  const u = get<UserThrottle>(ctx.tx, THROTTLE_KEYSPACE, sub);
  const wasLocked = u !== null && u.lockedUntil !== null && u.lockedUntil > ctx.ts;
  delExpiring(ctx.tx, THROTTLE_KEYSPACE, sub);
  audit(ctx, 'user.unlocked', meta, sub, { wasLocked });
  return { wasLocked };
}

function totpEnroll(ctx: ApplyContext, a: { sub: string; sealed: Uint8Array }, refuse: Refuse<'ALREADY_EXISTS'>): Record<string, never> {
  const { sub, sealed } = a;
  const old = get<TotpRecord>(ctx.tx, TOTP_KEYSPACE, sub);
  if (old?.confirmed) refuse('ALREADY_EXISTS', 'the user already has a confirmed TOTP factor; remove it first');
  // Not audited: nothing is enrolled until the first valid code confirms it (mfa.enrolled then).
  // createdAt names the secret for totp.verify's check (a step matched against a replaced secret
  // decides nothing): a replacement in the same millisecond still gets a later one.
  const createdAt = old !== null && old.createdAt >= ctx.ts ? old.createdAt + 1 : ctx.ts;
  put(ctx.tx, TOTP_KEYSPACE, sub, { sealed, confirmed: false, createdAt, lastStep: null } satisfies TotpRecord);
  return {};
}

function totpAccept(ctx: ApplyContext, a: { sub: string; step: number; meta: AuditMeta }, refuse: Refuse<'NOT_FOUND'>): StepAnswer | Throttled {
  const { sub, step, meta } = a;
  const { tx, ts } = ctx;
  const now = Math.floor(ts / TOTP_PERIOD_MS);
  if (Math.abs(step - now) > MAX_STEP_SKEW) throw invalid(`step ${step} is more than ${MAX_STEP_SKEW} steps from the current step ${now}`);
  const t = throttled(tx, sub, 'totp', meta.ip, ts);
  if (t) return t;
  const rec = get<TotpRecord>(tx, TOTP_KEYSPACE, sub);
  if (rec === null) return refuse('NOT_FOUND', 'the user has no TOTP factor');
  return acceptTotpStep(ctx, sub, rec, step, meta, true);
}

/**
 * The end of totp.accept and totp.verify: a matched step is accepted once. RFC 6238 §5.2: "the
 * verifier MUST NOT accept the second attempt of the same OTP after the successful validation has
 * been issued for the first OTP". Steps only move forward, so an older code seen later (within
 * the window) is refused too, audited and counted. `releases`: see fail() (totp.accept's
 * throttle.check reserved an attempt; totp.verify reserves none).
 */
function acceptTotpStep(ctx: ApplyContext, sub: string, rec: TotpRecord, step: number, meta: AuditMeta, releases: boolean): StepAnswer {
  if (rec.lastStep !== null && step <= rec.lastStep) {
    audit(ctx, 'mfa.replay_refused', meta, sub, { factor: 'totp', step, lastStep: rec.lastStep });
    fail(ctx, sub, 'totp', meta, 'replay', false, releases);
    return { ok: false, reason: 'replay' };
  }
  put(ctx.tx, TOTP_KEYSPACE, sub, { ...rec, confirmed: true, lastStep: step } satisfies TotpRecord);
  succeed(ctx.tx, sub, 'totp', ctx.ts);
  const enrolled = !rec.confirmed;
  audit(ctx, enrolled ? 'mfa.enrolled' : 'mfa.verified', meta, sub, { factor: 'totp' });
  return { ok: true, enrolled };
}

/**
 * One TOTP attempt, decided whole: the worker matched the code against the secret of the factor
 * created at `createdAt` and proposes the step it matched (null: no match); apply checks the
 * throttle and records the outcome in the same command.
 *
 * This replaces throttle.check (a reservation) + totp.accept / throttle.fail. The reservation
 * existed because the worker learns whether a guess is right before apply counts it: with the
 * check and the outcome in two commands, N parallel guesses (over one node or several) could all
 * pass the check before the first failure landed. Here the check and the outcome are one command,
 * applied in log order on every node, and the worker answers only with apply's result: of N
 * parallel guesses, each is counted (or refused as throttled, unevaluated) after every guess
 * before it in the log, and none is answered before it is counted. What the worker computed for
 * a refused guess is never seen by anyone.
 */
function totpVerify(ctx: ApplyContext, a: Infer<typeof TOTP_VERIFY_ARGS>, refuse: Refuse<'NOT_FOUND' | 'CONFLICT'>): StepAnswer | Counted<{ ok: false; reason: 'invalid' }> {
  const { sub, step, createdAt, meta } = a;
  const { tx, ts } = ctx;
  const now = Math.floor(ts / TOTP_PERIOD_MS);
  if (step !== null && Math.abs(step - now) > MAX_STEP_SKEW) throw invalid(`step ${step} is more than ${MAX_STEP_SKEW} steps from the current step ${now}`);
  const t = throttled(tx, sub, 'totp', meta.ip, ts);
  if (t) return t;
  const rec = get<TotpRecord>(tx, TOTP_KEYSPACE, sub);
  if (rec === null) return refuse('NOT_FOUND', 'the user has no TOTP factor');
  // The worker may have read the factor from a node that had not applied a re-enrollment yet: a
  // step matched against another secret decides nothing (the worker reads again and retries).
  if (rec.createdAt !== createdAt) refuse('CONFLICT', 'the TOTP factor changed since it was read');
  if (step === null) {
    const r = fail(ctx, sub, 'totp', meta, 'invalid', true, false);
    if (r.ok) return { ok: false, reason: 'invalid' };
    return r.reason === 'locked' ? r : { ok: false, reason: 'invalid', retryAt: r.retryAt };
  }
  return acceptTotpStep(ctx, sub, rec, step, meta, false);
}

/**
 * totp.verify and, when it accepts the code, the login session it upgrades (tokens session.create
 * or session.replace, with the authorization code when the flow ends in one) in ONE command: a
 * TOTP sign-in is one replicated, fsynced write instead of two (oauth/mfa.ts handleMfaTotp). A
 * refused code writes exactly what totp.verify writes (the counted failure, its audit record) and
 * no session: the answer is { factor } with totp.verify's result. NOT_FOUND and CONFLICT refuse
 * the whole command, as totp.verify's do; a session the tokens domain refuses (a hash that exists)
 * refuses it too, the accepted step included, so the same code may be tried again.
 */
const SIGN_IN_SESSION = check((v, name) => {
  const session = obj(v, name);
  if (session.op !== 'session.create' && session.op !== 'session.replace') throw invalid(`${name}.op must be session.create or session.replace`);
  // The session's own args are the tokens domain's (session.create / session.replace check them).
  const op: 'session.create' | 'session.replace' = session.op;
  return { op, args: obj(session.args, `${name}.args`) };
});

function totpSignIn(
  ctx: ApplyContext,
  a: { session: { op: 'session.create' | 'session.replace'; args: Record<string, unknown> }; verify: Infer<typeof TOTP_VERIFY_ARGS> },
  refuse: Refuse<'NOT_FOUND' | 'CONFLICT' | 'ALREADY_EXISTS'>,
): { factor: ReturnType<typeof totpVerify>; session?: unknown } {
  const factor = totpVerify(ctx, a.verify, refuse);
  if (!factor.ok) return { factor };
  return { factor, session: applyLoginSessionOp(ctx, a.session.op, a.session.args, refuse) };
}

function totpRemove(ctx: ApplyContext, a: { sub: string; meta: AuditMeta }): { existed: boolean } {
  const { sub, meta } = a;
  const existed = ctx.tx.get(TOTP_KEYSPACE, sub) !== undefined;
  ctx.tx.del(TOTP_KEYSPACE, sub);
  if (existed) audit(ctx, 'mfa.reset', meta, sub, { factor: 'totp' });
  return { existed };
}

function webauthnChallenge(ctx: ApplyContext, a: { challenge: string; purpose: ChallengePurpose; sub: string | null; exp: number }, refuse: Refuse<'ALREADY_EXISTS'>): Record<string, never> {
  const { challenge, purpose: p, sub, exp } = a;
  const { tx, ts } = ctx;
  if (p === 'register' && sub === null) throw invalid('a registration challenge needs a sub');
  if (exp <= ts || exp > ts + MAX_CHALLENGE_TTL_MS) throw invalid(`exp must be in (now, now + ${MAX_CHALLENGE_TTL_MS} ms]`);
  if (tx.get(CHALLENGES_KEYSPACE, challenge) !== undefined) refuse('ALREADY_EXISTS', 'challenge already exists');
  put(tx, CHALLENGES_KEYSPACE, challenge, { purpose: p, sub, exp, usedAt: null } satisfies ChallengeRecord);
  tx.put(EXPIRY_KEYSPACE, expiryIndexKey(exp, CHALLENGES_KEYSPACE, challenge), new Uint8Array(0));
  return {};
}

function webauthnConsume(ctx: ApplyContext, a: { challenge: string; purpose: ChallengePurpose }): { ok: false; reason: 'unknown' | 'used' | 'expired' | 'purpose' } | { ok: true; sub: string | null } {
  const { challenge, purpose: p } = a;
  const { tx, ts } = ctx;
  const rec = get<ChallengeRecord>(tx, CHALLENGES_KEYSPACE, challenge);
  if (rec === null) return { ok: false, reason: 'unknown' };
  if (rec.usedAt !== null) return { ok: false, reason: 'used' };
  // W3C WebAuthn §13.4.3: a challenge is used once. Whatever the outcome, this one is spent.
  put(tx, CHALLENGES_KEYSPACE, challenge, { ...rec, usedAt: ts } satisfies ChallengeRecord);
  if (rec.exp <= ts) return { ok: false, reason: 'expired' };
  if (rec.purpose !== p) return { ok: false, reason: 'purpose' };
  return { ok: true, sub: rec.sub };
}

function webauthnRegister(ctx: ApplyContext, a: { sub: string; meta: AuditMeta; credential?: unknown }, refuse: Refuse<'ALREADY_EXISTS' | 'RESOURCE_EXHAUSTED'>): Record<string, never> {
  const { sub, meta } = a;
  const { tx, ts } = ctx;
  // Checked here, not by the schema: the record's times are apply's (ctx.ts).
  const cred = credentialView(a.credential, ts);
  if (tx.get(CREDENTIAL_INDEX_KEYSPACE, cred.id) !== undefined) refuse('ALREADY_EXISTS', 'this credential is already registered');
  const list = credentials(tx, sub);
  if (list.length >= MAX_CREDENTIALS) refuse('RESOURCE_EXHAUSTED', `a user has at most ${MAX_CREDENTIALS} WebAuthn credentials`);
  putCredentials(tx, sub, [...list, cred]);
  put(tx, CREDENTIAL_INDEX_KEYSPACE, cred.id, sub);
  audit(ctx, 'mfa.enrolled', meta, sub, { factor: 'webauthn', credentialId: cred.id, discoverable: cred.discoverable });
  return {};
}

/** A counted WebAuthn failure's answer: the user locked by it, or `refusal` (with the backoff it started, if any). */
function failedWebauthn<R extends object>(ctx: ApplyContext, sub: string | null, meta: AuditMeta, refusal: R): Counted<R> {
  const r = fail(ctx, sub, 'webauthn', meta, 'invalid', true, false);
  if (r.ok) return refusal;
  return r.reason === 'locked' ? r : { ...refusal, retryAt: r.retryAt };
}

/**
 * One WebAuthn assertion (second factor with `sub`, passkey login with sub null), decided whole,
 * as totp.verify is for TOTP: what throttle.check, webauthn.consume, throttle.fail and
 * webauthn.accept decided in up to three commands. The worker found the credential (`credentialId`
 * and its `owner`, null when there is none for this user) and checked the signature against the
 * response's own challenge (`newCounter`, null when it did not verify); apply, in today's order:
 * throttled → Throttled, nothing written; the challenge (W3C WebAuthn §13.4.3) unknown, used,
 * expired, for another purpose or another user → spent and a counted failure; no credential → a
 * counted failure; the credential not the owner's any more → NOT_FOUND (nothing written); no valid
 * signature → a counted failure of the owner; the owner throttled (passkey login) → Throttled;
 * counter regression → refused and counted (mfa.counter_regression); else the counter is recorded
 * (mfa.verified). Audit records as the separate ops wrote them.
 */
type ChallengeWhy = 'missing' | 'unknown' | 'used' | 'expired' | 'purpose' | 'other_user';

function webauthnVerify(
  ctx: ApplyContext,
  a: { sub: string | null; challenge: string | null; credentialId: string | null; owner: string | null; newCounter: number | null; meta: AuditMeta },
  refuse: Refuse<'NOT_FOUND'>,
): Counted<{ ok: false; reason: 'challenge'; why: ChallengeWhy }> | Counted<{ ok: false; reason: 'unknown_credential' | 'invalid' }> | ReturnType<typeof recordAssertion> {
  const { sub, challenge, credentialId, owner, newCounter, meta } = a;
  if ((credentialId === null) !== (owner === null)) throw invalid('credentialId and owner are both given or both null');
  if (owner === null && newCounter !== null) throw invalid('newCounter needs a credential');
  const { tx, ts } = ctx;
  const t = throttled(tx, sub, 'webauthn', meta.ip, ts);
  if (t) return t;
  const rec = challenge === null ? null : get<ChallengeRecord>(tx, CHALLENGES_KEYSPACE, challenge);
  let why: ChallengeWhy | null = rec === null ? (challenge === null ? 'missing' : 'unknown') : rec.usedAt !== null ? 'used' : null;
  if (rec !== null && rec.usedAt === null) {
    put(tx, CHALLENGES_KEYSPACE, challenge!, { ...rec, usedAt: ts } satisfies ChallengeRecord);
    why = rec.exp <= ts ? 'expired' : rec.purpose !== 'authenticate' ? 'purpose' : rec.sub !== sub ? 'other_user' : null;
  }
  if (why !== null) return failedWebauthn(ctx, sub, meta, { ok: false, reason: 'challenge', why } as const);
  if (credentialId === null || owner === null || (sub !== null && owner !== sub)) return failedWebauthn(ctx, sub, meta, { ok: false, reason: 'unknown_credential' } as const);
  const list = credentials(tx, owner);
  const i = list.findIndex((c) => c.id === credentialId);
  if (i < 0) return refuse('NOT_FOUND', 'the user has no such credential');
  if (newCounter === null) return failedWebauthn(ctx, owner, meta, { ok: false, reason: 'invalid' } as const);
  const held = throttled(tx, owner, 'webauthn', meta.ip, ts);
  if (held) return held;
  return recordAssertion(ctx, owner, list, i, newCounter, meta, false);
}

/**
 * The counter check and record of a verified assertion by credential list[i] of `sub`
 * (webauthn.verify and webauthn.accept). W3C WebAuthn Level 3 §7.2 step 22: if either counter is
 * nonzero, the new one must be greater; otherwise "this is a signal that the authenticator may be
 * cloned". We refuse (RP's choice), audited and counted. `releases`: see fail().
 */
function recordAssertion(ctx: ApplyContext, sub: string, list: readonly WebAuthnCredentialView[], i: number, newCounter: number, meta: AuditMeta, releases: boolean): { ok: true } | { ok: false; reason: 'counter_regression' } {
  const { tx, ts } = ctx;
  const cred = list[i]!;
  const credentialId = cred.id;
  if ((newCounter !== 0 || cred.counter !== 0) && newCounter <= cred.counter) {
    audit(ctx, 'mfa.counter_regression', meta, sub, { factor: 'webauthn', credentialId, stored: cred.counter, received: newCounter });
    fail(ctx, sub, 'webauthn', meta, 'counter_regression', false, releases);
    return { ok: false, reason: 'counter_regression' };
  }
  const next = [...list];
  next[i] = { ...cred, counter: newCounter, lastUsedAt: ts };
  putCredentials(tx, sub, next);
  succeed(tx, sub, 'webauthn', ts);
  audit(ctx, 'mfa.verified', meta, sub, { factor: 'webauthn', credentialId });
  return { ok: true };
}

function webauthnAccept(ctx: ApplyContext, a: { sub: string; credentialId: string; newCounter: number; meta: AuditMeta }, refuse: Refuse<'NOT_FOUND'>): ReturnType<typeof recordAssertion> | Throttled {
  const { sub, credentialId, newCounter, meta } = a;
  const { tx, ts } = ctx;
  const t = throttled(tx, sub, 'webauthn', meta.ip, ts);
  if (t) return t;
  const list = credentials(tx, sub);
  const i = list.findIndex((c) => c.id === credentialId);
  if (i < 0) return refuse('NOT_FOUND', 'the user has no such credential');
  return recordAssertion(ctx, sub, list, i, newCounter, meta, true);
}

function webauthnRemove(ctx: ApplyContext, a: { sub: string; credentialId: string; meta: AuditMeta }): { existed: boolean } {
  const { sub, credentialId, meta } = a;
  const { tx } = ctx;
  const list = credentials(tx, sub);
  const next = list.filter((c) => c.id !== credentialId);
  if (next.length === list.length) return { existed: false };
  putCredentials(tx, sub, next);
  tx.del(CREDENTIAL_INDEX_KEYSPACE, credentialId);
  audit(ctx, 'mfa.reset', meta, sub, { factor: 'webauthn', credentialId });
  return { existed: true };
}

const RECOVERY_HASHES = check((hashes, name): string[] => {
  if (!Array.isArray(hashes) || hashes.length !== RECOVERY_CODES) throw invalid(`${name} must be an array of ${RECOVERY_CODES}`);
  const list = hashes.map((h, i) => tokenId(h, `${name}[${i}]`));
  if (new Set(list).size !== list.length) throw invalid(`${name} must be distinct`);
  return list;
});

function recoverySet(ctx: ApplyContext, a: { sub: string; meta: AuditMeta; hashes: string[] }): Record<string, never> {
  const { sub, meta, hashes: list } = a;
  put(ctx.tx, RECOVERY_KEYSPACE, sub, { hashes: list, total: list.length, createdAt: ctx.ts } satisfies RecoveryRecord);
  audit(ctx, 'mfa.recovery_regenerated', meta, sub, { count: list.length });
  return {};
}

function recoveryUse(ctx: ApplyContext, a: { sub: string; hash: string; meta: AuditMeta }): Throttled | { ok: false; reason: 'invalid' } | { ok: true; remaining: number; forceReenroll: boolean } {
  const { sub, hash, meta } = a;
  const { tx, ts } = ctx;
  const t = throttled(tx, sub, 'recovery', meta.ip, ts);
  if (t) return t;
  const rec = get<RecoveryRecord>(tx, RECOVERY_KEYSPACE, sub);
  const i = rec === null ? -1 : rec.hashes.indexOf(hash);
  // No codes at all answers like a wrong code (and counts): nothing tells a guesser which it was.
  if (rec === null || i < 0) {
    fail(ctx, sub, 'recovery', meta, 'invalid', true);
    return { ok: false, reason: 'invalid' };
  }
  const hashes = rec.hashes.filter((_, j) => j !== i);
  put(tx, RECOVERY_KEYSPACE, sub, { ...rec, hashes } satisfies RecoveryRecord);
  succeed(tx, sub, 'recovery', ts);
  const remaining = hashes.length;
  const forceReenroll = remaining === 0 || policy(tx, sub).reenrollAfterRecovery;
  audit(ctx, 'mfa.recovery_used', meta, sub, { remaining, forceReenroll });
  return { ok: true, remaining, forceReenroll };
}

/**
 * A user code typed on the device page (RFC 8628 §5.1: the server "SHOULD ... rate-limit
 * user_code verification attempts"; §6.1: the code's entropy holds only against a bounded number
 * of guesses). The lookup needs no cryptography, so apply does it itself: the throttle check, the
 * lookup and the count of a miss are one command, and parallel guesses (over any nodes) are each
 * counted in log order before any is answered, with no reservation (MAX_PENDING_ATTEMPTS) needed.
 * A hit writes nothing: it resets no counter, because anyone can make a valid code at
 * /device_authorization and interleave it with guesses.
 */
function deviceLookup(ctx: ApplyContext, a: { sub: string; userCodeHash: string; meta: AuditMeta }): Throttled | { ok: true; device: DeviceView } | Counted<{ ok: false; reason: 'unknown' | 'used' | 'expired' }> {
  const { sub, userCodeHash, meta } = a;
  const { tx, ts } = ctx;
  const t = throttled(tx, sub, 'device_code', meta.ip, ts);
  if (t) return t;
  const device = deviceByUserCode(tx, userCodeHash);
  const reason = device === null ? 'unknown' : device.status !== 'pending' ? 'used' : device.exp <= ts ? 'expired' : null;
  if (reason === null) return { ok: true, device: device! };
  const r = fail(ctx, sub, 'device_code', meta, reason, true, false);
  if (r.ok) return { ok: false, reason };
  return r.reason === 'locked' ? r : { ok: false, reason, retryAt: r.retryAt };
}

function reset(ctx: ApplyContext, a: { sub: string; meta: AuditMeta }): { removed: { totp: boolean; webauthn: number; recovery: number } } {
  const { sub, meta } = a;
  const { tx } = ctx;
  const totp = tx.get(TOTP_KEYSPACE, sub) !== undefined;
  const list = credentials(tx, sub);
  const recovery = get<RecoveryRecord>(tx, RECOVERY_KEYSPACE, sub)?.hashes.length ?? 0;
  tx.del(TOTP_KEYSPACE, sub);
  tx.del(WEBAUTHN_KEYSPACE, sub);
  for (const c of list) tx.del(CREDENTIAL_INDEX_KEYSPACE, c.id);
  tx.del(RECOVERY_KEYSPACE, sub);
  audit(ctx, 'mfa.reset', meta, sub, { factor: 'all', totp, webauthn: list.length, recovery });
  // The factors are presumed lost or stolen: a session that passed them (acr mfa/phr) must not
  // outlive them. Every session of the user ends in this same command (tokens.ts endUserSessions).
  endUserSessions(tx, ctx.ts, sub, { ...meta, sub }, 'factors_reset');
  return { removed: { totp, webauthn: list.length, recovery } };
}

function policySet(ctx: ApplyContext, a: { sub: string; meta: AuditMeta; required: boolean; reenrollAfterRecovery?: boolean | undefined }): Record<string, never> {
  const { sub, meta, required } = a;
  const old = policy(ctx.tx, sub);
  // Optional (an addition to the contract): absent keeps the current value.
  const reenrollAfterRecovery = a.reenrollAfterRecovery ?? old.reenrollAfterRecovery;
  put(ctx.tx, POLICY_KEYSPACE, sub, { required, reenrollAfterRecovery } satisfies PolicyRecord);
  audit(ctx, 'user.updated', meta, sub, { mfaRequired: required, reenrollAfterRecovery });
  return {};
}

/**
 * The mfa domain's operations (the contract: src/state/contract.ts). Field order is check order.
 * `meta` is the request's audit meta (optional: absent is no ip, no sub, no client).
 */
export const MFA_WRITES = {
  /** May this attempt go ahead? See throttleCheck. */
  'throttle.check': write({ args: object({ sub: NULLABLE_SUB, kind: KIND, meta: META }), apply: throttleCheck }),
  /** A failed password/TOTP/recovery/WebAuthn attempt: counts per user and per IP; may lock (audited). */
  'throttle.fail': write({ args: object({ sub: NULLABLE_SUB, kind: KIND, meta: META }), apply: (ctx, a) => fail(ctx, a.sub, a.kind, a.meta, 'invalid', true) }),
  /** A successful attempt clears the user's counter of that kind (not a lock, not the IP's counter). */
  'throttle.reset': write({
    args: object({ sub: SUB, kind: KIND, meta: META }),
    apply: (ctx, a): Record<string, never> => {
      succeed(ctx.tx, a.sub, a.kind, ctx.ts);
      return {};
    },
  }),
  /** Admin: clear counters and lock. */
  unlock: write({ args: object({ sub: SUB, meta: META }), apply: unlock }),
  /** Store an unconfirmed secret (replaces an unconfirmed one; ALREADY_EXISTS if a confirmed one exists). */
  'totp.enroll': write({ args: object({ sub: SUB, sealed: check((v, n) => bytes(v, n, MAX_SEALED_SECRET_BYTES)), meta: META }), refuses: ['ALREADY_EXISTS'], apply: totpEnroll }),
  /**
   * Older nodes' TOTP success (after their throttle.check); still applied, no longer proposed.
   * The worker verified a code and found it matches `step` (T = floor(unixSeconds / 30)).
   * Apply: throttled → Throttled; step <= lastStep → { ok: false, reason: 'replay' } (audited
   * mfa.replay_refused, counted as a failure); else lastStep = step, confirms an unconfirmed
   * factor (audited mfa.enrolled) and returns { ok: true, enrolled: boolean } (mfa.verified).
   */
  'totp.accept': write({ args: object({ sub: SUB, step: STEP, meta: META }), refuses: ['NOT_FOUND'], apply: totpAccept }),
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
  'totp.verify': write({ args: TOTP_VERIFY_ARGS, refuses: ['NOT_FOUND', 'CONFLICT'], apply: totpVerify }),
  /** ALREADY_EXISTS: the tokens domain refused the session (a hash that exists). */
  'totp.signIn': write({
    args: object({ session: SIGN_IN_SESSION, verify: check((v, n) => TOTP_VERIFY_ARGS.parse(obj(v, n), '')) }),
    refuses: ['NOT_FOUND', 'CONFLICT', 'ALREADY_EXISTS'],
    apply: totpSignIn,
  }),
  'totp.remove': write({ args: object({ sub: SUB, meta: META }), apply: totpRemove }),
  /** A single-use challenge, valid until exp, bound to a purpose and (for registration / 2nd factor) a user. */
  'webauthn.challenge': write({ args: object({ challenge: TOKEN_ID, purpose: check(purpose), sub: NULLABLE_SUB, exp: check(time) }), refuses: ['ALREADY_EXISTS'], apply: webauthnChallenge }),
  /** Consume a challenge: { ok: true, sub } or { ok: false, reason: 'unknown' | 'expired' | 'used' | 'purpose' }. Written either way (used). */
  'webauthn.consume': write({ args: object({ challenge: TOKEN_ID, purpose: check(purpose) }), apply: webauthnConsume }),
  /** Add a verified credential (ALREADY_EXISTS for a known id). Audited mfa.enrolled. At most 20 per user. */
  'webauthn.register': write({ args: object({ sub: SUB, meta: META, credential: unknownValue() }), refuses: ['ALREADY_EXISTS', 'RESOURCE_EXHAUSTED'], apply: webauthnRegister }),
  /**
   * The worker verified an assertion with the stored public key; newCounter is the authenticator's.
   * Apply: counter regression (newCounter <= stored, unless both are 0: RFC/W3C "counter not
   * supported") → { ok: false, reason: 'counter_regression' } (audited mfa.counter_regression,
   * counted as a failure); else stores the counter and lastUsedAt → { ok: true } (mfa.verified).
   */
  'webauthn.accept': write({ args: object({ sub: SUB, credentialId: CREDENTIAL_ID, newCounter: COUNTER, meta: META }), refuses: ['NOT_FOUND'], apply: webauthnAccept }),
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
  'webauthn.verify': write({
    args: object({ sub: NULLABLE_SUB, challenge: nullable(TOKEN_ID), credentialId: nullable(CREDENTIAL_ID), owner: NULLABLE_SUB, newCounter: nullable(COUNTER), meta: META }),
    refuses: ['NOT_FOUND'],
    apply: webauthnVerify,
  }),
  'webauthn.remove': write({ args: object({ sub: SUB, credentialId: CREDENTIAL_ID, meta: META }), apply: webauthnRemove }),
  /** Replace the user's codes with these hashes (10). Audited mfa.recovery_regenerated. */
  'recovery.set': write({ args: object({ sub: SUB, meta: META, hashes: RECOVERY_HASHES }), apply: recoverySet }),
  /** Use one code once: { ok: true, remaining, forceReenroll } or { ok: false, reason: 'invalid' } (counted) or Throttled. Audited mfa.recovery_used. */
  'recovery.use': write({ args: object({ sub: SUB, hash: TOKEN_ID, meta: META }), apply: recoveryUse }),
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
  'device.lookup': write({ args: object({ sub: SUB, userCodeHash: TOKEN_ID, meta: META }), apply: deviceLookup }),
  /** Remove every factor of the user (audited mfa.reset). */
  reset: write({ args: object({ sub: SUB, meta: META }), apply: reset }),
  /** Per-user policy: MFA required for this user. */
  'policy.set': write({ args: object({ sub: SUB, meta: META, required: check(bool), reenrollAfterRecovery: optional(check(bool)) }), apply: policySet }),
};

// ---------------------------------------------------------------------------------------------
// Reads (no clock: times are reported, the reader compares them with its own)

function lockView(r: StateReader, sub: string): LockView {
  const u = get<UserThrottle>(r, THROTTLE_KEYSPACE, sub);
  if (u === null) return { failures: 0, lockedUntil: null, backoffUntil: null };
  let failures = 0;
  let backoffUntil = 0;
  for (const c of Object.values(u.kinds)) {
    failures += c.failures;
    backoffUntil = Math.max(backoffUntil, c.backoffUntil);
  }
  return { failures, lockedUntil: u.lockedUntil, backoffUntil: backoffUntil > 0 ? backoffUntil : null };
}

export function readFactors(r: StateReader, sub: string): FactorsView {
  const t = get<TotpRecord>(r, TOTP_KEYSPACE, sub);
  const p = policy(r, sub);
  return {
    totp: t === null ? null : { confirmed: t.confirmed, createdAt: t.createdAt, sealed: t.sealed },
    webauthn: credentials(r, sub),
    recovery: { remaining: get<RecoveryRecord>(r, RECOVERY_KEYSPACE, sub)?.hashes.length ?? 0 },
    required: p.required,
    reenrollAfterRecovery: p.reenrollAfterRecovery,
    lock: lockView(r, sub),
  };
}

export const MFA_READS = {
  factors: read({ args: object({ sub: SUB }), read: (r, a): FactorsView => readFactors(r, a.sub) }),
  /** The credential (and its owner) a passkey login names by id, or null. */
  'webauthn.byCredentialId': read({
    args: object({ credentialId: CREDENTIAL_ID }),
    read: (r, a): { sub: string; credential: WebAuthnCredentialView } | null => {
      const sub = get<string>(r, CREDENTIAL_INDEX_KEYSPACE, a.credentialId);
      if (sub === null) return null;
      const credential = credentials(r, sub).find((c) => c.id === a.credentialId);
      return credential === undefined ? null : { sub, credential };
    },
  }),
};

export const mfaDomain: Domain = tableDomain({
  name: MFA_DOMAIN,
  keyspaces: [TOTP_KEYSPACE, WEBAUTHN_KEYSPACE, CREDENTIAL_INDEX_KEYSPACE, CHALLENGES_KEYSPACE, RECOVERY_KEYSPACE, THROTTLE_KEYSPACE, IP_THROTTLE_KEYSPACE, POLICY_KEYSPACE],
  writes: MFA_WRITES,
  reads: MFA_READS,
});

/** Typed client stubs of the mfa domain: `mfa['totp.verify'](client, args)`, `mfa.read.factors(client, { sub })`. */
export const mfa = { ...writeStubs(MFA_DOMAIN, MFA_WRITES), read: readStubs(MFA_DOMAIN, MFA_READS) };

/** Whether a value is a Throttled answer (for callers that get `unknown` from a node). */
export function isThrottled(v: unknown): v is Throttled {
  return isPlainObject(v) && v.ok === false && (v.reason === 'throttled' || v.reason === 'locked') && typeof v.retryAt === 'number';
}
