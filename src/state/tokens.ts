// The tokens domain: every check-and-set decision of the OAuth grants (DESIGN principle 3).
// Single-use authorization codes, refresh-token rotation with a grace window and reuse
// detection, family revocation, device-code polling, login sessions and private_key_jwt replay.
// The worker prepares everything (hashes, sealed payloads, a signed access token); apply decides
// with nothing but state and ctx.ts, and treats sealed blobs as opaque bytes.
//
// Records (msgpack; see docs/oauth-internals.md):
//   tok.code   hash → CodeRecord        tok.rt     hash → RefreshRecord   tok.fam  id → FamilyRecord
//   tok.revjti jti  → exp               tok.device hash → DeviceRecord    tok.ucode user-code hash → device hash
//   tok.sess   hash → { exp, sealed }   tok.jti    client_id + ' ' + jti → exp
//   tok.exp    `<exp, 15 digits>|<keyspace>|<key>` → empty: the expiry index the leader sweeps.
//
// Every record with an expiry has exactly one index entry at its current exp (rewriting a record
// with another exp moves the entry). A rotated refresh token is kept until its own exp, because
// reuse detection needs it; its `grace` blob (the sealed response of the rotation) is only useful
// while its successor is unused, so it is cleared when that successor is rotated in turn (the
// successor names it in `prev`).
//
// Audit (issue 6): the ops that issue, refresh, revoke or detect reuse of tokens, decide a device
// request, or start or end a login session append their audit event in the same transaction
// (src/state/audit.ts), from their optional `meta` ({ ip, sub, clientId }: what the worker knows
// that apply cannot see, e.g. the sub sealed in a code). Details name families and jtis, never a
// token, code or hash of one.
import type { ApplyContext, Domain, StateReader, Tx } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { CodeRecordView, IssuedAccessToken, PreparedFamily, PreparedRefreshToken, RefreshRecordView } from './oauth-ops.ts';
import { MAX_ID_CHARS, MAX_SEALED_BYTES, bool, bytes, clientId, int, invalid, obj, time, tokenId } from './validate.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';
import type { AuditMeta } from './audit.ts';
import { check, nullable, object, oneOf, optional, read, readStubs, tableDomain, withDefault, write, writeStubs, housekeepingStubs } from './contract.ts';
import type { Infer, Refuse } from './contract.ts';

export const CODES_KEYSPACE = 'tok.code';
export const REFRESH_TOKENS_KEYSPACE = 'tok.rt';
export const FAMILIES_KEYSPACE = 'tok.fam';
export const REVOKED_JTIS_KEYSPACE = 'tok.revjti';
export const DEVICE_CODES_KEYSPACE = 'tok.device';
export const USER_CODES_KEYSPACE = 'tok.ucode';
export const LOGIN_SESSIONS_KEYSPACE = 'tok.sess';
export const ASSERTION_JTIS_KEYSPACE = 'tok.jti';
export const EXPIRY_KEYSPACE = 'tok.exp';
/**
 * sub → UserSessionsRecord: the user's login sessions (hash, exp), so that an admin change (disable,
 * password reset, factor reset, delete) ends every one of them in its own command. Kept exact by
 * session.create / session.delete and by the sweep of each session record; no expiry entry of its own.
 */
export const USER_SESSIONS_KEYSPACE = 'tok.usess';
/** sub → GrantsEndedRecord: every grant (refresh-token family) of the user issued up to `notBefore` is dead. */
export const USER_GRANTS_KEYSPACE = 'tok.ugrant';
/** Live login sessions per user; a new one beyond this ends the one that expires first (audited logout, reason 'evicted'). */
export const MAX_USER_SESSIONS = 64;
/**
 * How long a GrantsEndedRecord is kept: longer than any family lives (oauth.refreshTokenAbsoluteTtlS
 * is at most 5 years), so a family it ended cannot come back when the record is swept.
 */
export const GRANTS_ENDED_RETENTION_MS = 5 * 366 * 24 * 3_600_000;

/** Access tokens remembered per family (for revocation); expired ones go first, then the oldest. */
export const MAX_FAMILY_AT_JTIS = 100;
/** Most index keys in one sweep command. */
export const MAX_SWEEP_KEYS = 1_000;
/** Longest refresh grace window a proposer may ask for. */
export const MAX_GRACE_MS = 60_000;
/** Longest device polling interval (RFC 8628 §3.2 `interval`), also the cap of slow_down growth. */
export const MAX_DEVICE_INTERVAL_MS = 3_600_000;
/** RFC 8628 §3.5: "the interval MUST be increased by 5 seconds for this and all subsequent requests". */
export const SLOW_DOWN_STEP_MS = 5_000;

const EXP_DIGITS = 15;
const EMPTY = new Uint8Array(0);

/** Keyspaces whose records the sweep may delete. */
// `mfa.*`: the mfa domain's WebAuthn challenges and throttle records (src/state/mfa.ts, each with
// an `exp` field) share this index and sweep; literals, not imports, because mfa.ts imports this module.
const SWEPT = new Set([CODES_KEYSPACE, REFRESH_TOKENS_KEYSPACE, FAMILIES_KEYSPACE, REVOKED_JTIS_KEYSPACE, DEVICE_CODES_KEYSPACE, USER_CODES_KEYSPACE, LOGIN_SESSIONS_KEYSPACE, ASSERTION_JTIS_KEYSPACE, USER_GRANTS_KEYSPACE, 'mfa.chal', 'mfa.throttle', 'mfa.ipthrottle']);

type JtiList = [string, number][];

interface CodeRecord {
  readonly exp: number;
  readonly sealed: Uint8Array;
  /** `at` is the redemption time; atJtis the access token it issued (revoked if the code is reused). */
  readonly used: null | { readonly at: number; readonly family: string | null; readonly atJtis: JtiList };
  /** A redeemed code is kept until then (USED_CODE_RETENTION_MS after redemption) so a late replay is still seen as reuse. */
  readonly retainUntil?: number;
}

/**
 * How long a redeemed code is remembered. RFC 6749 §4.1.2 asks to deny a second use and revoke
 * what the first issued; once the record is swept a replay could only be "unknown". A day covers
 * any replay of a stolen code in practice at the cost of one small record per code.
 */
export const USED_CODE_RETENTION_MS = 24 * 3_600_000;

interface RefreshRecord {
  readonly family: string;
  readonly exp: number;
  readonly sealed: Uint8Array;
  readonly state: 'active' | 'rotated';
  readonly rotatedAt: number | null;
  readonly successor: string | null;
  readonly grace: Uint8Array | null;
  /** The token this one replaced (whose grace blob is cleared when this one rotates). */
  readonly prev: string | null;
}

interface FamilyRecord {
  readonly clientId: string;
  readonly exp: number;
  readonly revoked: null | { readonly at: number; readonly reason: string };
  readonly atJtis: JtiList;
  /** The user the grant is for, when and by which log entry it was stored (absent in families stored before they were recorded). */
  readonly sub?: string;
  readonly iat?: number;
  readonly logIndex?: number;
}

type DeviceStatus = 'pending' | 'approved' | 'denied' | 'consumed';

interface DeviceRecord {
  readonly exp: number;
  /** Current polling interval in ms (grows on slow_down). */
  readonly interval: number;
  readonly lastPoll: number | null;
  readonly userCode: string;
  readonly status: DeviceStatus;
  readonly sealed: Uint8Array;
  readonly approval: Uint8Array | null;
}

interface LoginSessionRecord {
  readonly exp: number;
  readonly sealed: Uint8Array;
  /** The user (from the proposer's meta), for the USER_SESSIONS_KEYSPACE index; absent in older records. */
  readonly sub?: string;
}

interface UserSessionsRecord {
  /** [session hash, its exp], at most MAX_USER_SESSIONS. */
  readonly sessions: [string, number][];
}

interface GrantsEndedRecord {
  /** Families stored by log entries up to this index are dead (the index orders commands exactly; two may share a ts). */
  readonly throughIndex: number;
  readonly at: number;
  readonly exp: number;
}

export interface DeviceView {
  readonly hash: string;
  readonly status: DeviceStatus;
  readonly exp: number;
  readonly sealed: Uint8Array;
  readonly approval: Uint8Array | null;
}

// ---------------------------------------------------------------------------------------------
// Expiry index

export function expiryIndexKey(exp: number, keyspace: string, key: string): string {
  return `${String(exp).padStart(EXP_DIGITS, '0')}|${keyspace}|${key}`;
}

/** The parts of an expiry index key, or null if it is not one. Keyspace names cannot contain '|'; keys may. */
export function parseExpiryIndexKey(k: string): { exp: number; keyspace: string; key: string } | null {
  if (k.length < EXP_DIGITS + 3 || k[EXP_DIGITS] !== '|') return null;
  const digits = k.slice(0, EXP_DIGITS);
  if (!/^\d+$/.test(digits)) return null;
  const sep = k.indexOf('|', EXP_DIGITS + 1);
  if (sep < 0) return null;
  const keyspace = k.slice(EXP_DIGITS + 1, sep);
  const key = k.slice(sep + 1);
  if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(keyspace) || key.length === 0) return null;
  return { exp: Number(digits), keyspace, key };
}

function get<T>(r: StateReader, ks: string, key: string): T | null {
  const b = r.get(ks, key);
  return b === undefined ? null : unpackValue<T>(b);
}

/** Write a record with an expiry and its index entry; `oldExp` is the exp of the record it replaces. */
function putExpiring(tx: Tx, ks: string, key: string, value: unknown, exp: number, oldExp: number | null): void {
  if (oldExp !== null && oldExp !== exp) tx.del(EXPIRY_KEYSPACE, expiryIndexKey(oldExp, ks, key));
  tx.put(ks, key, packValue(value));
  tx.put(EXPIRY_KEYSPACE, expiryIndexKey(exp, ks, key), EMPTY);
}

function delExpiring(tx: Tx, ks: string, key: string, exp: number): void {
  tx.del(ks, key);
  tx.del(EXPIRY_KEYSPACE, expiryIndexKey(exp, ks, key));
}

/** The expiry a record of keyspace `ks` carries itself, or null if the record is gone. */
function recordExp(r: StateReader, ks: string, key: string): number | null {
  const b = r.get(ks, key);
  if (b === undefined) return null;
  const v = unpackValue<unknown>(b);
  if (ks === REVOKED_JTIS_KEYSPACE || ks === ASSERTION_JTIS_KEYSPACE) return v as number;
  if (ks === CODES_KEYSPACE) {
    const c = v as CodeRecord;
    return c.retainUntil ?? c.exp;
  }
  if (ks === USER_CODES_KEYSPACE) {
    // A user code lives as long as its device code; a dangling one is expired.
    return get<DeviceRecord>(r, DEVICE_CODES_KEYSPACE, v as string)?.exp ?? 0;
  }
  return (v as { exp: number }).exp;
}

// ---------------------------------------------------------------------------------------------
// Argument checks

function sealed(v: unknown, name: string): Uint8Array {
  return bytes(v, name, MAX_SEALED_BYTES);
}

function preparedFamily(v: unknown, name: string): PreparedFamily | null {
  if (v === null) return null;
  const o = obj(v, name);
  return { id: tokenId(o.id, `${name}.id`), clientId: clientId(o.clientId, `${name}.clientId`), exp: time(o.exp, `${name}.exp`) };
}

function preparedRt(v: unknown, name: string): PreparedRefreshToken {
  const o = obj(v, name);
  return { hash: tokenId(o.hash, `${name}.hash`), exp: time(o.exp, `${name}.exp`), sealed: sealed(o.sealed, `${name}.sealed`) };
}

function issuedAt(v: unknown, name: string): IssuedAccessToken {
  const o = obj(v, name);
  return { jti: tokenId(o.jti, `${name}.jti`), exp: time(o.exp, `${name}.exp`) };
}

const HASH = check(tokenId);
const TIME = check(time);
const SEALED = check(sealed);
const META = withDefault<AuditMeta, Partial<AuditMeta>>(auditMeta);
const PREPARED_FAMILY = check(preparedFamily);
const PREPARED_RT = check(preparedRt);
const ISSUED_AT = check(issuedAt);
const CLIENT_ID = check((v, n) => clientId(v, n));

/** A grant's first tokens: the family, its first refresh token (optional) and the access token. */
interface GrantArgs {
  readonly family: PreparedFamily | null;
  readonly rt: PreparedRefreshToken | null;
  readonly at: IssuedAccessToken;
}

/** The checks across a grant's fields (each field was checked by the schema). */
function checkGrant(g: GrantArgs): GrantArgs {
  if (g.rt !== null && g.family === null) throw invalid('rt needs a family');
  if (g.rt !== null && g.family !== null && g.rt.hash === g.family.id) throw invalid('rt.hash must differ from family.id');
  return g;
}

const REDEEM_ARGS = object({ hash: HASH, family: PREPARED_FAMILY, rt: nullable(PREPARED_RT), at: ISSUED_AT, meta: META });
const CODE_ARGS = object({ hash: HASH, exp: TIME, sealed: SEALED });
const SESSION_ARGS = object({ hash: HASH, exp: TIME, sealed: SEALED, meta: META, code: optional(CODE_ARGS) });
const SESSION_REPLACE_ARGS = object({
  previous: object({ hash: HASH, meta: META }),
  hash: HASH,
  exp: TIME,
  sealed: SEALED,
  meta: META,
  code: optional(CODE_ARGS),
});

// ---------------------------------------------------------------------------------------------
// Families and revocation

/** Keep the family's access tokens bounded: drop expired ones, then the oldest. */
function withJti(list: JtiList, at: IssuedAccessToken, ts: number): JtiList {
  const out = list.filter(([, exp]) => exp > ts);
  out.push([at.jti, at.exp]);
  while (out.length > MAX_FAMILY_AT_JTIS) out.shift();
  return out;
}

/** Remember access tokens as revoked until they expire (introspection then reports them inactive). */
function revokeJtis(tx: Tx, list: JtiList, ts: number): void {
  for (const [jti, exp] of list) {
    if (exp <= ts) continue;
    const old = get<number>(tx, REVOKED_JTIS_KEYSPACE, jti);
    if (old !== null && old >= exp) continue;
    putExpiring(tx, REVOKED_JTIS_KEYSPACE, jti, exp, exp, old);
  }
}

/**
 * Revoke a family and every unexpired access token it issued. A family already revoked keeps its
 * first reason. Returns false if the family is gone (swept: nothing left to revoke).
 */
function revokeFamily(tx: Tx, id: string, reason: string, ts: number): boolean {
  const fam = get<FamilyRecord>(tx, FAMILIES_KEYSPACE, id);
  if (!fam) return false;
  revokeJtis(tx, fam.atJtis, ts);
  if (fam.revoked === null) tx.put(FAMILIES_KEYSPACE, id, packValue({ ...fam, revoked: { at: ts, reason } } satisfies FamilyRecord));
  return true;
}

/** Store a new grant's family and first refresh token. ALREADY_EXISTS on an id or hash collision. `sub`: the user, when the proposer said. */
function storeGrant(tx: Tx, g: GrantArgs, ts: number, owner: { sub: string; logIndex: number } | null, refuse: Refuse<'ALREADY_EXISTS'>): void {
  if (g.family === null) return;
  const f = g.family;
  if (tx.get(FAMILIES_KEYSPACE, f.id) !== undefined) refuse('ALREADY_EXISTS', `family ${f.id} already exists`);
  const by = owner === null ? {} : { sub: owner.sub, iat: ts, logIndex: owner.logIndex };
  putExpiring(tx, FAMILIES_KEYSPACE, f.id, { clientId: f.clientId, exp: f.exp, revoked: null, atJtis: withJti([], g.at, ts), ...by } satisfies FamilyRecord, f.exp, null);
  if (g.rt !== null) {
    if (tx.get(REFRESH_TOKENS_KEYSPACE, g.rt.hash) !== undefined) refuse('ALREADY_EXISTS', 'refresh token hash already exists');
    // A refresh token never outlives its family (the absolute lifetime).
    const exp = Math.min(g.rt.exp, f.exp);
    const rec: RefreshRecord = { family: f.id, exp, sealed: g.rt.sealed, state: 'active', rotatedAt: null, successor: null, grace: null, prev: null };
    putExpiring(tx, REFRESH_TOKENS_KEYSPACE, g.rt.hash, rec, exp, null);
  }
}

// ---------------------------------------------------------------------------------------------
// Operations

function codeCreate(ctx: ApplyContext, a: Infer<typeof CODE_ARGS>, refuse: Refuse<'ALREADY_EXISTS'>): Record<string, never> {
  const { hash, exp, sealed: blob } = a;
  if (ctx.tx.get(CODES_KEYSPACE, hash) !== undefined) refuse('ALREADY_EXISTS', 'code hash already exists');
  putExpiring(ctx.tx, CODES_KEYSPACE, hash, { exp, sealed: blob, used: null } satisfies CodeRecord, exp, null);
  return {};
}

function codeRedeem(ctx: ApplyContext, a: Infer<typeof REDEEM_ARGS>, refuse: Refuse<'ALREADY_EXISTS'>): { ok: true } | { ok: false; reason: 'unknown' | 'reused' | 'expired' | 'user_inactive' } {
  const { hash, meta } = a;
  const g = checkGrant(a);
  const { tx, ts } = ctx;
  const code = get<CodeRecord>(tx, CODES_KEYSPACE, hash);
  if (!code) return { ok: false, reason: 'unknown' };
  if (code.used !== null) {
    // RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization server
    // MUST deny the request and SHOULD revoke (when possible) all tokens previously issued based
    // on that authorization code." (RFC 9700 §4.14 likewise.) Written, yet reported as a failure.
    revokeJtis(tx, code.used.atJtis, ts);
    if (code.used.family !== null) revokeFamily(tx, code.used.family, 'code_reuse', ts);
    appendAudit(tx, ts, auditEvent('code.reuse_detected', meta, { details: { family: code.used.family, revokedAccessTokens: code.used.atJtis.length } }));
    return { ok: false, reason: 'reused' };
  }
  if (code.exp <= ts) return { ok: false, reason: 'expired' };
  // RFC 6749 §10.4 / RFC 9700 §4.14: no new grant for a user disabled or deleted since the code was issued.
  if (meta.sub !== null && !userActive(tx, meta.sub)) return { ok: false, reason: 'user_inactive' };
  storeGrant(tx, g, ts, meta.sub === null ? null : { sub: meta.sub, logIndex: ctx.index }, refuse);
  const used: CodeRecord['used'] = { at: ts, family: g.family?.id ?? null, atJtis: [[g.at.jti, g.at.exp]] };
  const retainUntil = Math.max(code.exp, ts + USED_CODE_RETENTION_MS);
  putExpiring(tx, CODES_KEYSPACE, hash, { ...code, used, retainUntil } satisfies CodeRecord, retainUntil, code.exp);
  appendAudit(tx, ts, auditEvent('token.issued', meta, { clientId: g.family?.clientId ?? meta.clientId, details: { grant: 'authorization_code', family: g.family?.id ?? null, jti: g.at.jti, refreshToken: g.rt !== null } }));
  return { ok: true };
}

const ROTATE_ARGS = object({ hash: HASH, next: PREPARED_RT, response: SEALED, at: ISSUED_AT, graceMs: check((v, n) => int(v, n, 0, MAX_GRACE_MS)), meta: META });

/** rt.rotate's answer: rotated, the grace window's repeated response, or why not (a reuse revokes the family, written and reported). */
type RotateAnswer = { ok: true; outcome: 'rotated' } | { ok: true; outcome: 'grace'; response: Uint8Array } | { ok: false; reason: 'unknown' | 'revoked' | 'expired' | 'reused' };

function rtRotate(ctx: ApplyContext, a: Infer<typeof ROTATE_ARGS>, refuse: Refuse<'ALREADY_EXISTS'>): RotateAnswer {
  const { hash, next, response, at, graceMs, meta } = a;
  if (next.hash === hash) throw invalid('next.hash must differ from hash');
  const { tx, ts } = ctx;
  const rt = get<RefreshRecord>(tx, REFRESH_TOKENS_KEYSPACE, hash);
  if (!rt) return { ok: false, reason: 'unknown' };
  const fam = get<FamilyRecord>(tx, FAMILIES_KEYSPACE, rt.family);
  // A token whose family was swept is treated as revoked.
  if (!fam || fam.revoked !== null) return { ok: false, reason: 'revoked' };
  if (rt.exp <= ts || fam.exp <= ts) return { ok: false, reason: 'expired' };
  // A disabled or deleted user's refresh tokens stop working (RFC 6749 §10.4, RFC 9700 §4.14): the
  // family is revoked here, in the command that refuses it; the user's own record is read, so a
  // disable acknowledged before this command is never missed. A family from before the user was
  // disabled stays dead after re-enabling (endUserGrants).
  const owner = fam.sub ?? meta.sub;
  if ((owner !== null && !userActive(tx, owner)) || familyEnded(tx, fam)) {
    revokeFamily(tx, rt.family, 'user_disabled', ts);
    appendAudit(tx, ts, auditEvent('token.revoked', meta, { clientId: fam.clientId, details: { token: 'refresh_token', family: rt.family, reason: 'user_disabled' } }));
    return { ok: false, reason: 'revoked' };
  }
  if (rt.state === 'rotated') {
    const succ = rt.successor === null ? null : get<RefreshRecord>(tx, REFRESH_TOKENS_KEYSPACE, rt.successor);
    // The grace window (RFC 9700 §4.14.2 allows tolerating a lost response): the same rotation
    // answered again, as long as the client has not moved on to the successor.
    if (rt.rotatedAt !== null && ts - rt.rotatedAt <= graceMs && succ !== null && succ.state === 'active' && succ.exp > ts && rt.grace !== null) {
      return { ok: true, outcome: 'grace', response: rt.grace };
    }
    // RFC 9700 §4.14.2: a rotated token presented again means it leaked; revoke the family.
    revokeFamily(tx, rt.family, 'refresh_token_reuse', ts);
    appendAudit(tx, ts, auditEvent('token.reuse_detected', meta, { clientId: fam.clientId, details: { family: rt.family } }));
    return { ok: false, reason: 'reused' };
  }
  if (tx.get(REFRESH_TOKENS_KEYSPACE, next.hash) !== undefined) refuse('ALREADY_EXISTS', 'next refresh token hash already exists');
  tx.put(REFRESH_TOKENS_KEYSPACE, hash, packValue({ ...rt, state: 'rotated', rotatedAt: ts, successor: next.hash, grace: response } satisfies RefreshRecord));
  if (rt.prev !== null) {
    const prev = get<RefreshRecord>(tx, REFRESH_TOKENS_KEYSPACE, rt.prev);
    if (prev && prev.grace !== null) tx.put(REFRESH_TOKENS_KEYSPACE, rt.prev, packValue({ ...prev, grace: null } satisfies RefreshRecord));
  }
  const exp = Math.min(next.exp, fam.exp);
  const rec: RefreshRecord = { family: rt.family, exp, sealed: next.sealed, state: 'active', rotatedAt: null, successor: null, grace: null, prev: hash };
  putExpiring(tx, REFRESH_TOKENS_KEYSPACE, next.hash, rec, exp, null);
  tx.put(FAMILIES_KEYSPACE, rt.family, packValue({ ...fam, atJtis: withJti(fam.atJtis, at, ts) } satisfies FamilyRecord));
  // A grace answer (above) writes nothing and is not audited: it repeats this rotation's response.
  appendAudit(tx, ts, auditEvent('token.refreshed', meta, { clientId: fam.clientId, details: { family: rt.family, jti: at.jti } }));
  return { ok: true, outcome: 'rotated' };
}

function rtRevoke(ctx: ApplyContext, a: { hash: string; clientId: string; meta: AuditMeta }): { revoked: boolean } {
  const { hash, clientId: client, meta } = a;
  const rt = get<RefreshRecord>(ctx.tx, REFRESH_TOKENS_KEYSPACE, hash);
  if (!rt) return { revoked: false };
  const fam = get<FamilyRecord>(ctx.tx, FAMILIES_KEYSPACE, rt.family);
  // RFC 7009 §2.1: "The authorization server first validates the client credentials … and then
  // verifies whether the token was issued to the client making the revocation request."
  if (!fam || fam.clientId !== client) return { revoked: false };
  // RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the access tokens of the same grant.
  revokeFamily(ctx.tx, rt.family, 'revoked_by_client', ctx.ts);
  appendAudit(ctx.tx, ctx.ts, auditEvent('token.revoked', meta, { clientId: client, details: { token: 'refresh_token', family: rt.family } }));
  return { revoked: true };
}

function atRevoke(ctx: ApplyContext, a: { jti: string; exp: number; meta: AuditMeta }): Record<string, never> {
  const { jti, exp, meta } = a;
  revokeJtis(ctx.tx, [[jti, exp]], ctx.ts);
  // An access token already expired needs no revocation: nothing is written, nothing audited.
  if (exp > ctx.ts) appendAudit(ctx.tx, ctx.ts, auditEvent('token.revoked', meta, { details: { token: 'access_token', jti } }));
  return {};
}

function deviceCreate(ctx: ApplyContext, a: { hash: string; userCodeHash: string; exp: number; intervalMs: number; sealed: Uint8Array }, refuse: Refuse<'ALREADY_EXISTS'>): Record<string, never> {
  const { hash, userCodeHash, exp, intervalMs, sealed: blob } = a;
  const { tx } = ctx;
  if (tx.get(DEVICE_CODES_KEYSPACE, hash) !== undefined) refuse('ALREADY_EXISTS', 'device code hash already exists');
  if (tx.get(USER_CODES_KEYSPACE, userCodeHash) !== undefined) refuse('ALREADY_EXISTS', 'user code hash already exists');
  const rec: DeviceRecord = { exp, interval: intervalMs, lastPoll: null, userCode: userCodeHash, status: 'pending', sealed: blob, approval: null };
  putExpiring(tx, DEVICE_CODES_KEYSPACE, hash, rec, exp, null);
  putExpiring(tx, USER_CODES_KEYSPACE, userCodeHash, hash, exp, null);
  return {};
}

function deviceDecide(ctx: ApplyContext, a: { userCodeHash: string; approve: boolean; approval: Uint8Array | null; meta: AuditMeta }): { ok: true } | { ok: false; reason: 'unknown' | 'expired' | 'decided' } {
  const { userCodeHash, approve, approval, meta } = a;
  if (approve && approval === null) throw invalid('approval is required to approve');
  if (!approve && approval !== null) throw invalid('approval must be null to deny');
  const { tx, ts } = ctx;
  const hash = get<string>(tx, USER_CODES_KEYSPACE, userCodeHash);
  const dev = hash === null ? null : get<DeviceRecord>(tx, DEVICE_CODES_KEYSPACE, hash);
  if (hash === null || !dev) return { ok: false, reason: 'unknown' };
  if (dev.exp <= ts) return { ok: false, reason: 'expired' };
  if (dev.status !== 'pending') return { ok: false, reason: 'decided' };
  tx.put(DEVICE_CODES_KEYSPACE, hash, packValue({ ...dev, status: approve ? 'approved' : 'denied', approval } satisfies DeviceRecord));
  appendAudit(tx, ts, auditEvent('device.decided', meta, { details: { approved: approve } }));
  return { ok: true };
}

function devicePoll(ctx: ApplyContext, a: { hash: string }): { status: 'expired_token' | 'access_denied' | 'approved' | 'consumed' | 'slow_down' | 'authorization_pending' } {
  const { hash } = a;
  const { tx, ts } = ctx;
  const dev = get<DeviceRecord>(tx, DEVICE_CODES_KEYSPACE, hash);
  // The worker polls only a device code it has just read; one gone since was swept, i.e. expired.
  if (!dev || dev.exp <= ts) return { status: 'expired_token' };
  switch (dev.status) {
    case 'denied':
      return { status: 'access_denied' };
    case 'approved':
      return { status: 'approved' };
    case 'consumed':
      return { status: 'consumed' };
    case 'pending':
      break;
  }
  // RFC 8628 §3.5: slow_down is "a variant of authorization_pending"; the interval grows by 5 s
  // for this and all subsequent requests.
  if (dev.lastPoll !== null && ts - dev.lastPoll < dev.interval) {
    const interval = Math.min(dev.interval + SLOW_DOWN_STEP_MS, MAX_DEVICE_INTERVAL_MS);
    tx.put(DEVICE_CODES_KEYSPACE, hash, packValue({ ...dev, interval, lastPoll: ts } satisfies DeviceRecord));
    return { status: 'slow_down' };
  }
  tx.put(DEVICE_CODES_KEYSPACE, hash, packValue({ ...dev, lastPoll: ts } satisfies DeviceRecord));
  return { status: 'authorization_pending' };
}

function deviceRedeem(ctx: ApplyContext, a: Infer<typeof REDEEM_ARGS>, refuse: Refuse<'ALREADY_EXISTS'>): { ok: true } | { ok: false; reason: 'unknown' | 'consumed' | 'expired' | 'not_approved' | 'user_inactive' } {
  const { hash, meta } = a;
  const g = checkGrant(a);
  const { tx, ts } = ctx;
  const dev = get<DeviceRecord>(tx, DEVICE_CODES_KEYSPACE, hash);
  if (!dev) return { ok: false, reason: 'unknown' };
  if (dev.status === 'consumed') return { ok: false, reason: 'consumed' };
  if (dev.exp <= ts) return { ok: false, reason: 'expired' };
  if (dev.status !== 'approved') return { ok: false, reason: 'not_approved' };
  // As for a code: the user may have been disabled or deleted since approving.
  if (meta.sub !== null && !userActive(tx, meta.sub)) return { ok: false, reason: 'user_inactive' };
  storeGrant(tx, g, ts, meta.sub === null ? null : { sub: meta.sub, logIndex: ctx.index }, refuse);
  tx.put(DEVICE_CODES_KEYSPACE, hash, packValue({ ...dev, status: 'consumed' } satisfies DeviceRecord));
  appendAudit(tx, ts, auditEvent('token.issued', meta, { clientId: g.family?.clientId ?? meta.clientId, details: { grant: 'device_code', family: g.family?.id ?? null, jti: g.at.jti, refreshToken: g.rt !== null } }));
  return { ok: true };
}

/**
 * session.create, and session.replace through it. An optional `code` ({hash, exp, sealed}, as
 * code.create takes) is the authorization code the new session is answered with, stored in the
 * same command (interaction.ts issueCode after a second factor: one fsynced round fewer); the
 * whole command is refused, changing nothing, if either record's hash exists.
 */
function sessionCreate(ctx: ApplyContext, a: Infer<typeof SESSION_ARGS>, refuse: Refuse<'ALREADY_EXISTS'>): Record<string, never> {
  const { hash, exp, sealed: blob, meta } = a;
  if (ctx.tx.get(LOGIN_SESSIONS_KEYSPACE, hash) !== undefined) refuse('ALREADY_EXISTS', 'session hash already exists');
  if (a.code !== undefined) codeCreate(ctx, a.code, refuse);
  putExpiring(ctx.tx, LOGIN_SESSIONS_KEYSPACE, hash, { exp, sealed: blob, ...(meta.sub !== null ? { sub: meta.sub } : {}) } satisfies LoginSessionRecord, exp, null);
  appendAudit(ctx.tx, ctx.ts, auditEvent('login.succeeded', meta, { details: { sessionExp: exp } }));
  if (meta.sub !== null) indexUserSession(ctx, meta.sub, hash, exp, meta);
  return {};
}

function sessionDelete(ctx: ApplyContext, a: { hash: string; meta: AuditMeta; reason?: 'logout' | 'replaced' | undefined }): { existed: boolean } {
  const { hash, meta } = a;
  // 'replaced': a new login in the same browser ends the previous session (createSession).
  const reason = a.reason ?? 'logout';
  const s = get<LoginSessionRecord>(ctx.tx, LOGIN_SESSIONS_KEYSPACE, hash);
  if (s) {
    delExpiring(ctx.tx, LOGIN_SESSIONS_KEYSPACE, hash, s.exp);
    appendAudit(ctx.tx, ctx.ts, auditEvent('logout', meta, { details: { reason } }));
    if (s.sub !== undefined) unindexUserSession(ctx.tx, ctx.ts, s.sub, hash);
  }
  return { existed: s !== null };
}

/**
 * A login session replaced by a new one in one command (a second factor upgrades the session:
 * session.ts upgradeSession): the new record is created and the old one deleted together, audited
 * as session.create then session.delete with reason 'replaced' would be (login.succeeded, logout).
 * `previous.meta` is the audit meta of the old session's end (its sub may differ). An old record
 * already gone (expired and swept, signed out in another tab) is not an error: the new one still
 * starts, as with the two separate commands.
 */
function sessionReplace(ctx: ApplyContext, a: Infer<typeof SESSION_REPLACE_ARGS>, refuse: Refuse<'ALREADY_EXISTS'>): { existed: boolean } {
  const { hash: oldHash, meta: oldMeta } = a.previous;
  if (a.hash === oldHash) throw invalid('hash must differ from previous.hash');
  sessionCreate(ctx, a, refuse);
  const s = get<LoginSessionRecord>(ctx.tx, LOGIN_SESSIONS_KEYSPACE, oldHash);
  if (s) {
    delExpiring(ctx.tx, LOGIN_SESSIONS_KEYSPACE, oldHash, s.exp);
    appendAudit(ctx.tx, ctx.ts, auditEvent('logout', oldMeta, { details: { reason: 'replaced' } }));
    if (s.sub !== undefined) unindexUserSession(ctx.tx, ctx.ts, s.sub, oldHash);
  }
  return { existed: s !== null };
}

/**
 * session.create or session.replace inside another domain's command (mfa totp.signIn: a verified
 * code and the session it upgrades in one write). The same apply, the same checks.
 */
export function applyLoginSessionOp(ctx: ApplyContext, op: 'session.create' | 'session.replace', args: unknown, refuse: Refuse<'ALREADY_EXISTS'>): unknown {
  // Checked as the tokens op would check them (its schema, its field names).
  if (op === 'session.create') return sessionCreate(ctx, SESSION_ARGS.parse(args, ''), refuse);
  return sessionReplace(ctx, SESSION_REPLACE_ARGS.parse(args, ''), refuse);
}

// ---------------------------------------------------------------------------------------------
// A user's sessions and grants, ended by admin changes (users.ts: disable, password reset, delete;
// mfa.ts: factor reset) inside their own command, so the change and its effect commit together.

/** Literal, not an import: users.ts imports this module. */
const USERS = 'users';

/**
 * The user may hold grants: not disabled, and not deleted. A deleted user is told by the mark its
 * deletion left (endUserGrants); a sub the users domain has no record of and no mark for is not
 * refused (apply cannot tell it from a subject outside the users domain).
 */
function userActive(r: StateReader, sub: string): boolean {
  const b = r.get(USERS, sub);
  if (b === undefined) return r.get(USER_GRANTS_KEYSPACE, sub) === undefined;
  return unpackValue<{ disabled?: boolean }>(b).disabled !== true;
}

/** The family was issued to a user whose grants were ended after it was stored (see endUserGrants). */
function familyEnded(r: StateReader, fam: FamilyRecord): boolean {
  if (fam.sub === undefined || fam.logIndex === undefined) return false;
  const ended = get<GrantsEndedRecord>(r, USER_GRANTS_KEYSPACE, fam.sub);
  return ended !== null && fam.logIndex <= ended.throughIndex;
}

/** The user's index entries still naming a live session record, without `drop`. */
function liveUserSessions(r: StateReader, ts: number, sub: string, drop: string | null): [string, number][] {
  const rec = get<UserSessionsRecord>(r, USER_SESSIONS_KEYSPACE, sub);
  if (rec === null) return [];
  // An entry whose record is gone (replaced, swept, deleted by an older proposer) or expired is dropped here.
  return rec.sessions.filter(([h, exp]) => h !== drop && exp > ts && r.get(LOGIN_SESSIONS_KEYSPACE, h) !== undefined);
}

function putUserSessions(tx: Tx, sub: string, sessions: [string, number][]): void {
  if (sessions.length === 0) tx.del(USER_SESSIONS_KEYSPACE, sub);
  else tx.put(USER_SESSIONS_KEYSPACE, sub, packValue({ sessions } satisfies UserSessionsRecord));
}

/** Add a new session to its user's index; beyond MAX_USER_SESSIONS the one expiring first ends (audited). */
function indexUserSession(ctx: ApplyContext, sub: string, hash: string, exp: number, meta: ReturnType<typeof auditMeta>): void {
  const { tx, ts } = ctx;
  const list = liveUserSessions(tx, ts, sub, hash);
  list.push([hash, exp]);
  list.sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  while (list.length > MAX_USER_SESSIONS) {
    const [old, oldExp] = list.shift()!;
    delExpiring(tx, LOGIN_SESSIONS_KEYSPACE, old, oldExp);
    appendAudit(tx, ts, auditEvent('logout', meta, { sub, details: { reason: 'evicted' } }));
  }
  putUserSessions(tx, sub, list);
}

/** Remove one session from its user's index (pruning entries of sessions already gone). */
export function unindexUserSession(tx: Tx, ts: number, sub: string, hash: string): void {
  if (tx.get(USER_SESSIONS_KEYSPACE, sub) === undefined) return;
  putUserSessions(tx, sub, liveUserSessions(tx, ts, sub, hash));
}

/**
 * Sign the user out everywhere: delete every login session of the index and the index itself,
 * audited as one `logout` (details: reason, sessions). Sessions created before the index existed
 * are not listed; they were unusable once the user is disabled (session.ts checks the user) and
 * expire within oauth.sessionTtlS. Returns how many sessions ended.
 */
export function endUserSessions(tx: Tx, ts: number, sub: string, meta: ReturnType<typeof auditMeta>, reason: string): number {
  const list = liveUserSessions(tx, ts, sub, null);
  for (const [h] of list) {
    const s = get<LoginSessionRecord>(tx, LOGIN_SESSIONS_KEYSPACE, h);
    if (s) delExpiring(tx, LOGIN_SESSIONS_KEYSPACE, h, s.exp);
  }
  tx.del(USER_SESSIONS_KEYSPACE, sub);
  if (list.length > 0) appendAudit(tx, ts, auditEvent('logout', meta, { sub, details: { reason, sessions: list.length } }));
  return list.length;
}

/**
 * End every grant the user holds now: families stored by earlier log entries are refused (and
 * revoked) at their next use even if the user is enabled again. Families carry no index by user,
 * so this is a per-user mark that rt.rotate and rt.get compare with the family's logIndex.
 */
export function endUserGrants(ctx: ApplyContext, sub: string): void {
  const old = get<GrantsEndedRecord>(ctx.tx, USER_GRANTS_KEYSPACE, sub);
  const exp = ctx.ts + GRANTS_ENDED_RETENTION_MS;
  putExpiring(ctx.tx, USER_GRANTS_KEYSPACE, sub, { throughIndex: ctx.index, at: ctx.ts, exp } satisfies GrantsEndedRecord, exp, old?.exp ?? null);
}

/** The jti is the client's opaque value (RFC 7519 §4.1.7): any string, only bounded (the worker checks the same bound, so a client's odd but signed jti is a replay check, never a refusal). */
const ASSERTION_JTI = check((jti, name): string => {
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_ID_CHARS) throw invalid(`${name} must be a string of 1..${MAX_ID_CHARS} characters`);
  return jti;
});

function assertionUse(ctx: ApplyContext, a: { clientId: string; jti: string; exp: number }): { fresh: boolean } {
  const { clientId: client, jti, exp } = a;
  const { tx, ts } = ctx;
  const key = `${client} ${jti}`;
  const seen = get<number>(tx, ASSERTION_JTIS_KEYSPACE, key);
  // RFC 7523 §3 item 7 / RFC 7521 §5.2: a jti may be used once while the assertion is valid.
  if (seen !== null && seen > ts) return { fresh: false };
  // An assertion already expired is refused by the worker; there is nothing to remember.
  if (exp > ts) putExpiring(tx, ASSERTION_JTIS_KEYSPACE, key, exp, exp, seen);
  else if (seen !== null) delExpiring(tx, ASSERTION_JTIS_KEYSPACE, key, seen);
  return { fresh: true };
}

/** Index keys to sweep; each is re-checked (a malformed one is skipped, not refused: the leader's clock and ours may differ). */
const SWEEP_KEYS = check((keys, name): readonly unknown[] => {
  if (!Array.isArray(keys)) throw invalid(`${name} must be an array`);
  if (keys.length > MAX_SWEEP_KEYS) throw invalid(`${name} has more than ${MAX_SWEEP_KEYS} entries`);
  return keys;
});

function sweep(ctx: ApplyContext, a: { keys: readonly unknown[] }): { deleted: number } {
  const { keys } = a;
  const { tx, ts } = ctx;
  let deleted = 0;
  for (const k of keys) {
    // Malformed or not-yet-expired keys are skipped: the leader's clock and ours may differ.
    if (typeof k !== 'string') continue;
    const p = parseExpiryIndexKey(k);
    if (p === null || p.exp > ts || !SWEPT.has(p.keyspace)) continue;
    tx.del(EXPIRY_KEYSPACE, k);
    // Re-checked against the record itself: it may have been rewritten with a later expiry.
    const own = recordExp(tx, p.keyspace, p.key);
    if (own === null || own > ts) continue;
    // The user's session index loses the entry with the record (before it goes: it names the user).
    if (p.keyspace === LOGIN_SESSIONS_KEYSPACE) {
      const sub = get<LoginSessionRecord>(tx, LOGIN_SESSIONS_KEYSPACE, p.key)?.sub;
      if (sub !== undefined) unindexUserSession(tx, ts, sub, p.key);
    }
    tx.del(p.keyspace, p.key);
    if (own !== p.exp) tx.del(EXPIRY_KEYSPACE, expiryIndexKey(own, p.keyspace, p.key));
    deleted++;
  }
  return { deleted };
}

/** The tokens domain's operations (the contract: src/state/contract.ts). Field order is check order. */
export const TOKENS_WRITES = {
  /** Store a new code. Returns {}. ALREADY_EXISTS on a hash collision. */
  'code.create': write({ args: CODE_ARGS, refuses: ['ALREADY_EXISTS'], apply: codeCreate }),
  /**
   * Redeem a code once. The worker has already checked client, redirect URI and PKCE against
   * the unsealed record. Outcomes:
   *  - { ok: true }: marked used; the family (if any) and its first refresh token are stored,
   *    `at` is remembered in the family.
   *  - { ok: false, reason: 'unknown' | 'expired' }: nothing changed.
   *  - { ok: false, reason: 'reused' }: the code was already redeemed; the family made by the
   *    first redemption is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14) — this is written.
   */
  'code.redeem': write({ args: REDEEM_ARGS, refuses: ['ALREADY_EXISTS'], apply: codeRedeem }),
  /**
   * Rotate a refresh token. Outcomes:
   *  - { ok: true, outcome: 'rotated' }: old marked rotated (successor, rotatedAt = ts, grace =
   *    `response` sealed by the worker), next stored active in the same family, `at` remembered.
   *  - { ok: true, outcome: 'grace', response }: the old token was rotated less than graceMs ago
   *    (ts - rotatedAt <= graceMs) and its successor has not been used: the stored sealed response
   *    is returned, nothing is written.
   *  - { ok: false, reason: 'reused' }: rotated outside the grace window (or its successor already
   *    used): the whole family is revoked (written).
   *  - { ok: false, reason: 'unknown' | 'expired' | 'revoked' }: nothing changed.
   */
  'rt.rotate': write({ args: ROTATE_ARGS, refuses: ['ALREADY_EXISTS'], apply: rtRotate }),
  /** RFC 7009: revoke the refresh token's family. Returns { revoked: boolean } (false if unknown). */
  'rt.revoke': write({ args: object({ hash: HASH, clientId: CLIENT_ID, meta: META }), apply: rtRevoke }),
  /** RFC 7009 for a JWT access token: remember jti until exp. Returns {}. */
  'at.revoke': write({ args: object({ jti: HASH, exp: TIME, meta: META }), apply: atRevoke }),
  /** Returns {}; ALREADY_EXISTS if either hash is taken. */
  'device.create': write({
    args: object({ hash: HASH, userCodeHash: HASH, exp: TIME, intervalMs: check((v, n) => int(v, n, 0, MAX_DEVICE_INTERVAL_MS)), sealed: SEALED }),
    refuses: ['ALREADY_EXISTS'],
    apply: deviceCreate,
  }),
  /** The user approved or denied on the verification page. Returns { ok: true } or { ok: false, reason: 'unknown' | 'expired' | 'decided' }. */
  'device.decide': write({ args: object({ userCodeHash: HASH, approve: check(bool), approval: nullable(SEALED), meta: META }), apply: deviceDecide }),
  /**
   * A poll while pending: { status: 'authorization_pending' } (lastPoll = ts), or 'slow_down'
   * (polled sooner than intervalMs after the last poll; the interval grows by 5 s, RFC 8628 §3.5,
   * and lastPoll = ts), 'expired_token', 'access_denied', 'approved' (the worker then redeems),
   * 'consumed'.
   */
  'device.poll': write({ args: object({ hash: HASH }), apply: devicePoll }),
  /** Single use, like code.redeem: { ok: true } | { ok: false, reason: 'unknown' | 'expired' | 'not_approved' | 'consumed' }. */
  'device.redeem': write({ args: REDEEM_ARGS, refuses: ['ALREADY_EXISTS'], apply: deviceRedeem }),
  'session.create': write({ args: SESSION_ARGS, refuses: ['ALREADY_EXISTS'], apply: sessionCreate }),
  'session.delete': write({ args: object({ hash: HASH, meta: META, reason: optional(oneOf(['logout', 'replaced'])) }), apply: sessionDelete }),
  /**
   * session.create of { hash, exp, sealed, meta } and session.delete of previous.hash (reason
   * 'replaced', audited with previous.meta) in one command: the session upgrade after a second
   * factor. Returns { existed } (whether the previous record was still there).
   */
  'session.replace': write({ args: SESSION_REPLACE_ARGS, refuses: ['ALREADY_EXISTS'], apply: sessionReplace }),
  /** Returns { fresh: boolean }: false if (clientId, jti) was seen and has not expired. */
  'assertion.use': write({ args: object({ clientId: CLIENT_ID, jti: ASSERTION_JTI, exp: TIME }), apply: assertionUse }),
  /** Delete the listed expiry-index entries and their records if expired at ts (re-checked). Returns { deleted }. At most 1000 keys. */
  sweep: write({ args: object({ keys: SWEEP_KEYS }), apply: sweep }),
};

// ---------------------------------------------------------------------------------------------
// Reads (no clock: expiry is reported, the reader compares with its own time)

function deviceView(r: StateReader, hash: string): DeviceView | null {
  const d = get<DeviceRecord>(r, DEVICE_CODES_KEYSPACE, hash);
  return d === null ? null : { hash, status: d.status, exp: d.exp, sealed: d.sealed, approval: d.approval };
}

/** The device request a user-code hash names, as 'device.byUserCode' reads it (the mfa domain's throttled device.lookup uses it). */
export function deviceByUserCode(r: StateReader, userCodeHash: string): DeviceView | null {
  const hash = get<string>(r, USER_CODES_KEYSPACE, userCodeHash);
  return hash === null ? null : deviceView(r, hash);
}

function refreshView(r: StateReader, hash: string): RefreshRecordView | null {
  const rt = get<RefreshRecord>(r, REFRESH_TOKENS_KEYSPACE, hash);
  if (!rt) return null;
  const fam = get<FamilyRecord>(r, FAMILIES_KEYSPACE, rt.family);
  const base = { family: rt.family, exp: rt.exp, sealed: rt.sealed, state: rt.state, rotatedAt: rt.rotatedAt };
  // A swept family reads as revoked, with a client id no client has.
  if (!fam) return { ...base, familyRevoked: true, familyExp: 0, clientId: '' };
  // A family of a disabled, deleted or ended user reads as revoked too (rt.rotate revokes it at its next use).
  const ended = fam.sub !== undefined && (!userActive(r, fam.sub) || familyEnded(r, fam));
  return { ...base, familyRevoked: fam.revoked !== null || ended, familyExp: fam.exp, clientId: fam.clientId };
}

export const TOKENS_READS = {
  'code.get': read({
    args: object({ hash: HASH }),
    read: (r, a): CodeRecordView | null => {
      const c = get<CodeRecord>(r, CODES_KEYSPACE, a.hash);
      return c === null ? null : { exp: c.exp, sealed: c.sealed, used: c.used === null ? null : { at: c.used.at, family: c.used.family } };
    },
  }),
  'rt.get': read({ args: object({ hash: HASH }), read: (r, a): RefreshRecordView | null => refreshView(r, a.hash) }),
  'device.get': read({ args: object({ hash: HASH }), read: (r, a): DeviceView | null => deviceView(r, a.hash) }),
  'device.byUserCode': read({ args: object({ userCodeHash: HASH }), read: (r, a): DeviceView | null => deviceByUserCode(r, a.userCodeHash) }),
  'session.get': read({
    args: object({ hash: HASH }),
    read: (r, a): { exp: number; sealed: Uint8Array } | null => {
      const s = get<LoginSessionRecord>(r, LOGIN_SESSIONS_KEYSPACE, a.hash);
      return s === null ? null : { exp: s.exp, sealed: s.sealed };
    },
  }),
  'at.revoked': read({ args: object({ jti: HASH }), read: (r, a): { revoked: boolean } => ({ revoked: r.get(REVOKED_JTIS_KEYSPACE, a.jti) !== undefined }) }),
  'family.get': read({
    args: object({ id: HASH }),
    read: (r, a): { revoked: boolean; exp: number } | null => {
      const f = get<FamilyRecord>(r, FAMILIES_KEYSPACE, a.id);
      return f === null ? null : { revoked: f.revoked !== null, exp: f.exp };
    },
  }),
};

export const tokensDomain: Domain = tableDomain({
  name: 'tokens',
  keyspaces: [
    CODES_KEYSPACE,
    REFRESH_TOKENS_KEYSPACE,
    FAMILIES_KEYSPACE,
    REVOKED_JTIS_KEYSPACE,
    DEVICE_CODES_KEYSPACE,
    USER_CODES_KEYSPACE,
    LOGIN_SESSIONS_KEYSPACE,
    ASSERTION_JTIS_KEYSPACE,
    EXPIRY_KEYSPACE,
    USER_SESSIONS_KEYSPACE,
    USER_GRANTS_KEYSPACE,
  ],
  writes: TOKENS_WRITES,
  reads: TOKENS_READS,
});

/** Typed client stubs: `tokens['rt.rotate'](client, args)`, `tokens.read['rt.get'](client, { hash }, 'local')`, `tokens.leader.sweep(node, { keys }, timeoutMs)`. */
export const tokens = { ...writeStubs('tokens', TOKENS_WRITES), read: readStubs('tokens', TOKENS_READS), leader: housekeepingStubs('tokens', TOKENS_WRITES) };
