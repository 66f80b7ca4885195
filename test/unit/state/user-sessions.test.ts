// Admin changes sign the user out everywhere, in their own command: disable, password change and
// delete (users domain) and a factor reset (mfa domain) end every login session of the user (the
// tokens domain's per-user index, kept exact by session.create/delete and the sweep); a disabled or
// deleted user's refresh tokens, codes and device approvals stop working (RFC 6749 §10.4,
// RFC 9700 §4.14), and a family from before a disable stays dead after re-enabling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand, unpackValue } from '../../../src/state/command.ts';
import type { ApplyResult } from '../../../src/state/machine.ts';
import { AUDIT_KEYSPACE } from '../../../src/state/audit.ts';
import type { AuditRecord } from '../../../src/state/audit-ops.ts';
import type { UserRecord } from '../../../src/state/oauth-ops.ts';
import {
  EXPIRY_KEYSPACE,
  FAMILIES_KEYSPACE,
  GRANTS_ENDED_RETENTION_MS,
  LOGIN_SESSIONS_KEYSPACE,
  MAX_USER_SESSIONS,
  USER_GRANTS_KEYSPACE,
  USER_SESSIONS_KEYSPACE,
  expiryIndexKey,
} from '../../../src/state/tokens.ts';
import { MapState, T0 } from './helpers.ts';
import { StateMachine } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

const HOUR = 3_600_000;
const ADMIN = { ip: '192.0.2.7' };
let index = 0;

function harness() {
  const st = new MapState();
  const sm = new StateMachine(st, SESSION_LIMITS);
  for (const d of oauthDomains()) sm.register(d);
  const run = (domain: string, op: string, args: unknown, ts = T0): ApplyResult => {
    const i = ++index;
    const b = sm.applyEntries(prepareEntries([{ term: 1, index: i, type: 'normal', data: encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts, domain, op, args }) }]));
    st.commit(b);
    return b.results.get(i)![0]!;
  };
  const ok = (domain: string, op: string, args: unknown, ts = T0): Record<string, unknown> => {
    const r = run(domain, op, args, ts);
    if (!r.ok) assert.fail(`${domain}.${op}: ${r.code} ${r.message}`);
    return r.value as Record<string, unknown>;
  };
  const read = (domain: string, op: string, args: unknown): unknown => {
    const r = sm.read(domain, op, args);
    if (!r.ok) assert.fail(`${r.code} ${r.message}`);
    return r.value;
  };
  const audit = (): AuditRecord[] => st.keys(AUDIT_KEYSPACE).map((k) => unpackValue<AuditRecord>(st.get(AUDIT_KEYSPACE, k)!));
  const user = (sub: string, over: Partial<UserRecord> = {}): UserRecord => ({
    sub,
    username: sub,
    password_hash: '$scrypt$one',
    name: null,
    email: null,
    email_verified: false,
    disabled: false,
    created_at: T0,
    updated_at: T0,
    ...over,
  });
  const session = (hash: string, sub: string, exp = T0 + 8 * HOUR, ts = T0) => ok('tokens', 'session.create', { hash, exp, sealed: new Uint8Array([1]), meta: { ip: '::1', sub } }, ts);
  const sessions = (): string[] => st.keys(LOGIN_SESSIONS_KEYSPACE);
  const indexOf = (sub: string): string[] | null => {
    const b = st.get(USER_SESSIONS_KEYSPACE, sub);
    return b === undefined ? null : unpackValue<{ sessions: [string, number][] }>(b).sessions.map(([h]) => h).sort();
  };
  return { st, run, ok, read, audit, user, session, sessions, indexOf };
}

const h43 = (c: string): string => c.repeat(43).slice(0, 43);

test('the per-user session index follows session.create, session.delete and the sweep, and leaves nothing behind', () => {
  const h = harness();
  h.session('s1', 'alice');
  h.session('s2', 'alice', T0 + 2 * HOUR);
  h.session('s3', 'bob');
  // A session without a known user (an older proposer) is not indexed.
  h.ok('tokens', 'session.create', { hash: 's4', exp: T0 + HOUR, sealed: new Uint8Array([1]) });
  assert.deepEqual(h.indexOf('alice'), ['s1', 's2']);
  assert.deepEqual(h.indexOf('bob'), ['s3']);
  // session.get still answers what it did: the sub is not handed out.
  assert.deepEqual(Object.keys(h.read('tokens', 'session.get', { hash: 's1' }) as object).sort(), ['exp', 'sealed']);

  h.ok('tokens', 'session.delete', { hash: 's1' });
  assert.deepEqual(h.indexOf('alice'), ['s2']);
  // The sweep of an expired session takes its index entry with it; the last one takes the record.
  const swept = h.ok('tokens', 'sweep', { keys: [expiryIndexKey(T0 + 2 * HOUR, LOGIN_SESSIONS_KEYSPACE, 's2')] }, T0 + 2 * HOUR);
  assert.equal(swept.deleted, 1);
  assert.equal(h.indexOf('alice'), null);
  h.ok('tokens', 'sweep', { keys: [expiryIndexKey(T0 + 8 * HOUR, LOGIN_SESSIONS_KEYSPACE, 's3'), expiryIndexKey(T0 + HOUR, LOGIN_SESSIONS_KEYSPACE, 's4')] }, T0 + 8 * HOUR);
  assert.deepEqual(h.st.keys(USER_SESSIONS_KEYSPACE), []);
  assert.deepEqual(h.sessions(), []);
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), []);
});

test(`at most MAX_USER_SESSIONS (${MAX_USER_SESSIONS}) sessions per user: a new one ends the one expiring first (audited 'evicted')`, () => {
  const h = harness();
  for (let i = 0; i < MAX_USER_SESSIONS; i++) h.session(`s${String(i).padStart(3, '0')}`, 'alice', T0 + HOUR + i);
  h.session('other', 'bob');
  h.session('newest', 'alice', T0 + 9 * HOUR);
  const idx = h.indexOf('alice')!;
  assert.equal(idx.length, MAX_USER_SESSIONS);
  assert.ok(!idx.includes('s000') && idx.includes('newest'));
  assert.ok(!h.sessions().includes('s000'), 'the evicted session record is gone');
  assert.ok(h.sessions().includes('other'));
  assert.ok(!h.st.keys(EXPIRY_KEYSPACE).includes(expiryIndexKey(T0 + HOUR, LOGIN_SESSIONS_KEYSPACE, 's000')));
  const ev = h.audit().filter((r) => r.type === 'logout');
  assert.deepEqual(
    ev.map((r) => [r.sub, r.details.reason]),
    [['alice', 'evicted']],
  );
});

test('disabling a user ends every session of that user in the same command (audited), and no one else’s', () => {
  const h = harness();
  h.ok('users', 'create', { user: h.user('alice') });
  h.session('a1', 'alice');
  h.session('a2', 'alice');
  h.session('b1', 'bob');
  // A change that is neither a disable nor a password change keeps the sessions.
  h.ok('users', 'update', { user: h.user('alice', { name: 'Alice' }), meta: ADMIN });
  assert.deepEqual(h.sessions(), ['a1', 'a2', 'b1']);

  h.ok('users', 'update', { user: h.user('alice', { disabled: true }), meta: ADMIN });
  assert.deepEqual(h.sessions(), ['b1']);
  assert.equal(h.indexOf('alice'), null);
  assert.deepEqual(h.indexOf('bob'), ['b1']);
  assert.ok(!h.st.keys(EXPIRY_KEYSPACE).some((k) => k.includes('|a1') || k.includes('|a2')), 'their expiry entries went too');
  const last = h.audit().slice(-2);
  assert.deepEqual(
    last.map((r) => [r.type, r.sub, r.ip, r.details.reason ?? null, r.details.sessions ?? null]),
    [
      ['user.updated', 'alice', ADMIN.ip, null, null],
      ['logout', 'alice', ADMIN.ip, 'user_disabled', 2],
    ],
  );
  // Enabling again brings no session back.
  h.ok('users', 'update', { user: h.user('alice'), meta: ADMIN });
  assert.deepEqual(h.sessions(), ['b1']);
});

test('a password change and a delete end the sessions; a factor reset too, in the mfa command', () => {
  const h = harness();
  h.ok('users', 'create', { user: h.user('alice') });
  h.session('a1', 'alice');
  h.ok('users', 'update', { user: h.user('alice', { password_hash: '$scrypt$two' }), meta: ADMIN });
  assert.deepEqual(h.sessions(), []);
  assert.equal(h.audit().at(-1)!.details.reason, 'password_changed');

  h.session('a2', 'alice');
  h.ok('mfa', 'totp.enroll', { sub: 'alice', sealed: new Uint8Array([1]), meta: { ip: null } });
  h.ok('mfa', 'reset', { sub: 'alice', meta: ADMIN });
  assert.deepEqual(h.sessions(), []);
  assert.deepEqual(
    h.audit().slice(-2).map((r) => [r.type, r.ip, r.details.reason ?? r.details.factor]),
    [
      ['mfa.reset', ADMIN.ip, 'all'],
      ['logout', ADMIN.ip, 'factors_reset'],
    ],
  );
  // Nothing to end: no logout record.
  const n = h.audit().length;
  h.ok('mfa', 'reset', { sub: 'alice', meta: ADMIN });
  assert.equal(h.audit().length, n + 1);

  h.session('a3', 'alice');
  h.ok('users', 'delete', { sub: 'alice', meta: ADMIN });
  assert.deepEqual(h.sessions(), []);
  assert.equal(h.audit().at(-1)!.details.reason, 'user_deleted');
});

// ---- grants of a disabled or deleted user ---------------------------------------------------------

const blob = new Uint8Array([9]);
const grant = (n: string) => ({
  family: { id: h43('F' + n), clientId: 'app', exp: T0 + 90 * 24 * HOUR },
  rt: { hash: h43('R' + n), exp: T0 + 14 * 24 * HOUR, sealed: blob },
  at: { jti: 'jti-' + n, exp: T0 + 600_000 },
});
const rotate = (n: string, next: string, sub: string | null) => ({
  hash: h43('R' + n),
  next: { hash: h43('R' + next), exp: T0 + 14 * 24 * HOUR, sealed: blob },
  response: blob,
  at: { jti: 'jti-' + next, exp: T0 + 600_000 },
  graceMs: 0,
  ...(sub !== null ? { meta: { ip: '::1', sub, clientId: 'app' } } : {}),
});

function codeGrant(h: ReturnType<typeof harness>, n: string, sub: string, ts = T0): Record<string, unknown> {
  h.ok('tokens', 'code.create', { hash: h43('C' + n), exp: ts + 60_000, sealed: blob }, ts);
  return h.ok('tokens', 'code.redeem', { hash: h43('C' + n), ...grant(n), meta: { ip: '::1', sub, clientId: 'app' } }, ts);
}

test('a disabled user’s refresh tokens are refused and their family revoked; a family from before the disable stays dead after re-enabling', () => {
  const h = harness();
  h.ok('users', 'create', { user: h.user('alice') });
  assert.deepEqual(codeGrant(h, '1', 'alice'), { ok: true });
  assert.deepEqual(h.ok('tokens', 'rt.rotate', rotate('1', '2', 'alice'), T0 + 1), { ok: true, outcome: 'rotated' });

  h.ok('users', 'update', { user: h.user('alice', { disabled: true }), meta: ADMIN }, T0 + 2);
  // Introspection's read sees it before any use.
  assert.equal((h.read('tokens', 'rt.get', { hash: h43('R2') }) as { familyRevoked: boolean }).familyRevoked, true);
  assert.deepEqual(h.ok('tokens', 'rt.rotate', rotate('2', '3', 'alice'), T0 + 3), { ok: false, reason: 'revoked' });
  const fam = unpackValue<{ revoked: { reason: string } | null; sub: string; iat: number }>(h.st.get(FAMILIES_KEYSPACE, h43('F1'))!);
  assert.equal(fam.revoked?.reason, 'user_disabled');
  assert.deepEqual([fam.sub, fam.iat], ['alice', T0]);
  assert.deepEqual(
    h.audit().filter((r) => r.type === 'token.revoked').map((r) => [r.sub, r.details.family, r.details.reason]),
    [['alice', h43('F1'), 'user_disabled']],
  );
  // No new grant while disabled: the code is not consumed, nothing is stored.
  h.ok('tokens', 'code.create', { hash: h43('C9'), exp: T0 + 60_000, sealed: blob }, T0 + 3);
  const before = h.st.snapshot();
  assert.deepEqual(h.ok('tokens', 'code.redeem', { hash: h43('C9'), ...grant('9'), meta: { ip: '::1', sub: 'alice', clientId: 'app' } }, T0 + 4), { ok: false, reason: 'user_inactive' });
  assert.deepEqual(h.st.snapshot(), before, 'a refused redemption changes nothing');

  // Enabled again: the old grant stays dead (even a family not used while disabled), a new one works.
  assert.deepEqual(codeGrant(h, '5', 'bob-unknown', T0 + 5), { ok: true }, 'a subject the users domain never knew is not refused');
  h.ok('users', 'update', { user: h.user('alice'), meta: ADMIN }, T0 + 6);
  assert.deepEqual(h.ok('tokens', 'rt.rotate', rotate('2', '3', 'alice'), T0 + 7), { ok: false, reason: 'revoked' });
  assert.deepEqual(codeGrant(h, '7', 'alice', T0 + 7), { ok: true });
  assert.deepEqual(h.ok('tokens', 'rt.rotate', rotate('7', '8', 'alice'), T0 + 8), { ok: true, outcome: 'rotated' });
});

test('a family stored before the user was recorded in it is checked by the refresher’s meta.sub; a device approval of a disabled user is not redeemed', () => {
  const h = harness();
  h.ok('users', 'create', { user: h.user('carol') });
  // An older proposer: no meta at redemption, so the family names no user.
  h.ok('tokens', 'code.create', { hash: h43('C1'), exp: T0 + 60_000, sealed: blob });
  assert.deepEqual(h.ok('tokens', 'code.redeem', { hash: h43('C1'), ...grant('1') }), { ok: true });
  h.ok('tokens', 'device.create', { hash: h43('D1'), userCodeHash: h43('U1'), exp: T0 + 600_000, intervalMs: 5000, sealed: blob });
  h.ok('tokens', 'device.decide', { userCodeHash: h43('U1'), approve: true, approval: blob });
  h.ok('users', 'update', { user: h.user('carol', { disabled: true }), meta: ADMIN }, T0 + 1);
  assert.deepEqual(h.ok('tokens', 'rt.rotate', rotate('1', '2', 'carol'), T0 + 2), { ok: false, reason: 'revoked' });
  const before = h.st.snapshot();
  assert.deepEqual(h.ok('tokens', 'device.redeem', { hash: h43('D1'), ...grant('3'), meta: { ip: '::1', sub: 'carol', clientId: 'app' } }, T0 + 2), { ok: false, reason: 'user_inactive' });
  assert.deepEqual(h.st.snapshot(), before);
});

test('a deleted user’s grants are refused, and the mark that says so is swept after GRANTS_ENDED_RETENTION_MS', () => {
  const h = harness();
  h.ok('users', 'create', { user: h.user('dave') });
  assert.deepEqual(codeGrant(h, '1', 'dave'), { ok: true });
  h.ok('users', 'delete', { sub: 'dave', meta: ADMIN }, T0 + 1);
  assert.deepEqual(h.ok('tokens', 'rt.rotate', rotate('1', '2', 'dave'), T0 + 2), { ok: false, reason: 'revoked' });
  assert.deepEqual(codeGrant(h, '3', 'dave', T0 + 3), { ok: false, reason: 'user_inactive' });
  const exp = T0 + 1 + GRANTS_ENDED_RETENTION_MS;
  const key = expiryIndexKey(exp, USER_GRANTS_KEYSPACE, 'dave');
  assert.ok(h.st.keys(EXPIRY_KEYSPACE).includes(key));
  h.ok('tokens', 'sweep', { keys: [key] }, exp);
  assert.deepEqual(h.st.keys(USER_GRANTS_KEYSPACE), []);
});
