// The records a large state is made of, as the contract writes the OAuth layer issues (src/state/
// contract.ts): users with sealed password hashes, confirmed TOTP factors, refresh-token families
// (an authorization code created and redeemed, as the code grant does) and audit events. Pure: each
// write is a function of (context, unit index), so a fill is reproducible and testable against the
// contract's own schemas (scripts/lib/fill-records.test.ts). Sent by scripts/lib/state-filler.ts.
//
// One "unit" is one user and what hangs off it; its writes must apply in order (the TOTP factor
// and the grants name the user), so they run one after the other, and many units run at once.
import { createHash } from 'node:crypto';
import { SEALED_PHC_PREFIX } from '../../src/crypto/password.ts';

/** What sealing needs (src/crypto/seal.ts Sealer, or a stand-in in the tests). */
export interface SealerLike {
  seal(plaintext: Uint8Array, aad: string): Uint8Array;
  sealValue(value: unknown, aad: string): Uint8Array;
}

export interface FillContext {
  readonly sealer: SealerLike;
  /** A client that exists in the cluster (the families name it). */
  readonly clientId: string;
  /** One PHC string (src/crypto/password.ts hashPassword), reused by every user; sealed per user, bound to its sub. */
  readonly passwordPhc: string;
  /** Distinguishes this fill's ids from another fill's into the same cluster. */
  readonly runId: string;
  /** The proposer's clock (times in records are the leader's elsewhere; these only need to be plausible). */
  readonly now: () => number;
}

/** A contract write: [domain, op, args], exactly what a stub encodes (writeStubs in src/state/contract.ts). */
export interface FillWrite {
  readonly domain: 'users' | 'mfa' | 'tokens' | 'audit' | 'kv';
  readonly op: string;
  readonly args: Record<string, unknown>;
}

/** Refresh-token families per user (each one code.create + code.redeem). */
export const FAMILIES_PER_UNIT = 2;
/** Audit events appended per user in one audit.append (sign-ins, as the workers batch them). */
export const AUDIT_EVENTS_PER_UNIT = 4;
/**
 * Records one unit adds, counted as the issue counts state: 1 user + 1 TOTP factor + the
 * families + the appended audit events. The records the ops write beside them (the username index,
 * the redeemed codes kept a day, refresh tokens, expiry-index entries, the audit events of
 * user.created, mfa.enrolled and token.issued) are not counted.
 */
export const RECORDS_PER_UNIT = 2 + FAMILIES_PER_UNIT + AUDIT_EVENTS_PER_UNIT;
/** Writes one unit sends. */
export const WRITES_PER_UNIT = 3 + 2 * FAMILIES_PER_UNIT + 1;

const DAY_MS = 24 * 3_600_000;
const TOTP_PERIOD_MS = 30_000;

/** A deterministic id of [A-Za-z0-9_-] (a tokenId and a sub alike), 22 characters like randomId(16). */
export function fillId(ctx: Pick<FillContext, 'runId'>, kind: string, unit: number, k = 0): string {
  return createHash('sha256').update(`${ctx.runId}|${kind}|${unit}|${k}`).digest('base64url').slice(0, 22);
}

/** A token hash as the server stores it (base64url SHA-256, 43 characters). */
function hashId(ctx: Pick<FillContext, 'runId'>, kind: string, unit: number, k = 0): string {
  return createHash('sha256').update(`${ctx.runId}|${kind}|${unit}|${k}|secret`).digest('base64url');
}

export function unitSub(ctx: Pick<FillContext, 'runId'>, unit: number): string {
  return fillId(ctx, 'sub', unit);
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 §6 base32 without padding. */
export function base32Of(b: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const x of b) {
    acc = (acc << 8) | x;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/** A user's IP, deterministic and in TEST-NET-3 (RFC 5737). */
function ipOf(unit: number): string {
  return `203.0.113.${(unit % 254) + 1}`;
}

/** The writes of unit `unit`, in the order they must apply. */
export function unitWrites(ctx: FillContext, unit: number): FillWrite[] {
  if (!Number.isSafeInteger(unit) || unit < 0) throw new RangeError(`unit must be a non-negative integer, got ${unit}`);
  const now = ctx.now();
  const sub = unitSub(ctx, unit);
  const username = `fill-${ctx.runId}-${unit}`;
  const meta = { ip: ipOf(unit), sub, clientId: ctx.clientId };
  const password_hash = SEALED_PHC_PREFIX + Buffer.from(ctx.sealer.seal(new TextEncoder().encode(ctx.passwordPhc), `pw:${sub}`)).toString('base64url');
  const user = { sub, username, password_hash, name: `Fill User ${unit}`, email: `${username}@example.com`, email_verified: true, disabled: false, created_at: now, updated_at: now };
  // A TOTP secret as the MFA service makes one (base32, 160 bits), sealed as it seals it (aad totp:<sub>).
  const base32 = base32Of(createHash('sha256').update(`${ctx.runId}|totp|${unit}`).digest().subarray(0, 20));
  const writes: FillWrite[] = [
    { domain: 'users', op: 'create', args: { user, meta: { ip: meta.ip } } },
    { domain: 'mfa', op: 'totp.enroll', args: { sub, sealed: ctx.sealer.sealValue(base32, `totp:${sub}`), meta } },
    { domain: 'mfa', op: 'totp.accept', args: { sub, step: Math.floor(now / TOTP_PERIOD_MS), meta } },
  ];
  const auth = { sub, authTime: Math.floor(now / 1000), acr: 'urn:raftauth:acr:mfa', amr: ['pwd', 'otp'] };
  for (let f = 0; f < FAMILIES_PER_UNIT; f++) {
    const code = hashId(ctx, 'code', unit, f);
    const rt = hashId(ctx, 'rt', unit, f);
    const family = fillId(ctx, 'fam', unit, f);
    const scope = ['openid', 'profile', 'offline_access'];
    const codePayload = { clientId: ctx.clientId, redirectUri: 'https://app.example.com/cb', redirectUriInRequest: true, codeChallenge: hashId(ctx, 'pkce', unit, f), codeChallengeMethod: 'S256', scope, nonce: null, auth, sessionHash: null, audience: 'https://api.example.com' };
    writes.push({ domain: 'tokens', op: 'code.create', args: { hash: code, exp: now + 60_000, sealed: ctx.sealer.sealValue(codePayload, `code:${code}`) } });
    const familyExp = now + 30 * DAY_MS;
    writes.push({
      domain: 'tokens',
      op: 'code.redeem',
      args: {
        hash: code,
        family: { id: family, clientId: ctx.clientId, exp: familyExp },
        rt: { hash: rt, exp: now + 14 * DAY_MS, sealed: ctx.sealer.sealValue({ clientId: ctx.clientId, scope, auth, audience: 'https://api.example.com', openid: true }, `rt:${rt}`) },
        at: { jti: fillId(ctx, 'jti', unit, f), exp: now + 3_600_000 },
        meta,
      },
    });
  }
  const events = Array.from({ length: AUDIT_EVENTS_PER_UNIT }, (_, k) => ({ type: 'login.succeeded', sub, clientId: ctx.clientId, ip: meta.ip, details: { method: k % 2 === 0 ? 'password' : 'totp' } }));
  writes.push({ domain: 'audit', op: 'append', args: { events } });
  return writes;
}

/**
 * The write of expiring record `i` for the sweep measurement: an authorization code (the shortest
 * lived record of an auth server) that expires at `expMs`.
 */
export function expiringWrite(ctx: FillContext, i: number, expMs: number): FillWrite {
  const hash = hashId(ctx, 'expiring', i);
  const sealed = ctx.sealer.sealValue({ clientId: ctx.clientId, redirectUri: 'https://app.example.com/cb', codeChallenge: null, codeChallengeMethod: null, scope: ['openid'], nonce: null, auth: { sub: unitSub(ctx, i), authTime: Math.floor(expMs / 1000), acr: 'urn:raftauth:acr:pwd', amr: ['pwd'] }, sessionHash: null, audience: 'https://api.example.com' }, `code:${hash}`);
  return { domain: 'tokens', op: 'code.create', args: { hash, exp: expMs, sealed } };
}

/** Keys the log-only writes cycle over (behindWrite). */
export const BEHIND_KEYS = 1_000;
/** Bytes of a log-only write's value (the issue measured writes of ~300 bytes). */
export const BEHIND_VALUE_BYTES = 300;

/**
 * Write `i` of a stretch of log that must not change the state's size (a follower falling behind
 * by N entries): a KV put over BEHIND_KEYS keys, so the records stay as many as before.
 */
export function behindWrite(ctx: Pick<FillContext, 'runId'>, i: number): FillWrite {
  const value = `${i}:`.padEnd(BEHIND_VALUE_BYTES, 'x');
  return { domain: 'kv', op: 'put', args: { key: `bench-scale/${ctx.runId}/${i % BEHIND_KEYS}`, value } };
}

/** Units needed for `records` records (rounded up). */
export function unitsFor(records: number): number {
  return Math.ceil(records / RECORDS_PER_UNIT);
}
