// The mfa domain through the real StateMachine: throttling (backoff, lockout and its expiry,
// per-IP), TOTP replay, WebAuthn challenges and counters, recovery codes, admin ops, audit records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateMachine } from '../../../src/state/machine.ts';
import type { ApplyResult } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { encodeCommand, unpackValue } from '../../../src/state/command.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { CODES_KEYSPACE, EXPIRY_KEYSPACE, LOGIN_SESSIONS_KEYSPACE, expiryIndexKey } from '../../../src/state/tokens.ts';
import { AUDIT_KEYSPACE } from '../../../src/state/audit.ts';
import type { AuditRecord } from '../../../src/state/audit-ops.ts';
import { THROTTLE } from '../../../src/state/mfa-ops.ts';
import {
  ATTEMPT_LEASE_MS,
  CHALLENGES_KEYSPACE,
  CREDENTIAL_INDEX_KEYSPACE,
  IP_THROTTLE_KEYSPACE,
  MAX_CHALLENGE_TTL_MS,
  MAX_CREDENTIALS,
  MAX_STEP_SKEW,
  RECOVERY_KEYSPACE,
  THROTTLE_KEYSPACE,
  TOTP_KEYSPACE,
  TOTP_PERIOD_MS,
  WEBAUTHN_KEYSPACE,
  backoffMs,
} from '../../../src/state/mfa.ts';
import { MapState } from './helpers.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

/** A multiple of the TOTP period, so step arithmetic in the tests is exact. */
const T0 = 1_700_000_010 * 1000 - ((1_700_000_010 * 1000) % TOTP_PERIOD_MS);
const S0 = T0 / TOTP_PERIOD_MS;
const IP = '192.0.2.1';
const META = { ip: IP };
let index = 0;

function harness() {
  const st = new MapState();
  const sm = new StateMachine(st, SESSION_LIMITS);
  for (const d of oauthDomains()) sm.register(d);
  /** Leader time of the next command (the machine's clock never goes back, so tests only move it forward). */
  const clock = { now: T0 };
  const run = (domain: string, op: string, args: unknown): ApplyResult => {
    const i = ++index;
    const data = encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts: clock.now, domain, op, args });
    const b = sm.applyEntries(prepareEntries([{ term: 1, index: i, type: 'normal', data }]));
    st.commit(b);
    return b.results.get(i)![0]!;
  };
  const mfa = (op: string, args: unknown): ApplyResult => run('mfa', op, args);
  const ok = (op: string, args: unknown): Record<string, unknown> => {
    const r = mfa(op, args);
    if (!r.ok) assert.fail(`${op}: ${r.code} ${r.message}`);
    return plain(r.value) as Record<string, unknown>;
  };
  const refused = (op: string, args: unknown, code: string, pattern?: RegExp): void => {
    const before = st.snapshot();
    const r = mfa(op, args);
    assert.equal(r.ok, false, `${op} should be refused`);
    if (!r.ok) {
      assert.equal(r.code, code, r.message);
      if (pattern) assert.match(r.message, pattern);
    }
    assert.deepEqual(st.snapshot(), before, 'a refusal changes nothing');
  };
  const read = (op: string, args: unknown): unknown => {
    const r = sm.read('mfa', op, args);
    if (!r.ok) assert.fail(`${op}: ${r.code} ${r.message}`);
    return plain(r.value);
  };
  const raw = <T>(ks: string, key: string): T | undefined => {
    const b = st.get(ks, key);
    return b === undefined ? undefined : unpackValue<T>(b);
  };
  const audits = (): AuditRecord[] => st.keys(AUDIT_KEYSPACE).map((k) => raw<AuditRecord>(AUDIT_KEYSPACE, k)!);
  const auditTypes = (): string[] => audits().map((r) => r.type);
  return { st, sm, clock, run, mfa, ok, refused, read, raw, audits, auditTypes };
}

function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const fail = (sub: string | null, kind = 'totp', meta: { ip: string | null } = META) => ({ sub, kind, meta });
const cred = (id: string, counter = 0, extra: Record<string, unknown> = {}) => ({
  id,
  publicKey: new Uint8Array([1, 2, 3, 4]),
  counter,
  transports: ['usb'],
  name: `key ${id}`,
  createdAt: 0,
  lastUsedAt: null,
  discoverable: false,
  ...extra,
});
/** Ten distinct token-shaped hashes. */
const hashes = (tag: string): string[] => Array.from({ length: 10 }, (_, i) => `${tag}${String(i).padStart(2, '0')}${'h'.repeat(40)}`);

// ---------------------------------------------------------------------------------------------
// Throttling

test('backoff starts after the free failures and doubles with each further failure, up to the cap', () => {
  const h = harness();
  for (let i = 1; i <= THROTTLE.freeFailures; i++) {
    assert.deepEqual(h.ok('throttle.fail', fail('alice')), { ok: true, failures: i });
    assert.deepEqual(h.ok('throttle.check', fail('alice')), { ok: true });
  }
  let expected = THROTTLE.baseBackoffMs;
  for (let n = 1; n <= 5; n++) {
    const r = h.ok('throttle.fail', fail('alice'));
    assert.deepEqual(r, { ok: false, reason: 'throttled', retryAt: h.clock.now + expected }, `failure ${THROTTLE.freeFailures + n}`);
    assert.deepEqual(h.ok('throttle.check', fail('alice')), r);
    // One millisecond before retryAt: still throttled; at retryAt: allowed.
    h.clock.now += expected - 1;
    assert.equal(h.ok('throttle.check', fail('alice')).reason, 'throttled');
    h.clock.now += 1;
    assert.deepEqual(h.ok('throttle.check', fail('alice')), { ok: true });
    expected *= 2;
  }
  assert.equal(backoffMs(1), THROTTLE.baseBackoffMs);
  assert.equal(backoffMs(2), 2 * THROTTLE.baseBackoffMs);
  assert.equal(backoffMs(30), THROTTLE.maxBackoffMs);
  assert.equal(backoffMs(10_000), THROTTLE.maxBackoffMs);
});

test('the throttle is per kind for the user: other kinds are not held back, a success resets only its own kind', () => {
  const h = harness();
  for (let i = 0; i < THROTTLE.freeFailures + 1; i++) h.ok('throttle.fail', fail('alice', 'totp', { ip: null }));
  assert.equal(h.ok('throttle.check', fail('alice', 'totp', { ip: null })).reason, 'throttled');
  assert.deepEqual(h.ok('throttle.check', fail('alice', 'password', { ip: null })), { ok: true });
  // A password success does not give the TOTP guesser new attempts.
  h.ok('throttle.reset', { sub: 'alice', kind: 'password', meta: META });
  assert.equal(h.ok('throttle.check', fail('alice', 'totp', { ip: null })).reason, 'throttled');
  h.ok('throttle.reset', { sub: 'alice', kind: 'password', meta: META });
  h.ok('throttle.reset', { sub: 'alice', kind: 'totp', meta: META });
  assert.equal(h.raw(THROTTLE_KEYSPACE, 'alice'), undefined, 'an empty throttle record is deleted');
  assert.deepEqual(h.ok('throttle.check', fail('alice', 'totp', { ip: null })), { ok: true });
});

test('lockout after lockAfterFailures holds until lockMs passes (ctx.ts), is audited, and then counters start over', () => {
  const h = harness();
  let last: Record<string, unknown> = {};
  for (let i = 1; i <= THROTTLE.lockAfterFailures; i++) {
    last = h.ok('throttle.fail', fail('bob', 'password', { ip: null }));
    h.clock.now += THROTTLE.maxBackoffMs; // wait out each backoff: only the lock is under test
  }
  const lockedAt = h.clock.now - THROTTLE.maxBackoffMs;
  assert.deepEqual(last, { ok: false, reason: 'locked', retryAt: lockedAt + THROTTLE.lockMs });
  const locked = h.audits().filter((r) => r.type === 'user.locked');
  assert.equal(locked.length, 1);
  assert.equal(locked[0]!.sub, 'bob');
  assert.equal(locked[0]!.details.factor, 'password');
  // Passwords are audited by the login flow (login.failed), not here.
  assert.equal(h.auditTypes().filter((t) => t === 'mfa.failed').length, 0);
  // Locked for every kind.
  for (const kind of ['password', 'totp', 'recovery', 'webauthn']) assert.equal(h.ok('throttle.check', fail('bob', kind, { ip: null })).reason, 'locked');
  h.clock.now = lockedAt + THROTTLE.lockMs - 1;
  assert.equal(h.ok('throttle.check', fail('bob', 'password', { ip: null })).reason, 'locked');
  h.clock.now = lockedAt + THROTTLE.lockMs;
  assert.deepEqual(h.ok('throttle.check', fail('bob', 'password', { ip: null })), { ok: true });
  // The lock served its purpose: the next failure is the first again (no immediate re-lock).
  assert.deepEqual(h.ok('throttle.fail', fail('bob', 'password', { ip: null })), { ok: true, failures: 1 });
  assert.equal(h.auditTypes().filter((t) => t === 'user.locked').length, 1);
});

test('attempts in flight are bounded per user and kind: concurrent guesses cannot all pass the check', () => {
  const h = harness();
  const check = () => h.ok('throttle.check', fail('kim', 'totp', { ip: null }));
  assert.deepEqual(check(), { ok: true });
  assert.deepEqual(check(), { ok: true });
  // MAX_PENDING_ATTEMPTS in flight: the next is held back until one ends or its lease runs out.
  assert.deepEqual(check(), { ok: false, reason: 'throttled', retryAt: h.clock.now + ATTEMPT_LEASE_MS });
  // Another kind, and another user, are not affected.
  assert.deepEqual(h.ok('throttle.check', fail('kim', 'password', { ip: null })), { ok: true });
  assert.deepEqual(h.ok('throttle.check', fail('lee', 'totp', { ip: null })), { ok: true });
  // A failure ends one attempt (and is counted).
  assert.deepEqual(h.ok('throttle.fail', fail('kim', 'totp', { ip: null })), { ok: true, failures: 1 });
  assert.deepEqual(check(), { ok: true });
  assert.equal(check().ok, false);
  // A success ends them all.
  h.ok('throttle.reset', { sub: 'kim', kind: 'totp', meta: META });
  assert.deepEqual(check(), { ok: true });
  assert.deepEqual(check(), { ok: true });
  // An attempt whose worker never came back frees its slot when the lease ends.
  h.clock.now += ATTEMPT_LEASE_MS - 1;
  assert.equal(check().ok, false);
  h.clock.now += 1;
  assert.deepEqual(check(), { ok: true });
  // Failures of attempts whose lease ran out still count, and never go below zero in flight.
  for (let i = 0; i < 4; i++) h.ok('throttle.fail', fail('kim', 'totp', { ip: null }));
  assert.equal(h.raw<{ kinds: { totp: { failures: number; pending?: number } } }>(THROTTLE_KEYSPACE, 'kim')!.kinds.totp.pending, undefined);
});

test('failures are forgotten windowMs after the last one', () => {
  const h = harness();
  for (let i = 0; i < THROTTLE.freeFailures; i++) h.ok('throttle.fail', fail('carol'));
  h.clock.now += THROTTLE.windowMs;
  assert.deepEqual(h.ok('throttle.fail', fail('carol', 'totp', { ip: '198.51.100.9' })), { ok: true, failures: 1 });
});

test('per-IP throttling counts failures across users and holds back that IP only', () => {
  const h = harness();
  // One failure each for many users: no user is throttled, the IP collects them all.
  for (let i = 0; i < THROTTLE.ipFreeFailures; i++) assert.equal(h.ok('throttle.fail', fail(`user${i}`, 'password')).ok, true);
  const r = h.ok('throttle.fail', fail('user-next', 'password'));
  assert.deepEqual(r, { ok: false, reason: 'throttled', retryAt: h.clock.now + THROTTLE.baseBackoffMs });
  // A fresh user from the same IP is held back; the same user from another IP is not.
  assert.equal(h.ok('throttle.check', fail('fresh', 'totp')).reason, 'throttled');
  assert.equal(h.ok('throttle.check', fail(null, 'password')).reason, 'throttled');
  assert.deepEqual(h.ok('throttle.check', fail('fresh', 'totp', { ip: '203.0.113.7' })), { ok: true });
  // Unknown usernames (sub null) count for the IP too, and the backoff doubles.
  h.clock.now += THROTTLE.baseBackoffMs;
  assert.deepEqual(h.ok('throttle.fail', fail(null, 'password')), { ok: false, reason: 'throttled', retryAt: h.clock.now + 2 * THROTTLE.baseBackoffMs });
  assert.equal(h.raw<{ failures: number }>(IP_THROTTLE_KEYSPACE, IP)!.failures, THROTTLE.ipFreeFailures + 2);
  // A success does not reset the IP's counter (one valid account must not launder an IP).
  h.ok('throttle.reset', { sub: 'user0', kind: 'password', meta: META });
  assert.equal(h.ok('throttle.check', fail('user0', 'password')).reason, 'throttled');
});

test('throttle records expire into the tokens sweep (state does not grow with attackers\u2019 IPs); the index entry follows the record', () => {
  const h = harness();
  h.ok('throttle.fail', fail('ivy', 'password', { ip: '192.0.2.200' }));
  const first = h.clock.now;
  h.clock.now += 1_000;
  h.ok('throttle.fail', fail('ivy', 'password', { ip: '192.0.2.200' }));
  // One index entry per record, at its current exp (the second failure moved them).
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), [
    expiryIndexKey(h.clock.now + THROTTLE.windowMs, IP_THROTTLE_KEYSPACE, '192.0.2.200'),
    expiryIndexKey(h.clock.now + THROTTLE.windowMs, THROTTLE_KEYSPACE, 'ivy'),
  ]);
  // Not yet expired: the sweep keeps them.
  h.clock.now = first + THROTTLE.windowMs + 500;
  assert.deepEqual(h.run('tokens', 'sweep', { keys: h.st.keys(EXPIRY_KEYSPACE) }), { ok: true, value: { deleted: 0 } });
  assert.equal(h.st.keys(THROTTLE_KEYSPACE).length, 1);
  h.clock.now = first + 1_000 + THROTTLE.windowMs;
  assert.deepEqual(h.run('tokens', 'sweep', { keys: h.st.keys(EXPIRY_KEYSPACE) }), { ok: true, value: { deleted: 2 } });
  assert.deepEqual(h.st.keys(THROTTLE_KEYSPACE), []);
  assert.deepEqual(h.st.keys(IP_THROTTLE_KEYSPACE), []);
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), []);
  // A lock keeps the user's record at least until it ends; unlock removes record and entry.
  for (let i = 0; i < THROTTLE.lockAfterFailures; i++) h.ok('throttle.fail', fail('ivy', 'totp', { ip: null }));
  const rec = h.raw<{ lockedUntil: number; exp: number }>(THROTTLE_KEYSPACE, 'ivy')!;
  assert.equal(rec.exp, Math.max(rec.lockedUntil, h.clock.now + THROTTLE.windowMs));
  h.ok('unlock', { sub: 'ivy', meta: META });
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), []);
});

test('unlock clears the lock and counters and is audited', () => {
  const h = harness();
  for (let i = 0; i < THROTTLE.lockAfterFailures; i++) h.ok('throttle.fail', fail('dave', 'recovery', { ip: null }));
  assert.equal(h.ok('throttle.check', fail('dave', 'recovery', { ip: null })).reason, 'locked');
  assert.deepEqual(h.ok('unlock', { sub: 'dave', meta: { ip: '10.0.0.1' } }), { wasLocked: true });
  assert.deepEqual(h.ok('throttle.check', fail('dave', 'recovery', { ip: null })), { ok: true });
  const rec = h.audits().at(-1)!;
  assert.equal(rec.type, 'user.unlocked');
  assert.equal(rec.sub, 'dave');
  assert.equal(rec.ip, '10.0.0.1');
  assert.deepEqual(h.ok('unlock', { sub: 'dave', meta: META }), { wasLocked: false });
  // Non-password failures are audited mfa.failed with the factor.
  assert.equal(h.audits().filter((r) => r.type === 'mfa.failed' && r.details.factor === 'recovery').length, THROTTLE.lockAfterFailures);
});

test('throttle ops refuse malformed arguments and change nothing', () => {
  const h = harness();
  h.refused('throttle.fail', { sub: 'a', kind: 'sms', meta: META }, 'INVALID_ARGUMENT', /kind/);
  h.refused('throttle.fail', { sub: '', kind: 'totp', meta: META }, 'INVALID_ARGUMENT', /sub/);
  h.refused('throttle.fail', { sub: 'a', kind: 'totp', meta: { ip: 'bad ip' } }, 'INVALID_ARGUMENT', /meta.ip/);
  h.refused('throttle.fail', { sub: 'a', kind: 'totp', meta: { ip: IP, extra: 1 } }, 'INVALID_ARGUMENT', /meta/);
  h.refused('throttle.reset', { sub: null, kind: 'totp', meta: META }, 'INVALID_ARGUMENT', /sub/);
  h.refused('nope', {}, 'UNKNOWN_OPERATION');
  h.refused('toString', {}, 'UNKNOWN_OPERATION');
});

// ---------------------------------------------------------------------------------------------
// TOTP

test('TOTP: the first accepted code confirms the enrollment; a step is accepted once; older steps are replays', () => {
  const h = harness();
  h.ok('totp.enroll', { sub: 'alice', sealed: new Uint8Array([9, 9, 9]), meta: META });
  const f = h.read('factors', { sub: 'alice' }) as { totp: { confirmed: boolean } };
  assert.equal(f.totp.confirmed, false);
  // Enrolling again before confirmation replaces the secret.
  h.ok('totp.enroll', { sub: 'alice', sealed: new Uint8Array([7]), meta: META });
  assert.deepEqual(h.ok('totp.accept', { sub: 'alice', step: S0, meta: META }), { ok: true, enrolled: true });
  const f2 = h.read('factors', { sub: 'alice' }) as { totp: { confirmed: boolean; sealed: Uint8Array } };
  assert.equal(f2.totp.confirmed, true);
  assert.deepEqual(f2.totp.sealed, new Uint8Array([7]));
  assert.deepEqual(h.auditTypes(), ['mfa.enrolled']);
  // The same step again (the same code on another node): refused, audited, counted.
  assert.deepEqual(h.ok('totp.accept', { sub: 'alice', step: S0, meta: META }), { ok: false, reason: 'replay' });
  // An older step within the window (a code seen later): refused too.
  assert.deepEqual(h.ok('totp.accept', { sub: 'alice', step: S0 - 1, meta: META }), { ok: false, reason: 'replay' });
  assert.deepEqual(h.auditTypes(), ['mfa.enrolled', 'mfa.replay_refused', 'mfa.replay_refused']);
  assert.equal((h.read('factors', { sub: 'alice' }) as { lock: { failures: number } }).lock.failures, 2);
  // The next step is fine; success clears the TOTP counter.
  h.clock.now += TOTP_PERIOD_MS;
  assert.deepEqual(h.ok('totp.accept', { sub: 'alice', step: S0 + 1, meta: META }), { ok: true, enrolled: false });
  assert.equal(h.auditTypes().at(-1), 'mfa.verified');
  assert.equal((h.read('factors', { sub: 'alice' }) as { lock: { failures: number } }).lock.failures, 0);
  assert.equal(h.raw<{ lastStep: number }>(TOTP_KEYSPACE, 'alice')!.lastStep, S0 + 1);
  // Enrolling over a confirmed factor is refused.
  h.refused('totp.enroll', { sub: 'alice', sealed: new Uint8Array([1]), meta: META }, 'ALREADY_EXISTS');
});

test('TOTP: a step far from the leader time is refused (it would block every later code); throttled users get nothing', () => {
  const h = harness();
  h.ok('totp.enroll', { sub: 'erin', sealed: new Uint8Array([1]), meta: META });
  h.refused('totp.accept', { sub: 'erin', step: S0 + MAX_STEP_SKEW + 1, meta: META }, 'INVALID_ARGUMENT', /step/);
  h.refused('totp.accept', { sub: 'erin', step: S0 - MAX_STEP_SKEW - 1, meta: META }, 'INVALID_ARGUMENT', /step/);
  h.refused('totp.accept', { sub: 'erin', step: 1.5, meta: META }, 'INVALID_ARGUMENT', /step/);
  h.refused('totp.accept', { sub: 'nobody', step: S0, meta: META }, 'NOT_FOUND');
  for (let i = 0; i < THROTTLE.freeFailures + 1; i++) h.ok('throttle.fail', fail('erin'));
  const before = h.st.snapshot();
  const r = h.ok('totp.accept', { sub: 'erin', step: S0 + MAX_STEP_SKEW, meta: META });
  assert.equal(r.reason, 'throttled');
  assert.deepEqual(h.st.snapshot(), before, 'a throttled accept changes nothing');
  h.refused('totp.enroll', { sub: 'erin', sealed: new Uint8Array(0), meta: META }, 'INVALID_ARGUMENT', /sealed/);
  h.refused('totp.enroll', { sub: 'erin', sealed: new Uint8Array(2000), meta: META }, 'INVALID_ARGUMENT', /sealed/);
});

// ---------------------------------------------------------------------------------------------
// totp.verify: one command per TOTP attempt (throttle check and outcome decided together)

/** Enrolled (unconfirmed) TOTP factor for `sub`; the args of a verify of `step` against it. */
function totpUser(h: ReturnType<typeof harness>, sub: string) {
  h.ok('totp.enroll', { sub, sealed: new Uint8Array([sub.length]), meta: META });
  const createdAt = h.raw<{ createdAt: number }>(TOTP_KEYSPACE, sub)!.createdAt;
  return (step: number | null, meta: { ip: string | null } = META) => ({ sub, step, createdAt, meta });
}

/** Audit records without their chain fields (seq, ts, prev, hash): what two histories can share. */
const auditEvents = (h: ReturnType<typeof harness>) => h.audits().map((r) => ({ type: r.type, sub: r.sub, ip: r.ip, clientId: r.clientId, details: r.details }));

test('totp.verify: accepts a matched step, confirms the enrollment, then verifies; audited exactly as totp.accept', () => {
  const h = harness();
  const v = totpUser(h, 'alice');
  assert.deepEqual(h.ok('totp.verify', v(S0)), { ok: true, enrolled: true });
  assert.equal((h.read('factors', { sub: 'alice' }) as { totp: { confirmed: boolean } }).totp.confirmed, true);
  h.clock.now += TOTP_PERIOD_MS;
  assert.deepEqual(h.ok('totp.verify', v(S0 + 1)), { ok: true, enrolled: false });
  assert.equal(h.raw<{ lastStep: number }>(TOTP_KEYSPACE, 'alice')!.lastStep, S0 + 1);
  assert.deepEqual(h.auditTypes(), ['mfa.enrolled', 'mfa.verified']);
  // The same history through the old ops gives the same audit records.
  const old = harness();
  old.ok('totp.enroll', { sub: 'alice', sealed: new Uint8Array([5]), meta: META });
  old.ok('throttle.check', fail('alice'));
  old.ok('totp.accept', { sub: 'alice', step: S0, meta: META });
  old.clock.now += TOTP_PERIOD_MS;
  old.ok('throttle.check', fail('alice'));
  old.ok('totp.accept', { sub: 'alice', step: S0 + 1, meta: META });
  assert.deepEqual(auditEvents(h), auditEvents(old));
});

test('totp.verify: no match is a counted failure (mfa.failed), backoff after the free failures; a success resets the counter', () => {
  const h = harness();
  const v = totpUser(h, 'bob');
  const old = harness();
  old.ok('totp.enroll', { sub: 'bob', sealed: new Uint8Array([3]), meta: META });
  for (let i = 1; i <= THROTTLE.freeFailures; i++) {
    assert.deepEqual(h.ok('totp.verify', v(null)), { ok: false, reason: 'invalid' });
    old.ok('throttle.check', fail('bob'));
    old.ok('throttle.fail', fail('bob'));
    assert.equal((h.read('factors', { sub: 'bob' }) as { lock: { failures: number } }).lock.failures, i);
  }
  // The failure after the free ones puts the user in backoff: still 'invalid' (this code was evaluated), with retryAt.
  assert.deepEqual(h.ok('totp.verify', v(null)), { ok: false, reason: 'invalid', retryAt: h.clock.now + backoffMs(1) });
  old.ok('throttle.check', fail('bob'));
  old.ok('throttle.fail', fail('bob'));
  assert.deepEqual(auditEvents(h), auditEvents(old));
  assert.deepEqual(
    h.audits().map((r) => r.details),
    [1, 2, 3, 4].map((failures) => ({ factor: 'totp', reason: 'invalid', failures })),
  );
  // Nothing was ever reserved: no attempt is left "in flight".
  assert.equal(h.raw<{ kinds: { totp: { pending?: number } } }>(THROTTLE_KEYSPACE, 'bob')!.kinds.totp.pending, undefined);
  h.clock.now += backoffMs(1);
  assert.deepEqual(h.ok('totp.verify', v(S0)), { ok: true, enrolled: true });
  assert.equal((h.read('factors', { sub: 'bob' }) as { lock: { failures: number } }).lock.failures, 0);
});

test('totp.verify: a replayed or older step is refused, audited mfa.replay_refused and counted', () => {
  const h = harness();
  const v = totpUser(h, 'carl');
  h.ok('totp.verify', v(S0));
  assert.deepEqual(h.ok('totp.verify', v(S0)), { ok: false, reason: 'replay' });
  assert.deepEqual(h.ok('totp.verify', v(S0 - 1)), { ok: false, reason: 'replay' });
  assert.deepEqual(h.auditTypes(), ['mfa.enrolled', 'mfa.replay_refused', 'mfa.replay_refused']);
  assert.deepEqual(h.audits()[1]!.details, { factor: 'totp', step: S0, lastStep: S0 });
  assert.equal((h.read('factors', { sub: 'carl' }) as { lock: { failures: number } }).lock.failures, 2);
  assert.equal(h.raw<{ lastStep: number }>(TOTP_KEYSPACE, 'carl')!.lastStep, S0);
});

test('totp.verify: a throttled or locked user is refused without evaluation, and nothing changes', () => {
  const h = harness();
  const v = totpUser(h, 'dana');
  for (let i = 0; i <= THROTTLE.freeFailures; i++) h.ok('totp.verify', v(null));
  const retryAt = h.clock.now + backoffMs(1);
  for (const step of [S0, null, S0 - 1]) {
    const before = h.st.snapshot();
    assert.deepEqual(h.ok('totp.verify', v(step)), { ok: false, reason: 'throttled', retryAt });
    assert.deepEqual(h.st.snapshot(), before, `a throttled verify of ${step} changes nothing`);
  }
  assert.equal(h.raw<{ lastStep: number | null }>(TOTP_KEYSPACE, 'dana')!.lastStep, null, 'the right code was not accepted');
  // An IP in backoff holds back every user from it, here too.
  const v2 = totpUser(h, 'ed');
  for (let i = 0; i < THROTTLE.ipFreeFailures; i++) h.ok('throttle.fail', fail(null, 'password'));
  const before = h.st.snapshot();
  assert.equal(h.ok('totp.verify', v2(S0)).reason, 'throttled');
  assert.deepEqual(h.st.snapshot(), before);
  assert.deepEqual(h.ok('totp.verify', v2(S0, { ip: '203.0.113.9' })), { ok: true, enrolled: true });
});

test('totp.verify: lockAfterFailures wrong codes lock the user (user.locked), on every kind, until lockMs passes', () => {
  const h = harness();
  const v = totpUser(h, 'finn');
  let last: Record<string, unknown> = {};
  for (let i = 1; i <= THROTTLE.lockAfterFailures; i++) {
    last = h.ok('totp.verify', v(null));
    h.clock.now += THROTTLE.maxBackoffMs; // wait out each backoff: only the lock is under test
  }
  const lockedAt = h.clock.now - THROTTLE.maxBackoffMs;
  assert.deepEqual(last, { ok: false, reason: 'locked', retryAt: lockedAt + THROTTLE.lockMs });
  assert.deepEqual(h.auditTypes().slice(-2), ['mfa.failed', 'user.locked']);
  assert.deepEqual(h.audits().at(-1)!.details, { factor: 'totp', failures: THROTTLE.lockAfterFailures, lockedUntil: lockedAt + THROTTLE.lockMs });
  const step = Math.floor(h.clock.now / TOTP_PERIOD_MS);
  const before = h.st.snapshot();
  assert.deepEqual(h.ok('totp.verify', v(step)), { ok: false, reason: 'locked', retryAt: lockedAt + THROTTLE.lockMs });
  assert.equal(h.ok('throttle.check', fail('finn', 'password')).reason, 'locked');
  assert.deepEqual(h.st.snapshot(), before);
  h.clock.now = lockedAt + THROTTLE.lockMs;
  assert.deepEqual(h.ok('totp.verify', v(Math.floor(h.clock.now / TOTP_PERIOD_MS))), { ok: true, enrolled: true });
});

test('totp.verify: parallel attempts are decided in log order, each counted before any is answered', () => {
  const h = harness();
  const v = totpUser(h, 'gus');
  const v2 = totpUser(h, 'hal');
  /** Commands proposed at once (by several nodes' workers), committed in one batch in this order. */
  const batch = (argsList: readonly unknown[]): unknown[] => {
    const first = index + 1;
    const entries = argsList.map((args) => ({ term: 1, index: ++index, type: 'normal' as const, data: encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts: h.clock.now, domain: 'mfa', op: 'totp.verify', args }) }));
    const b = h.sm.applyEntries(prepareEntries(entries));
    h.st.commit(b);
    return argsList.map((_, i) => {
      const r = b.results.get(first + i)![0]!;
      if (!r.ok) assert.fail(`${r.code} ${r.message}`);
      return plain(r.value);
    });
  };
  // 20 guesses at once; the attacker happened to guess right in the last one. The first
  // freeFailures + 1 are counted, the rest are refused unevaluated, the right one included.
  const guesses = [...Array.from({ length: 19 }, () => v(null)), v(S0)];
  const answers = batch(guesses);
  const n = THROTTLE.freeFailures + 1;
  assert.deepEqual(answers.slice(0, n - 1), Array.from({ length: n - 1 }, () => ({ ok: false, reason: 'invalid' })));
  assert.deepEqual(answers[n - 1], { ok: false, reason: 'invalid', retryAt: h.clock.now + backoffMs(1) });
  for (const a of answers.slice(n)) assert.deepEqual(a, { ok: false, reason: 'throttled', retryAt: h.clock.now + backoffMs(1) });
  assert.equal(h.raw<{ lastStep: number | null }>(TOTP_KEYSPACE, 'gus')!.lastStep, null);
  assert.equal(h.auditTypes().filter((t) => t === 'mfa.failed').length, n);
  // The same right code sent to two nodes at once: accepted once, the other is a replay.
  assert.deepEqual(batch([v2(S0), v2(S0)]), [{ ok: true, enrolled: true }, { ok: false, reason: 'replay' }]);
});

test('totp.verify: malformed arguments, an unknown user, a factor changed since it was read: refused, nothing changes', () => {
  const h = harness();
  const v = totpUser(h, 'ivy');
  h.refused('totp.verify', v(S0 + MAX_STEP_SKEW + 1), 'INVALID_ARGUMENT', /step/);
  h.refused('totp.verify', v(S0 - MAX_STEP_SKEW - 1), 'INVALID_ARGUMENT', /step/);
  h.refused('totp.verify', v(1.5), 'INVALID_ARGUMENT', /step/);
  h.refused('totp.verify', { ...v(S0), step: undefined }, 'INVALID_ARGUMENT', /step/);
  h.refused('totp.verify', { ...v(S0), createdAt: undefined }, 'INVALID_ARGUMENT', /createdAt/);
  h.refused('totp.verify', { ...v(S0), createdAt: -1 }, 'INVALID_ARGUMENT', /createdAt/);
  h.refused('totp.verify', { ...v(S0), sub: '' }, 'INVALID_ARGUMENT', /sub/);
  h.refused('totp.verify', { ...v(S0), meta: { ip: 5 } }, 'INVALID_ARGUMENT', /meta/);
  h.refused('totp.verify', { ...v(S0), sub: 'nobody' }, 'NOT_FOUND');
  // Re-enrolled after the worker read the factor (in the same millisecond, even): the step was
  // matched against another secret.
  h.ok('totp.enroll', { sub: 'ivy', sealed: new Uint8Array([42]), meta: META });
  assert.equal(h.raw<{ createdAt: number }>(TOTP_KEYSPACE, 'ivy')!.createdAt, T0 + 1);
  h.refused('totp.verify', v(S0), 'CONFLICT', /changed/);
  h.refused('totp.verify', v(null), 'CONFLICT', /changed/);
  assert.deepEqual(h.auditTypes(), []);
});

test('mixed versions: an older node\u2019s reservation (throttle.check) is not ended by a totp.verify failure', () => {
  const h = harness();
  const v = totpUser(h, 'jo');
  h.ok('throttle.check', fail('jo'));
  h.ok('throttle.check', fail('jo'));
  h.ok('totp.verify', v(null));
  const c = h.raw<{ kinds: { totp: { failures: number; pending?: number } } }>(THROTTLE_KEYSPACE, 'jo')!.kinds.totp;
  assert.equal(c.failures, 1);
  assert.equal(c.pending, 2);
  // The older node's own failure ends its attempt, as before.
  h.ok('throttle.fail', fail('jo'));
  assert.equal(h.raw<{ kinds: { totp: { pending?: number } } }>(THROTTLE_KEYSPACE, 'jo')!.kinds.totp.pending, 1);
  // And its success path still applies.
  assert.deepEqual(h.ok('totp.accept', { sub: 'jo', step: S0, meta: META }), { ok: true, enrolled: true });
});

test('TOTP: remove deletes the factor and is audited', () => {
  const h = harness();
  h.ok('totp.enroll', { sub: 'f', sealed: new Uint8Array([1]), meta: META });
  assert.deepEqual(h.ok('totp.remove', { sub: 'f', meta: META }), { existed: true });
  assert.deepEqual(h.ok('totp.remove', { sub: 'f', meta: META }), { existed: false });
  assert.equal((h.read('factors', { sub: 'f' }) as { totp: unknown }).totp, null);
  assert.deepEqual(h.auditTypes(), ['mfa.reset']);
});

// ---------------------------------------------------------------------------------------------
// WebAuthn

test('WebAuthn challenges: single use, expire, bound to a purpose; indexed for the tokens sweep', () => {
  const h = harness();
  const exp = h.clock.now + 300_000;
  h.ok('webauthn.challenge', { challenge: 'chal-1', purpose: 'authenticate', sub: null, exp });
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), [expiryIndexKey(exp, CHALLENGES_KEYSPACE, 'chal-1')]);
  assert.deepEqual(h.ok('webauthn.consume', { challenge: 'chal-1', purpose: 'authenticate' }), { ok: true, sub: null });
  assert.deepEqual(h.ok('webauthn.consume', { challenge: 'chal-1', purpose: 'authenticate' }), { ok: false, reason: 'used' });
  assert.deepEqual(h.ok('webauthn.consume', { challenge: 'never', purpose: 'authenticate' }), { ok: false, reason: 'unknown' });
  // Purpose mismatch spends the challenge.
  h.ok('webauthn.challenge', { challenge: 'chal-2', purpose: 'register', sub: 'alice', exp });
  assert.deepEqual(h.ok('webauthn.consume', { challenge: 'chal-2', purpose: 'authenticate' }), { ok: false, reason: 'purpose' });
  assert.deepEqual(h.ok('webauthn.consume', { challenge: 'chal-2', purpose: 'register' }), { ok: false, reason: 'used' });
  // Expiry by leader time.
  h.ok('webauthn.challenge', { challenge: 'chal-3', purpose: 'register', sub: 'alice', exp });
  h.clock.now = exp;
  assert.deepEqual(h.ok('webauthn.consume', { challenge: 'chal-3', purpose: 'register' }), { ok: false, reason: 'expired' });
  // The tokens domain's sweep deletes them (and their index entries) once expired.
  const keys = h.st.keys(EXPIRY_KEYSPACE);
  assert.equal(keys.length, 3);
  const swept = h.run('tokens', 'sweep', { keys });
  assert.deepEqual(swept, { ok: true, value: { deleted: 3 } });
  assert.deepEqual(h.st.keys(CHALLENGES_KEYSPACE), []);
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), []);
});

test('WebAuthn challenges: bad arguments are refused', () => {
  const h = harness();
  const now = h.clock.now;
  h.refused('webauthn.challenge', { challenge: 'c', purpose: 'register', sub: null, exp: now + 1000 }, 'INVALID_ARGUMENT', /sub/);
  h.refused('webauthn.challenge', { challenge: 'c', purpose: 'login', sub: null, exp: now + 1000 }, 'INVALID_ARGUMENT', /purpose/);
  h.refused('webauthn.challenge', { challenge: 'c', purpose: 'authenticate', sub: null, exp: now }, 'INVALID_ARGUMENT', /exp/);
  h.refused('webauthn.challenge', { challenge: 'c', purpose: 'authenticate', sub: null, exp: now + MAX_CHALLENGE_TTL_MS + 1 }, 'INVALID_ARGUMENT', /exp/);
  h.refused('webauthn.challenge', { challenge: 'a b', purpose: 'authenticate', sub: null, exp: now + 1000 }, 'INVALID_ARGUMENT', /challenge/);
  h.ok('webauthn.challenge', { challenge: 'c', purpose: 'authenticate', sub: null, exp: now + 1000 });
  h.refused('webauthn.challenge', { challenge: 'c', purpose: 'authenticate', sub: null, exp: now + 1000 }, 'ALREADY_EXISTS');
});

test('WebAuthn credentials: register, find by id, counters only go up (0/0 allowed), regression refused and audited', () => {
  const h = harness();
  h.ok('webauthn.register', { sub: 'alice', credential: cred('cred-A', 5), meta: META });
  h.ok('webauthn.register', { sub: 'alice', credential: cred('cred-Z', 0), meta: META });
  h.refused('webauthn.register', { sub: 'bob', credential: cred('cred-A'), meta: META }, 'ALREADY_EXISTS');
  const found = h.read('webauthn.byCredentialId', { credentialId: 'cred-A' }) as { sub: string; credential: { counter: number; createdAt: number } };
  assert.equal(found.sub, 'alice');
  assert.equal(found.credential.counter, 5);
  assert.equal(found.credential.createdAt, T0, "apply's time, not the proposer's");
  assert.equal(h.read('webauthn.byCredentialId', { credentialId: 'nope' }), null);

  assert.deepEqual(h.ok('webauthn.accept', { sub: 'alice', credentialId: 'cred-A', newCounter: 6, meta: META }), { ok: true });
  // Equal or lower: a cloned authenticator.
  assert.deepEqual(h.ok('webauthn.accept', { sub: 'alice', credentialId: 'cred-A', newCounter: 6, meta: META }), { ok: false, reason: 'counter_regression' });
  assert.deepEqual(h.ok('webauthn.accept', { sub: 'alice', credentialId: 'cred-A', newCounter: 2, meta: META }), { ok: false, reason: 'counter_regression' });
  assert.deepEqual(h.ok('webauthn.accept', { sub: 'alice', credentialId: 'cred-A', newCounter: 0, meta: META }), { ok: false, reason: 'counter_regression' });
  const cr = h.audits().filter((r) => r.type === 'mfa.counter_regression');
  assert.equal(cr.length, 3);
  assert.deepEqual({ stored: cr[1]!.details.stored, received: cr[1]!.details.received }, { stored: 6, received: 2 });
  assert.equal((h.read('factors', { sub: 'alice' }) as { lock: { failures: number } }).lock.failures, 3);
  // An authenticator without a counter (always 0) keeps working.
  assert.deepEqual(h.ok('webauthn.accept', { sub: 'alice', credentialId: 'cred-Z', newCounter: 0, meta: META }), { ok: true });
  assert.deepEqual(h.ok('webauthn.accept', { sub: 'alice', credentialId: 'cred-Z', newCounter: 0, meta: META }), { ok: true });
  // The accepted counter and last use are stored.
  const list = h.raw<{ id: string; counter: number; lastUsedAt: number | null }[]>(WEBAUTHN_KEYSPACE, 'alice')!;
  assert.deepEqual(
    list.map((c) => [c.id, c.counter, c.lastUsedAt]),
    [
      ['cred-A', 6, T0],
      ['cred-Z', 0, T0],
    ],
  );
  h.refused('webauthn.accept', { sub: 'bob', credentialId: 'cred-A', newCounter: 99, meta: META }, 'NOT_FOUND');
  h.refused('webauthn.accept', { sub: 'alice', credentialId: 'cred-A', newCounter: 2 ** 32, meta: META }, 'INVALID_ARGUMENT', /newCounter/);
});

test('WebAuthn credentials: at most MAX_CREDENTIALS per user; remove; malformed credentials refused', () => {
  const h = harness();
  for (let i = 0; i < MAX_CREDENTIALS; i++) h.ok('webauthn.register', { sub: 'u', credential: cred(`c${i}`), meta: META });
  h.refused('webauthn.register', { sub: 'u', credential: cred('one-more'), meta: META }, 'RESOURCE_EXHAUSTED');
  assert.deepEqual(h.ok('webauthn.remove', { sub: 'u', credentialId: 'c3', meta: META }), { existed: true });
  assert.deepEqual(h.ok('webauthn.remove', { sub: 'u', credentialId: 'c3', meta: META }), { existed: false });
  assert.equal(h.raw(CREDENTIAL_INDEX_KEYSPACE, 'c3'), undefined);
  h.ok('webauthn.register', { sub: 'u', credential: cred('one-more'), meta: META });
  h.refused('webauthn.register', { sub: 'v', credential: cred('x', 0, { id: 'not base64url!' }), meta: META }, 'INVALID_ARGUMENT', /credential.id/);
  h.refused('webauthn.register', { sub: 'v', credential: cred('x', 0, { publicKey: new Uint8Array(3000) }), meta: META }, 'INVALID_ARGUMENT', /publicKey/);
  h.refused('webauthn.register', { sub: 'v', credential: cred('x', -1), meta: META }, 'INVALID_ARGUMENT', /counter/);
  h.refused('webauthn.register', { sub: 'v', credential: cred('x', 0, { name: '' }), meta: META }, 'INVALID_ARGUMENT', /name/);
  h.refused('webauthn.register', { sub: 'v', credential: cred('x', 0, { transports: Array(9).fill('usb') }), meta: META }, 'INVALID_ARGUMENT', /transports/);
  h.refused('webauthn.register', { sub: 'v', credential: cred('x', 0, { discoverable: 'yes' }), meta: META }, 'INVALID_ARGUMENT', /discoverable/);
});

// ---------------------------------------------------------------------------------------------
// webauthn.verify: one command per assertion

/** A user with one credential (counter 5) and a fresh 'authenticate' challenge maker. */
function keyUser(h: ReturnType<typeof harness>, sub: string, credentialId = `cred-${sub}`) {
  h.ok('webauthn.register', { sub, credential: cred(credentialId, 5), meta: META });
  let n = 0;
  const challenge = (purpose = 'authenticate', forSub: string | null = sub): string => {
    const c = `chal-${sub}-${++n}`;
    h.ok('webauthn.challenge', { challenge: c, purpose, sub: purpose === 'register' ? (forSub ?? sub) : forSub, exp: h.clock.now + 60_000 });
    return c;
  };
  const args = (c: string | null, newCounter: number | null, o: { sub?: string | null; credentialId?: string | null; owner?: string | null } = {}) => ({
    sub: o.sub === undefined ? sub : o.sub,
    challenge: c,
    credentialId: o.credentialId === undefined ? credentialId : o.credentialId,
    owner: o.owner === undefined ? sub : o.owner,
    newCounter,
    meta: META,
  });
  return { challenge, args };
}

test('webauthn.verify: accepts a valid assertion once per challenge and audits as webauthn.accept did', () => {
  const h = harness();
  const k = keyUser(h, 'dave');
  const c = k.challenge();
  assert.deepEqual(h.ok('webauthn.verify', k.args(c, 6)), { ok: true });
  const list = h.raw<{ counter: number; lastUsedAt: number }[]>(WEBAUTHN_KEYSPACE, 'dave')!;
  assert.deepEqual([list[0]!.counter, list[0]!.lastUsedAt], [6, T0]);
  assert.equal(h.raw<{ usedAt: number }>(CHALLENGES_KEYSPACE, c)!.usedAt, T0);
  // The same assertion again: the challenge is spent; counted (mfa.failed, as throttle.fail wrote it).
  assert.deepEqual(h.ok('webauthn.verify', k.args(c, 7)), { ok: false, reason: 'challenge', why: 'used' });
  const old = harness();
  old.ok('webauthn.register', { sub: 'dave', credential: cred('cred-dave', 5), meta: META });
  old.ok('throttle.check', fail('dave', 'webauthn'));
  old.ok('webauthn.accept', { sub: 'dave', credentialId: 'cred-dave', newCounter: 6, meta: META });
  old.ok('throttle.check', fail('dave', 'webauthn'));
  old.ok('throttle.fail', fail('dave', 'webauthn'));
  assert.deepEqual(auditEvents(h), auditEvents(old));
});

test('webauthn.verify: every bad challenge, an unknown credential and a bad signature are counted; a regression is refused and audited', () => {
  const h = harness();
  const k = keyUser(h, 'erin');
  keyUser(h, 'fay');
  // Unknown, missing, expired, made for registration: failures 1 to 4 (the 4th starts the backoff).
  assert.deepEqual(h.ok('webauthn.verify', k.args('chal-never-made', 6)), { ok: false, reason: 'challenge', why: 'unknown' });
  assert.deepEqual(h.ok('webauthn.verify', k.args(null, 6)), { ok: false, reason: 'challenge', why: 'missing' });
  const late = k.challenge();
  h.clock.now += 60_000;
  assert.deepEqual(h.ok('webauthn.verify', k.args(late, 6)), { ok: false, reason: 'challenge', why: 'expired' });
  const reg = k.challenge('register');
  assert.deepEqual(h.ok('webauthn.verify', k.args(reg, 6)), { ok: false, reason: 'challenge', why: 'purpose', retryAt: h.clock.now + backoffMs(1) });
  h.ok('unlock', { sub: 'erin', meta: META });
  // Made for another user; no credential of this user (none found, or fay's); the signature did not verify.
  const fays = k.challenge('authenticate', 'fay');
  assert.deepEqual(h.ok('webauthn.verify', k.args(fays, 6)), { ok: false, reason: 'challenge', why: 'other_user' });
  // Each of those bad challenges that existed is spent now.
  for (const c of [late, reg, fays]) assert.notEqual(h.raw<{ usedAt: number | null }>(CHALLENGES_KEYSPACE, c)!.usedAt, null);
  assert.deepEqual(h.ok('webauthn.verify', k.args(k.challenge(), null, { credentialId: null, owner: null })), { ok: false, reason: 'unknown_credential' });
  assert.deepEqual(h.ok('webauthn.verify', k.args(k.challenge(), 6, { credentialId: 'cred-fay', owner: 'fay' })), { ok: false, reason: 'unknown_credential' });
  assert.deepEqual(h.ok('webauthn.verify', k.args(k.challenge(), null)), { ok: false, reason: 'invalid', retryAt: h.clock.now + backoffMs(1) });
  // Counter regression (once the backoff is over).
  h.clock.now += backoffMs(1);
  assert.deepEqual(h.ok('webauthn.verify', k.args(k.challenge(), 5)), { ok: false, reason: 'counter_regression' });
  const types = h.auditTypes();
  assert.equal(types.filter((x) => x === 'mfa.counter_regression').length, 1);
  assert.deepEqual(
    h.audits().filter((r) => r.type === 'mfa.failed').map((r) => r.details.reason),
    Array.from({ length: 8 }, () => 'invalid'),
  );
  assert.equal((h.read('factors', { sub: 'erin' }) as { lock: { failures: number } }).lock.failures, 5);
  assert.equal(h.raw<{ counter: number }[]>(WEBAUTHN_KEYSPACE, 'erin')![0]!.counter, 5);
  assert.equal((h.read('factors', { sub: 'fay' }) as { lock: { failures: number } }).lock.failures, 0, 'counted against the user who tried');
});

test('webauthn.verify: throttled refused unevaluated (challenge not spent); passkey login checks the owner; a credential gone is NOT_FOUND; bad args refused', () => {
  const h = harness();
  const k = keyUser(h, 'gil');
  for (let i = 0; i <= THROTTLE.freeFailures; i++) h.ok('throttle.fail', fail('gil', 'webauthn', { ip: null }));
  const c = k.challenge();
  const before = h.st.snapshot();
  assert.equal(h.ok('webauthn.verify', k.args(c, 6)).reason, 'throttled');
  assert.deepEqual(h.st.snapshot(), before, 'nothing written, the challenge still usable');
  // A passkey login (sub null): the IP is fine, but the owner is in backoff — refused after the signature, challenge spent.
  const pk = k.challenge('authenticate', null);
  assert.equal(h.ok('webauthn.verify', k.args(pk, 6, { sub: null })).reason, 'throttled');
  assert.notEqual(h.raw<{ usedAt: number | null }>(CHALLENGES_KEYSPACE, pk)!.usedAt, null);
  h.ok('unlock', { sub: 'gil', meta: META });
  assert.deepEqual(h.ok('webauthn.verify', k.args(k.challenge('authenticate', null), 6, { sub: null })), { ok: true });
  // Removed after the worker read it.
  h.ok('webauthn.remove', { sub: 'gil', credentialId: 'cred-gil', meta: META });
  h.refused('webauthn.verify', k.args(k.challenge(), 7), 'NOT_FOUND');
  h.refused('webauthn.verify', k.args('chal-x', 7, { owner: null }), 'INVALID_ARGUMENT', /both/);
  h.refused('webauthn.verify', k.args('chal-x', 7, { credentialId: null, owner: null }), 'INVALID_ARGUMENT', /newCounter/);
  h.refused('webauthn.verify', k.args('chal-x', 2 ** 32), 'INVALID_ARGUMENT', /newCounter/);
  h.refused('webauthn.verify', k.args('chal-x', 7, { credentialId: 'not base64url!' }), 'INVALID_ARGUMENT', /credentialId/);
});

test('WebAuthn accept while locked changes nothing', () => {
  const h = harness();
  h.ok('webauthn.register', { sub: 'w', credential: cred('cw', 1), meta: META });
  for (let i = 0; i < THROTTLE.lockAfterFailures; i++) h.ok('throttle.fail', fail('w', 'webauthn', { ip: null }));
  const before = h.st.snapshot();
  assert.equal(h.ok('webauthn.accept', { sub: 'w', credentialId: 'cw', newCounter: 2, meta: { ip: null } }).reason, 'locked');
  assert.deepEqual(h.st.snapshot(), before);
});

// ---------------------------------------------------------------------------------------------
// Recovery codes

test('recovery codes: each works once, a reused or unknown code fails and counts, exhaustion forces re-enrollment', () => {
  const h = harness();
  const hs = hashes('a');
  h.ok('recovery.set', { sub: 'alice', hashes: hs, meta: META });
  h.ok('policy.set', { sub: 'alice', required: true, reenrollAfterRecovery: false, meta: META });
  for (let i = 0; i < 10; i++) {
    const r = h.ok('recovery.use', { sub: 'alice', hash: hs[i], meta: META });
    assert.deepEqual(r, { ok: true, remaining: 9 - i, forceReenroll: i === 9 }, `code ${i}`);
    // Used once: the same code again is wrong (and counted).
    if (i < 3) assert.deepEqual(h.ok('recovery.use', { sub: 'alice', hash: hs[i], meta: META }), { ok: false, reason: 'invalid' });
  }
  assert.deepEqual(h.ok('recovery.use', { sub: 'alice', hash: hs[0], meta: META }), { ok: false, reason: 'invalid' });
  assert.equal((h.read('factors', { sub: 'alice' }) as { recovery: { remaining: number } }).recovery.remaining, 0);
  const used = h.audits().filter((r) => r.type === 'mfa.recovery_used');
  assert.equal(used.length, 10);
  assert.equal(used[9]!.details.remaining, 0);
  assert.equal(h.audits().filter((r) => r.type === 'mfa.failed' && r.details.factor === 'recovery').length, 4);
  // Regenerating replaces the set; old codes stop working.
  const hs2 = hashes('b');
  h.ok('recovery.set', { sub: 'alice', hashes: hs2, meta: META });
  assert.equal(h.auditTypes().filter((t) => t === 'mfa.recovery_regenerated').length, 2);
  assert.deepEqual(h.ok('recovery.use', { sub: 'alice', hash: hs[5], meta: META }), { ok: false, reason: 'invalid' });
  // Default policy: any use asks for re-enrollment.
  h.ok('policy.set', { sub: 'alice', required: true, reenrollAfterRecovery: true, meta: META });
  assert.deepEqual(h.ok('recovery.use', { sub: 'alice', hash: hs2[0], meta: META }), { ok: true, remaining: 9, forceReenroll: true });
});

test('recovery codes: guessing is throttled and locks; a user without codes answers like a wrong code', () => {
  const h = harness();
  assert.deepEqual(h.ok('recovery.use', { sub: 'nocodes', hash: hashes('z')[0], meta: META }), { ok: false, reason: 'invalid' });
  h.ok('recovery.set', { sub: 'g', hashes: hashes('g'), meta: META });
  for (let i = 0; i < THROTTLE.lockAfterFailures; i++) {
    h.clock.now += THROTTLE.maxBackoffMs;
    assert.deepEqual(h.ok('recovery.use', { sub: 'g', hash: hashes('x')[0], meta: { ip: null } }), { ok: false, reason: 'invalid' });
  }
  // Locked: even a right code is not looked at, and stays usable.
  const before = h.st.snapshot();
  assert.equal(h.ok('recovery.use', { sub: 'g', hash: hashes('g')[0], meta: { ip: null } }).reason, 'locked');
  assert.deepEqual(h.st.snapshot(), before);
  h.ok('unlock', { sub: 'g', meta: META });
  assert.equal(h.ok('recovery.use', { sub: 'g', hash: hashes('g')[0], meta: { ip: null } }).ok, true);
});

test('recovery.set refuses anything but ten distinct hashes', () => {
  const h = harness();
  h.refused('recovery.set', { sub: 'a', hashes: hashes('a').slice(0, 9), meta: META }, 'INVALID_ARGUMENT', /hashes/);
  h.refused('recovery.set', { sub: 'a', hashes: [...hashes('a').slice(0, 9), hashes('a')[0]], meta: META }, 'INVALID_ARGUMENT', /distinct/);
  h.refused('recovery.set', { sub: 'a', hashes: [...hashes('a').slice(0, 9), 'not a hash'], meta: META }, 'INVALID_ARGUMENT', /hashes\[9\]/);
});

// ---------------------------------------------------------------------------------------------
// Admin

test('reset removes every factor (and the credential index); policy and counters stay', () => {
  const h = harness();
  h.ok('totp.enroll', { sub: 'r', sealed: new Uint8Array([1]), meta: META });
  h.ok('webauthn.register', { sub: 'r', credential: cred('r1'), meta: META });
  h.ok('webauthn.register', { sub: 'r', credential: cred('r2'), meta: META });
  h.ok('recovery.set', { sub: 'r', hashes: hashes('r'), meta: META });
  h.ok('policy.set', { sub: 'r', required: true, meta: META });
  h.ok('throttle.fail', fail('r'));
  assert.deepEqual(h.ok('reset', { sub: 'r', meta: META }), { removed: { totp: true, webauthn: 2, recovery: 10 } });
  for (const ks of [TOTP_KEYSPACE, WEBAUTHN_KEYSPACE, CREDENTIAL_INDEX_KEYSPACE, RECOVERY_KEYSPACE]) assert.deepEqual(h.st.keys(ks), [], ks);
  const f = h.read('factors', { sub: 'r' }) as { required: boolean; lock: { failures: number } };
  assert.equal(f.required, true);
  assert.equal(f.lock.failures, 1);
  const last = h.audits().at(-1)!;
  assert.equal(last.type, 'mfa.reset');
  assert.deepEqual(last.details, { factor: 'all', recovery: 10, totp: true, webauthn: 2 });
});

test('factors read of an unknown user; the audit chain links every mfa record', () => {
  const h = harness();
  assert.deepEqual(h.read('factors', { sub: 'ghost' }), {
    totp: null,
    webauthn: [],
    recovery: { remaining: 0 },
    required: false,
    reenrollAfterRecovery: true,
    lock: { failures: 0, lockedUntil: null, backoffUntil: null },
  });
  h.ok('totp.enroll', { sub: 'a', sealed: new Uint8Array([1]), meta: META });
  h.ok('totp.accept', { sub: 'a', step: S0, meta: META });
  h.ok('totp.accept', { sub: 'a', step: S0, meta: META });
  h.ok('recovery.set', { sub: 'a', hashes: hashes('a'), meta: { ip: IP, clientId: 'app' } });
  const recs = h.audits();
  assert.deepEqual(
    recs.map((r) => r.type),
    ['mfa.enrolled', 'mfa.replay_refused', 'mfa.recovery_regenerated'],
  );
  for (let i = 1; i < recs.length; i++) assert.equal(recs[i]!.prev, recs[i - 1]!.hash);
  assert.equal(recs[2]!.clientId, 'app');
  assert.equal(recs[0]!.ip, IP);
  assert.equal(recs[0]!.ts, T0);
});

// totp.signIn: totp.verify and the session it upgrades in one command

test('totp.signIn: an accepted code writes the verified step, the upgraded session and its code in one command; a refused one only what totp.verify writes', () => {
  const h = harness();
  const v = totpUser(h, 'erin');
  const erin = { ip: IP, sub: 'erin' };
  h.run('tokens', 'session.create', { hash: 's1', exp: T0 + 3_600_000, sealed: new Uint8Array([1]), meta: erin });
  const session = (hash: string, prev: string, code?: string) => ({
    op: 'session.replace',
    args: { hash, exp: T0 + 3_600_000, sealed: new Uint8Array([2]), meta: erin, previous: { hash: prev, meta: erin }, ...(code ? { code: { hash: code, exp: T0 + 60_000, sealed: new Uint8Array([9]) } } : {}) },
  });
  const sessions = () => h.st.keys(LOGIN_SESSIONS_KEYSPACE);
  const auditsBefore = h.auditTypes().length;
  // A wrong code: counted exactly as totp.verify counts it, and no session, no code.
  assert.deepEqual(h.ok('totp.signIn', { verify: v(null), session: session('s2', 's1', 'c1') }), { factor: { ok: false, reason: 'invalid' } });
  assert.deepEqual(sessions(), ['s1']);
  assert.equal(h.st.get(CODES_KEYSPACE, 'c1'), undefined);
  assert.equal((h.read('factors', { sub: 'erin' }) as { lock: { failures: number } }).lock.failures, 1);
  assert.deepEqual(h.auditTypes().slice(auditsBefore), ['mfa.failed']);
  // The right code: the step is spent, s1 replaced by s2, the code stored; audited in that order.
  assert.deepEqual(h.ok('totp.signIn', { verify: v(S0), session: session('s2', 's1', 'c1') }), { factor: { ok: true, enrolled: true }, session: { existed: true } });
  assert.deepEqual(sessions(), ['s2']);
  assert.notEqual(h.st.get(CODES_KEYSPACE, 'c1'), undefined);
  assert.equal(h.raw<{ lastStep: number }>(TOTP_KEYSPACE, 'erin')!.lastStep, S0);
  assert.equal((h.read('factors', { sub: 'erin' }) as { lock: { failures: number } }).lock.failures, 0);
  assert.deepEqual(h.auditTypes().slice(auditsBefore), ['mfa.failed', 'mfa.enrolled', 'login.succeeded', 'logout']);
  // The same code again (another node, the same moment): a replay, no session.
  assert.deepEqual(h.ok('totp.signIn', { verify: v(S0), session: session('s3', 's2') }), { factor: { ok: false, reason: 'replay' } });
  assert.deepEqual(sessions(), ['s2']);
});

test('totp.signIn: a changed factor, a session the tokens domain refuses or a malformed session part refuse the whole command', () => {
  const h = harness();
  const v = totpUser(h, 'fay');
  const fay = { ip: IP, sub: 'fay' };
  h.run('tokens', 'session.create', { hash: 's1', exp: T0 + 3_600_000, sealed: new Uint8Array([1]), meta: fay });
  const replace = (hash: string) => ({ op: 'session.replace', args: { hash, exp: T0 + 3_600_000, sealed: new Uint8Array([2]), meta: fay, previous: { hash: 's1', meta: fay } } });
  // Matched against a factor that was since replaced: CONFLICT, nothing written (the worker reads again).
  h.refused('totp.signIn', { verify: { ...v(S0), createdAt: 1 }, session: replace('s2') }, 'CONFLICT');
  // The new session's hash exists: the accepted step is not kept either (the code may be tried again).
  h.refused('totp.signIn', { verify: v(S0), session: replace('s1') }, 'INVALID_ARGUMENT', /differ/);
  h.run('tokens', 'session.create', { hash: 's9', exp: T0 + 3_600_000, sealed: new Uint8Array([3]), meta: fay });
  h.refused('totp.signIn', { verify: v(S0), session: replace('s9') }, 'ALREADY_EXISTS');
  // Not a session operation, or no arguments: refused before anything is evaluated (no failure counted).
  h.refused('totp.signIn', { verify: v(null), session: { op: 'code.create', args: {} } }, 'INVALID_ARGUMENT', /session.op/);
  h.refused('totp.signIn', { verify: v(null), session: { op: 'session.create' } }, 'INVALID_ARGUMENT', /session.args/);
  // After all that, the code still works once.
  assert.deepEqual(h.ok('totp.signIn', { verify: v(S0), session: replace('s2') }), { factor: { ok: true, enrolled: true }, session: { existed: true } });
});
