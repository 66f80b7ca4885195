// The Jepsen suite's pure parts: the checkers on hand-made histories (each violation they must
// find, and the legal histories they must accept), the majority-side rule, the schedule's
// determinism, and the nft cut sets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../sim/rng.ts';
import { GRACE_MS, checkCodes, checkRefresh } from './auth.ts';
import { AUDIT_CLOCK_SLACK_MS, chainError, checkAudit } from './audit.ts';
import type { AuditCopy } from './audit.ts';
import { INVALID_ANSWERS_BEFORE_LOCK, checkTotp, classifyAnswer, formFields, wrongCode } from './mfa.ts';
import { GENESIS_HASH, recordHash } from '../../src/state/audit.ts';
import type { AuditRecord } from '../../src/state/audit-ops.ts';
import { THROTTLE } from '../../src/state/mfa-ops.ts';
import { totpCodeAt, totpStep } from '../../src/mfa/totp.ts';
import { checkAvailability } from './availability.ts';
import type { OpRecord, Outcome } from './history.ts';
import { parseWorkloads } from './jepsen.ts';
import { checkKv } from './kv.ts';
import { FAULT_KINDS, majoritySide, makeSchedule, parseNemesis } from './nemesis.ts';
import { cutAllBut, cutBetween } from './net.ts';

let index = 0;
function op(p: Partial<OpRecord> & { workload: OpRecord['workload']; f: string; call: number; ret: number; outcome: Outcome }): OpRecord {
  return { kind: 'op', index: index++, process: index, node: 1, input: {}, output: null, ...p };
}

/** A refresh of `token` in family F returning `succ` (ok), invalid_grant (fail) or nothing (info). */
function rf(token: string, call: number, ret: number, result: string | 'refused' | 'info' | 'conn', extra: Record<string, unknown> = {}): OpRecord {
  const input = { family: 'F', token, ...extra };
  if (result === 'info') return op({ workload: 'refresh', f: 'refresh', call, ret, outcome: 'info', input, error: 'TIMEOUT' });
  if (result === 'refused') return op({ workload: 'refresh', f: 'refresh', call, ret, outcome: 'fail', input, output: { error: 'invalid_grant', description: 'x' }, error: '400 invalid_grant' });
  if (result === 'conn') return op({ workload: 'refresh', f: 'refresh', call, ret, outcome: 'fail', input, error: 'ECONNREFUSED' });
  return op({ workload: 'refresh', f: 'refresh', call, ret, outcome: 'ok', input, output: { access: 'a', refresh: result } });
}

const kinds = (v: ReturnType<typeof checkRefresh>): string[] => v.violations.map((x) => x.kind);

describe('refresh-token checker', () => {
  it('accepts concurrent redemptions within the grace window that return the same successor, and a chain of rotations', () => {
    const v = checkRefresh([rf('t0', 0, 50, 't1'), rf('t0', 1, 60, 't1'), rf('t0', 2, 70, 't1'), rf('t1', 80, 120, 't2'), rf('t2', 130, 150, 't3')]);
    assert.deepEqual(v.violations, []);
    assert.equal(v.valid, true);
    assert.equal(v.counts.graceReplays, 2);
  });

  it('finds a double spend: one token, two different successors', () => {
    assert.deepEqual(kinds(checkRefresh([rf('t0', 0, 50, 't1'), rf('t0', 1, 60, 'tX')])), ['double-spend']);
  });

  it('finds a token accepted after its successor was used, and a deliberate reuse accepted', () => {
    const v = checkRefresh([rf('t0', 0, 50, 't1'), rf('t1', 60, 80, 't2'), rf('t0', 100, 120, 't1', { reuse: true })]);
    assert.deepEqual(kinds(v).sort(), ['reuse-accepted', 'used-after-successor']);
  });

  it('finds a family still usable after a refused reuse', () => {
    const v = checkRefresh([rf('t0', 0, 50, 't1'), rf('t1', 60, 80, 't2'), rf('t0', 100, 120, 'refused', { reuse: true }), rf('t2', 130, 150, 't3')]);
    assert.deepEqual(kinds(v), ['not-revoked']);
  });

  it('a reuse that never reached a node (connection refused) revokes nothing', () => {
    const v = checkRefresh([rf('t0', 0, 50, 't1'), rf('t1', 60, 80, 't2'), rf('t0', 100, 101, 'conn', { reuse: true }), rf('t2', 130, 150, 't3')]);
    assert.deepEqual(v.violations, []);
  });

  it('accepts the revocation after a refused reuse', () => {
    const v = checkRefresh([rf('t0', 0, 50, 't1'), rf('t1', 60, 80, 't2'), rf('t0', 100, 120, 'refused', { reuse: true }), rf('t2', 130, 150, 'refused')]);
    assert.deepEqual(v.violations, []);
    assert.equal(v.counts.justifiedRefusals, 1);
  });

  it('finds an acknowledged rotation lost: the successor refused with no reuse anywhere', () => {
    const v = checkRefresh([rf('t0', 0, 50, 't1'), rf('t0', 1, 60, 't1'), rf('t1', 80, 120, 'refused')]);
    assert.deepEqual(kinds(v), ['unjustified-refusal']);
  });

  it('finds a refusal inside the grace window with the successor unused (a family revoked without a reuse)', () => {
    const v = checkRefresh([rf('t0', 0, 50, 't1'), rf('t0', 10, 300, 'refused')]);
    assert.deepEqual(kinds(v), ['unjustified-refusal']);
  });

  it('accepts a refusal of a request that may have been applied after the grace window', () => {
    const v = checkRefresh([rf('t0', 0, 50, 't1'), rf('t0', 10, GRACE_MS + 500, 'refused')]);
    assert.deepEqual(v.violations, []);
  });

  it('accepts a refusal once the successor may have been used, and after an indeterminate replay', () => {
    assert.deepEqual(checkRefresh([rf('t0', 0, 50, 't1'), rf('t1', 60, 90, 't2'), rf('t0', 20, 100, 'refused')]).violations, []);
    // The indeterminate redemption of t1 may have been applied long after the other one: a reuse
    // then, which revokes the family; t2 refused later is explained by it.
    assert.deepEqual(checkRefresh([rf('t0', 0, 50, 't1'), rf('t1', 60, 100, 't2'), rf('t1', 61, Infinity, 'info'), rf('t2', 5_000, 5_050, 'refused')]).violations, []);
  });

  it('a slow success is no revocation: a later refusal with nothing else to explain it is still found', () => {
    // The slow redemption of t0 returned the same successor: it was the rotation or its grace
    // replay, not a detected reuse; t1 refused afterwards is an acknowledged rotation lost.
    const v = checkRefresh([rf('t0', 0, GRACE_MS + 500, 't1'), rf('t0', 10, 50, 't1'), rf('t1', GRACE_MS + 600, GRACE_MS + 700, 'refused')]);
    assert.deepEqual(kinds(v), ['unjustified-refusal']);
  });
});

describe('authorization-code checker', () => {
  const redeem = (code: string, outcome: Outcome, node: number): OpRecord => op({ workload: 'code', f: 'redeem', call: 0, ret: 10, outcome, node, input: { code } });
  it('accepts one success per code, with refusals and indeterminate redemptions', () => {
    const v = checkCodes([redeem('c1', 'ok', 1), redeem('c1', 'fail', 2), redeem('c1', 'info', 3), redeem('c2', 'fail', 1)]);
    assert.equal(v.valid, true);
    assert.equal(v.counts.codesRedeemed, 1);
  });
  it('finds a code redeemed twice', () => {
    const v = checkCodes([redeem('c1', 'ok', 1), redeem('c1', 'ok', 2), redeem('c1', 'fail', 3)]);
    assert.equal(v.valid, false);
    assert.equal(v.violations[0]!.kind, 'code-redeemed-twice');
  });
});

describe('linearizability over the recorded KV history', () => {
  const kv = (f: string, input: Record<string, unknown>, call: number, ret: number, outcome: Outcome, output: Record<string, unknown> | null = null): OpRecord =>
    op({ workload: 'kv', f, call, ret, outcome, input, output });
  it('an indeterminate put may have happened later: a read that sees it is legal', () => {
    const v = checkKv([kv('put', { key: 'k', value: 'a' }, 0, 10, 'ok', {}), kv('put', { key: 'k', value: 'b' }, 20, 30, 'info'), kv('get', { key: 'k' }, 100, 110, 'ok', { value: 'b' })], { maxSteps: 1e6, deadlineMs: 5_000 });
    assert.equal(v.valid, true);
    assert.equal(v.indeterminate, 1);
  });
  it('a failed put did not happen: a read that sees it is illegal; a stale read after an acknowledged put is illegal', () => {
    assert.equal(checkKv([kv('put', { key: 'k', value: 'a' }, 0, 10, 'fail'), kv('get', { key: 'k' }, 100, 110, 'ok', { value: 'a' })], { maxSteps: 1e6, deadlineMs: 5_000 }).valid, false);
    assert.equal(checkKv([kv('put', { key: 'k', value: 'a' }, 0, 10, 'ok', {}), kv('get', { key: 'k' }, 100, 110, 'ok', { value: null })], { maxSteps: 1e6, deadlineMs: 5_000 }).valid, false);
  });
  it('a CAS records what it compared against', () => {
    const h = [kv('put', { key: 'k', value: 'a' }, 0, 10, 'ok', {}), kv('cas', { key: 'k', expected: 'a', value: 'b' }, 20, 30, 'ok', { ok: true, actual: 'a' }), kv('cas', { key: 'k', expected: 'a', value: 'c' }, 40, 50, 'ok', { ok: true, actual: 'a' })];
    assert.equal(checkKv(h, { maxSteps: 1e6, deadlineMs: 5_000 }).valid, false);
  });
});

describe('nemesis', () => {
  const ids = [1, 2, 3, 4, 5];
  it('majority side: halves, an isolated leader, a ring, a bridge, a deaf node, a killed node', () => {
    assert.deepEqual(majoritySide(ids, cutBetween([[1, 2], [3, 4, 5]]), new Set()), [3, 4, 5]);
    assert.deepEqual(majoritySide(ids, cutBetween([[3], [1, 2, 4, 5]]), new Set()), [1, 2, 4, 5]);
    const ring = [1, 2, 3, 4, 5].map((a, i, o) => [a, o[(i + 1) % o.length]!] as const);
    assert.deepEqual(majoritySide(ids, cutAllBut(ids, ring), new Set()), ids);
    assert.deepEqual(majoritySide(ids, cutBetween([[1, 2], [4, 5]]), new Set()), ids);
    assert.deepEqual(majoritySide(ids, [[1, 3], [2, 3], [4, 3], [5, 3]], new Set()), [1, 2, 4, 5]);
    assert.deepEqual(majoritySide(ids, [], new Set([2])), [1, 3, 4, 5]);
    assert.deepEqual(majoritySide(ids, cutBetween([[1, 2], [3, 4, 5]]), new Set([3])), []);
  });

  it('cuts: between groups both ways, and everything but the ring links', () => {
    assert.deepEqual(cutBetween([[1], [2, 3]]).sort(), [[1, 2], [1, 3], [2, 1], [3, 1]].sort());
    const ring = cutAllBut([1, 2, 3, 4], [[1, 2], [2, 3], [3, 4], [4, 1]]);
    assert.deepEqual(ring.sort(), [[1, 3], [2, 4], [3, 1], [4, 2]].sort());
  });

  it('the schedule is a function of the seed: same seed, same schedule; every kind dealt before one repeats', () => {
    const o = { ids, kinds: FAULT_KINDS, timeMs: 600_000, quietMs: [2_000, 5_000] as const, faultMs: [5_000, 10_000] as const };
    const seed = Date.now() % 100_000;
    process.stdout.write(`# schedule seed ${seed}\n`);
    const a = makeSchedule(new Rng(seed), o);
    assert.deepEqual(makeSchedule(new Rng(seed), o), a);
    assert.notDeepEqual(makeSchedule(new Rng(seed + 1), o), a);
    assert.deepEqual(new Set(a.slice(0, FAULT_KINDS.length).map((s) => s.fault)).size, FAULT_KINDS.length);
    const total = a.reduce((t, s) => t + s.quietMs + s.durationMs, 0);
    assert.ok(total <= o.timeMs, `schedule of ${total} ms exceeds ${o.timeMs}`);
    assert.ok(a.every((s) => s.durationMs >= 5_000 && s.durationMs <= 10_000 && s.order.length === 5));
  });

  it('--workload: all is the five workloads; lists; unknown names are refused', () => {
    assert.deepEqual(parseWorkloads('all'), ['kv', 'refresh', 'code', 'totp', 'audit']);
    assert.deepEqual(parseWorkloads('totp, audit'), ['totp', 'audit']);
    assert.throws(() => parseWorkloads('mfa'), /unknown workload "mfa"/);
    assert.throws(() => parseWorkloads(','), /names no workload/);
  });

  it('--nemesis: groups and kinds; unknown names are refused', () => {
    assert.ok(parseNemesis('all').includes('membership-partition'));
    assert.deepEqual(parseNemesis('kills,pause-leader').sort(), ['kill', 'kill-leader', 'pause-leader'].sort());
    assert.deepEqual(parseNemesis('kill'), ['kill']);
    assert.equal(parseNemesis('all').length, FAULT_KINDS.length);
    assert.throws(() => parseNemesis('flood'), /unknown nemesis "flood"/);
    assert.throws(() => parseNemesis('toString'), /unknown nemesis "toString"/);
    assert.throws(() => parseNemesis(','), /names no fault/);
  });
});

describe('availability', () => {
  it('counts answers on the majority side during a window, and the recovery after it', () => {
    const ops = [
      op({ workload: 'kv', f: 'get', call: 10, ret: 20, outcome: 'ok', node: 1 }),
      op({ workload: 'kv', f: 'put', call: 15, ret: 2_000, outcome: 'info', node: 2 }),
      op({ workload: 'kv', f: 'put', call: 16, ret: 30, outcome: 'fail', node: 3, error: 'ECONNREFUSED' }),
      op({ workload: 'refresh', f: 'refresh', call: 17, ret: 40, outcome: 'fail', node: 1, error: '400 invalid_grant' }),
      op({ workload: 'kv', f: 'get', call: 1_005, ret: 1_200, outcome: 'ok', node: 3 }),
    ];
    const v = checkAvailability(ops, [{ fault: 'partition-halves', start: 0, end: 1_000, majority: [1, 2], detail: {} }]);
    assert.equal(v.windows[0]!.operations, 3);
    assert.equal(v.windows[0]!.answered, 2);
    assert.equal(v.windows[0]!.recoveryMs, 200);
    // Node 3 served again 200 ms after the heal; nodes 1 and 2 got nothing afterwards.
    assert.deepEqual(v.windows[0]!.nodeRecoveryMs, { 1: null, 2: null, 3: 200 });
    assert.equal(v.windows[0]!.allNodesRecoveryMs, null);
    const healed = checkAvailability([...ops, op({ workload: 'kv', f: 'put', call: 1_100, ret: 1_400, outcome: 'ok', node: 1 }), op({ workload: 'kv', f: 'get', call: 1_010, ret: 1_050, outcome: 'ok', node: 2 })], [{ fault: 'kill', start: 0, end: 1_000, majority: [1, 2], detail: {} }]);
    assert.equal(healed.windows[0]!.allNodesRecoveryMs, 400);
    assert.equal(healed.maxAllNodesRecoveryMs, 400);
  });
});

describe('TOTP checker', () => {
  /** A code submission of user U (step s) answered `answer` (ok), or indeterminate ('info'). */
  const sub = (f: string, call: number, ret: number, answer: string | 'info', extra: Record<string, unknown> = {}, user = 'U'): OpRecord =>
    answer === 'info'
      ? op({ workload: 'totp', f, call, ret, outcome: 'info', input: { sub: user, ...extra }, error: 'TIMEOUT' })
      : op({ workload: 'totp', f, call, ret, outcome: 'ok', input: { sub: user, ...extra }, output: { answer } });
  const kindsOf = (v: ReturnType<typeof checkTotp>): string[] => v.violations.map((x) => x.kind);

  it('one acceptance per step with replays, throttled and indeterminate submissions is legal', () => {
    const v = checkTotp([
      sub('verify', 0, 50, 'accepted', { step: 10 }),
      sub('verify', 1, 60, 'replay', { step: 10 }),
      sub('verify', 2, 30, 'throttled', { step: 10 }),
      sub('verify', 100, 150, 'accepted', { step: 11 }),
      sub('verify', 101, 4_000, 'info', { step: 11 }),
    ]);
    assert.deepEqual(v.violations, []);
    assert.equal(v.counts.rounds, 2);
    assert.equal(v.counts.accepted, 2);
    assert.equal(v.counts.indeterminate, 1);
  });

  it('two acknowledged acceptances of one code are a violation; one acknowledged and an indeterminate one are not', () => {
    assert.deepEqual(kindsOf(checkTotp([sub('verify', 0, 50, 'accepted', { step: 10 }), sub('verify', 1, 60, 'accepted', { step: 10 })])), ['double-acceptance']);
    // The indeterminate submission may have been the acceptance, or not: no violation either way.
    assert.deepEqual(checkTotp([sub('verify', 0, 50, 'accepted', { step: 10 }), sub('verify', 1, 4_000, 'info', { step: 10 })]).violations, []);
    // The same step of two users is two codes.
    assert.deepEqual(checkTotp([sub('verify', 0, 50, 'accepted', { step: 10 }), sub('verify', 1, 60, 'accepted', { step: 10 }, 'V')]).violations, []);
  });

  it('an older step accepted after a newer one was is a violation', () => {
    assert.deepEqual(kindsOf(checkTotp([sub('verify', 0, 50, 'accepted', { step: 11 }), sub('verify', 60, 90, 'accepted', { step: 10 })])), ['old-step-accepted']);
    // Concurrent: either order is possible.
    assert.deepEqual(checkTotp([sub('verify', 0, 50, 'accepted', { step: 11 }), sub('verify', 10, 90, 'accepted', { step: 10 })]).violations, []);
  });

  it('wrong codes: the budget before the lock is derived from THROTTLE; one more evaluated is a violation', () => {
    const guesses = (n: number): OpRecord[] => Array.from({ length: n }, (_, i) => sub('guess', i * 100, i * 100 + 50, 'invalid'));
    assert.equal(INVALID_ANSWERS_BEFORE_LOCK, THROTTLE.lockAfterFailures - 1);
    const ok = checkTotp([...guesses(INVALID_ANSWERS_BEFORE_LOCK), sub('guess', 5_000, 5_050, 'locked'), sub('guess', 5_100, 5_150, 'locked')]);
    assert.deepEqual(ok.violations, []);
    assert.equal(ok.counts.lockouts, 1);
    assert.equal(ok.counts.maxInvalidBeforeLock, INVALID_ANSWERS_BEFORE_LOCK);
    assert.deepEqual(kindsOf(checkTotp([...guesses(INVALID_ANSWERS_BEFORE_LOCK + 1), sub('guess', 5_000, 5_050, 'locked')])), ['over-budget']);
    // Indeterminate guesses may have been counted: they never make a violation.
    assert.deepEqual(checkTotp([...guesses(INVALID_ANSWERS_BEFORE_LOCK), ...Array.from({ length: 5 }, (_, i) => sub('guess', 2_000 + i, 6_000, 'info'))]).violations, []);
  });

  it('after a node said "locked": the right code accepted, a guess evaluated or a password sign-in let through on any node is a violation', () => {
    const locked = sub('guess', 0, 50, 'locked');
    assert.deepEqual(kindsOf(checkTotp([locked, sub('probe', 100, 150, 'accepted', { step: 12 })])), ['accepted-while-locked']);
    assert.deepEqual(kindsOf(checkTotp([locked, sub('guess', 100, 150, 'invalid')])), ['accepted-while-locked']);
    assert.deepEqual(kindsOf(checkTotp([locked, sub('login-probe', 100, 150, 'prompt')])), ['accepted-while-locked']);
    // Refusals, and whatever was sent before the lock was seen, are fine.
    assert.deepEqual(checkTotp([locked, sub('guess', 10, 60, 'invalid'), sub('probe', 100, 150, 'locked', { step: 12 }), sub('login-probe', 100, 150, 'refused'), sub('probe', 200, 4_000, 'info', { step: 12 })]).violations, []);
    // A 429 of the sign-in page is no evidence of a lock (it says the same for a backoff).
    assert.deepEqual(checkTotp([sub('login', 0, 50, 'refused'), sub('verify', 100, 150, 'accepted', { step: 12 })]).violations, []);
  });

  it('reads the verification answer off the page', () => {
    const page = (status: number, html: string, location: string | null = null) => ({ status, html, location, title: null });
    assert.equal(classifyAnswer(page(303, '', 'http://127.0.0.1:9/cb?code=abc&state=x')), 'accepted');
    assert.equal(classifyAnswer(page(303, '', 'http://127.0.0.1:9/cb?error=access_denied&state=x')), null);
    assert.equal(classifyAnswer(page(303, '', '/login?interaction=x')), null);
    assert.equal(classifyAnswer(page(400, '<p>That code was already used. Wait for the next code from your app.</p>')), 'replay');
    assert.equal(classifyAnswer(page(400, '<p>That code is not valid. Check your app and try again.</p>')), 'invalid');
    assert.equal(classifyAnswer(page(429, '<p>Too many failed attempts: this account is locked. Try again after 04:00:00 UTC</p>')), 'locked');
    assert.equal(classifyAnswer(page(429, '<p>Too many failed attempts. Try again after 04:00:00 UTC.</p>')), 'throttled');
    assert.equal(classifyAnswer(page(400, '<h1>Invalid request</h1>')), null);
    const html = '<form method="post" action="/mfa/choose"><input type="hidden" name="method" value="x"></form><form method="post" action="/mfa/totp"><input type="hidden" name="csrf" value="c1"><input name="code"></form>';
    assert.deepEqual(formFields(html, '/mfa/totp'), { csrf: 'c1', code: '' });
    assert.equal(formFields(html, '/mfa/recovery'), null);
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const now = Date.now();
    const w = wrongCode(secret, now);
    for (const d of [-2, -1, 0, 1, 2]) assert.notEqual(w, totpCodeAt(secret, totpStep(now) + d));
  });
});

describe('audit checker', () => {
  const EPOCH = 1_800_000_000_000;
  /** A valid chain of these events (ts: history time, mapped to the leader's clock). */
  function chain(events: { type: AuditRecord['type']; t: number; sub?: string; details?: AuditRecord['details'] }[]): AuditRecord[] {
    const out: AuditRecord[] = [];
    let prev = GENESIS_HASH;
    events.forEach((e, i) => {
      const r = { seq: i + 1, ts: EPOCH + e.t, type: e.type, sub: e.sub ?? null, clientId: null, ip: null, details: e.details ?? {}, prev };
      const hash = recordHash(r);
      out.push({ ...r, hash });
      prev = hash;
    });
    return out;
  }
  const copy = (node: number, records: AuditRecord[], ok = true): AuditCopy => ({ node, records, verify: { ok }, error: null });
  const grant = (jti: string, call: number, ret: number): OpRecord => op({ workload: 'code', f: 'redeem', call, ret, outcome: 'ok', input: {}, output: { access: 'a', refresh: null, jti } });
  const rotate = (jti: string, call: number, ret: number): OpRecord => op({ workload: 'refresh', f: 'refresh', call, ret, outcome: 'ok', input: { family: 'F' }, output: { access: 'a', refresh: 'r', jti } });
  const totp = (answer: string, call: number, ret: number, step = 7): OpRecord => op({ workload: 'totp', f: 'verify', call, ret, outcome: 'ok', input: { sub: 'U', step }, output: { answer } });
  const kindsOf = (v: ReturnType<typeof checkAudit>): string[] => [...new Set(v.violations.map((x) => x.kind))].sort();

  const ops = [grant('j1', 0, 100), rotate('j2', 200, 300), rotate('j2', 210, 320), totp('accepted', 400, 500), totp('replay', 401, 510), totp('invalid', 600, 700)];
  const events: Parameters<typeof chain>[0] = [
    { type: 'login.succeeded', t: 10 },
    { type: 'token.issued', t: 50, details: { grant: 'authorization_code', family: 'F', jti: 'j1', refreshToken: false } },
    { type: 'token.refreshed', t: 250, details: { family: 'F', jti: 'j2' } },
    { type: 'mfa.verified', t: 450, sub: 'U', details: { factor: 'totp' } },
    { type: 'mfa.replay_refused', t: 460, sub: 'U', details: { factor: 'totp', step: 7, lastStep: 7 } },
    { type: 'mfa.failed', t: 650, sub: 'U', details: { factor: 'totp', reason: 'invalid', failures: 1 } },
  ];
  const records = chain(events);

  it('accepts identical valid chains holding every acknowledged action (a grace replay shares its rotation record); a node may hold more', () => {
    const longer = chain([...events, { type: 'logout', t: 900 }]);
    const v = checkAudit(ops, [copy(1, records), copy(2, longer), copy(3, records)], EPOCH);
    assert.deepEqual(v.violations, []);
    assert.equal(v.counts.expected, 6);
    assert.equal(v.counts.commonRecords, records.length);
    // Refused and indeterminate actions need no record.
    const more = [...ops, op({ workload: 'refresh', f: 'refresh', call: 0, ret: 5, outcome: 'info', input: {}, output: null }), op({ workload: 'code', f: 'redeem', call: 0, ret: 5, outcome: 'fail', input: {}, output: { error: 'invalid_grant' } })];
    assert.deepEqual(checkAudit(more, [copy(1, records)], EPOCH).violations, []);
  });

  it('finds an acknowledged action without its record', () => {
    const withoutRotation = chain([
      { type: 'login.succeeded', t: 10 },
      { type: 'token.issued', t: 50, details: { grant: 'authorization_code', family: 'F', jti: 'j1', refreshToken: false } },
      { type: 'mfa.verified', t: 450, sub: 'U', details: { factor: 'totp' } },
      { type: 'mfa.replay_refused', t: 460, sub: 'U', details: { factor: 'totp', step: 7, lastStep: 7 } },
      { type: 'mfa.failed', t: 650, sub: 'U', details: { factor: 'totp', reason: 'invalid', failures: 1 } },
    ]);
    const v = checkAudit(ops, [copy(1, withoutRotation)], EPOCH);
    assert.deepEqual(kindsOf(v), ['missing-record']);
    assert.match(v.violations[0]!.message, /token\.refreshed/);
    // Two acceptances need two records: one record written during the first cannot stand for a
    // second acceptance long after it.
    const twice = [...ops, totp('accepted', 5_000, 5_100, 8)];
    assert.deepEqual(kindsOf(checkAudit(twice, [copy(1, records)], EPOCH)), ['missing-record']);
    // A record written outside the action's window (beyond the clock slack) is not its record.
    const late = [totp('accepted', 400 + 3 * AUDIT_CLOCK_SLACK_MS, 500 + 3 * AUDIT_CLOCK_SLACK_MS)];
    assert.deepEqual(kindsOf(checkAudit(late, [copy(1, records)], EPOCH)), ['missing-record']);
  });

  it('finds nodes that disagree on the order', () => {
    const swapped = chain([
      { type: 'login.succeeded', t: 10 },
      { type: 'token.refreshed', t: 250, details: { family: 'F', jti: 'j2' } },
      { type: 'token.issued', t: 50, details: { grant: 'authorization_code', family: 'F', jti: 'j1', refreshToken: false } },
      { type: 'mfa.verified', t: 450, sub: 'U', details: { factor: 'totp' } },
      { type: 'mfa.replay_refused', t: 460, sub: 'U', details: { factor: 'totp', step: 7, lastStep: 7 } },
      { type: 'mfa.failed', t: 650, sub: 'U', details: { factor: 'totp', reason: 'invalid', failures: 1 } },
    ]);
    // Each copy is a valid chain holding every action: only the order differs.
    const v = checkAudit(ops, [copy(1, records), copy(2, swapped)], EPOCH);
    assert.deepEqual(kindsOf(v), ['diverged']);
  });

  it('finds a broken chain: an altered record, a broken link, a gap; and a node whose own verification fails', () => {
    const altered = records.map((r) => (r.seq === 3 ? { ...r, details: { ...r.details, family: 'G' } } : r));
    assert.equal(chainError(altered)?.seq, 3);
    assert.ok(kindsOf(checkAudit(ops, [copy(1, altered)], EPOCH)).includes('broken-chain'));
    // Re-hashed after the change: the next record's prev no longer matches.
    const rehashed = records.map((r) => (r.seq === 3 ? { ...r, details: { ...r.details, family: 'G' }, hash: recordHash({ ...r, details: { ...r.details, family: 'G' } }) } : r));
    assert.deepEqual(chainError(rehashed), { seq: 4, why: "its prev is not record 3's hash" });
    assert.deepEqual(chainError(records.filter((r) => r.seq !== 2)), { seq: 2, why: 'records 2..2 are missing' });
    assert.equal(chainError(records), null);
    assert.deepEqual(kindsOf(checkAudit(ops, [copy(1, records, false)], EPOCH)), ['verify-failed']);
    assert.deepEqual(kindsOf(checkAudit(ops, [copy(1, records), { node: 2, records: null, verify: null, error: 'timed out' }], EPOCH)), ['unreadable']);
  });
});
