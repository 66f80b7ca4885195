// The Jepsen suite's pure parts: the checkers on hand-made histories (each violation they must
// find, and the legal histories they must accept), the majority-side rule, the schedule's
// determinism, and the nft cut sets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../sim/rng.ts';
import { GRACE_MS, checkCodes, checkRefresh } from './auth.ts';
import { checkAvailability } from './availability.ts';
import type { OpRecord, Outcome } from './history.ts';
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

  it('--nemesis: groups and kinds; unknown names are refused', () => {
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
