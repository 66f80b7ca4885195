import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MfaLevel, SweepRun, UsersRun } from './summary.ts';
import { humanTable, summarize } from './summary.ts';

function level(o: Partial<MfaLevel> & Pick<MfaLevel, 'factor' | 'concurrency'> & { p99?: number }): MfaLevel {
  const ok = o.ok ?? 1000;
  return {
    measuredSeconds: 10,
    ok,
    requestsPerSec: ok / 10,
    latency: { count: ok, minMs: 1, meanMs: 5, p50Ms: 4, p90Ms: 8, p99Ms: o.p99 ?? 12, p999Ms: 30, maxMs: 40, clamped: 0 },
    errors: {},
    errorCount: 0,
    ranDryAtS: null,
    warmup: { ok: 10, errors: {} },
    refusals: {},
    prepared: 3000,
    prepareSeconds: 20,
    ...o,
  };
}

function open(o: { ok?: number; p99?: number; errorCount?: number }) {
  const ok = o.ok ?? 200;
  return {
    scheduled: ok + (o.errorCount ?? 0),
    measuredSeconds: 60,
    offeredPerSec: (ok + (o.errorCount ?? 0)) / 60,
    ok,
    ratePerSec: ok / 60,
    latency: { count: ok, minMs: 3, meanMs: 6, p50Ms: 5, p90Ms: 9, p99Ms: o.p99 ?? 15, p999Ms: 18, maxMs: 19, clamped: 0 },
    errors: (o.errorCount ? { 'HTTP 429': o.errorCount } : {}) as Record<string, number>,
    errorCount: o.errorCount ?? 0,
    maxInFlight: 3,
    maxSendLagMs: 1,
    warmup: { sent: 5, ok: 5, errors: {} },
    refusals: {},
    prepared: 300,
    prepareSeconds: 4,
  };
}

const users = (o: { users?: number; ok?: number; p99?: number; errorCount?: number } = {}): UsersRun => ({ ...open(o), users: o.users ?? 100 });
const rate = (r: number, o: { p99?: number; errorCount?: number; ok?: number } = {}): SweepRun => ({ ...open(o), targetRatePerSec: r });

test('the target is judged on the users model: 100 users, p99 under 20 ms, no error', () => {
  const s = summarize({ users: users({ p99: 19.9 }), sweep: null, capacity: [level({ factor: 'totp', concurrency: 100, p99: 900 })] }, [100]);
  assert.equal(s.targets.totpP99Under20ms, true, 'a saturated closed loop does not decide the target');
  assert.equal(s.users?.p99Ms, 19.9);
  assert.equal(s.users?.users, 100);
  assert.equal(s.capacity?.totp?.p99Ms, 900);
  assert.match(s.targetNotes.join('\n'), /judged on the users model/);
  assert.match(s.targetNotes.join('\n'), /measures capacity \(100 verifications\/s\), not the target.*more than 5000 verifications\/s/);
  assert.match(humanTable(s), /: MET/);
});

test('not met: p99 at 20 ms, a failed verification, another number of users, nothing succeeded, not measured', () => {
  const judge = (u: UsersRun | null) => summarize({ users: u, sweep: null, capacity: null }, [100]);
  assert.equal(judge(users({ p99: 20 })).targets.totpP99Under20ms, false);
  const err = judge(users({ errorCount: 1 }));
  assert.equal(err.targets.totpP99Under20ms, false);
  assert.match(err.targetNotes.join('\n'), /1 verifications failed/);
  const fifty = judge(users({ users: 50, p99: 1 }));
  assert.equal(fifty.targets.totpP99Under20ms, false);
  assert.match(fifty.targetNotes.join('\n'), /50 users, not 100/);
  assert.equal(judge(users({ ok: 0 })).targets.totpP99Under20ms, false);
  const none = judge(null);
  assert.equal(none.targets.totpP99Under20ms, false);
  assert.match(none.targetNotes[0]!, /not measured/);
  assert.match(humanTable(none), /users +not measured/);
  assert.match(humanTable(none), /NOT MET/);
});

test('sweep: the capacity at the SLO is the highest rate below which every rate stayed under 20 ms', () => {
  const s = summarize({ users: null, sweep: [rate(100, { p99: 35 }), rate(10, { p99: 6 }), rate(25, { p99: 9 }), rate(50, { p99: 18 }), rate(200, { p99: 15 })], capacity: null }, []);
  assert.deepEqual(
    s.sweep?.levels.map((l) => [l.targetRatePerSec, l.underSlo]),
    [
      [10, true],
      [25, true],
      [50, true],
      [100, false],
      [200, true],
    ],
  );
  assert.equal(s.sweep?.capacityAtSloPerSec, 50, '200/s passing after 100/s failed is noise, not capacity');
  assert.equal(summarize({ users: null, sweep: [rate(10, { errorCount: 1 })], capacity: null }, []).sweep?.capacityAtSloPerSec, null, 'an error fails the rate');
  assert.equal(summarize({ users: null, sweep: [rate(10, { ok: 0 })], capacity: null }, []).sweep?.capacityAtSloPerSec, null);
  assert.match(humanTable(s), /highest rate with p99 < 20 ms: 50\/s/);
  assert.equal(s.capacity, null);
});

test('capacity: the closed-loop level at 100 in flight, else the highest one', () => {
  const s = summarize({ users: null, sweep: null, capacity: [level({ factor: 'totp', concurrency: 10 }), level({ factor: 'totp', concurrency: 100 }), level({ factor: 'webauthn', concurrency: 100, ok: 500 })] }, [10, 100]);
  assert.equal(s.capacity?.concurrency, 100);
  assert.equal(s.capacity?.webauthn?.reqPerSec, 50);
  const at50 = summarize({ users: null, sweep: null, capacity: [level({ factor: 'totp', concurrency: 50, p99: 1, ranDryAtS: 4.2 })] }, [16, 50]);
  assert.equal(at50.capacity?.concurrency, 50);
  assert.equal(at50.capacity?.totp?.ranDryAtS, 4.2);
  assert.equal(at50.capacity?.webauthn, null);
  assert.match(humanTable(at50), /ran dry at 4.2 s/);
  assert.match(humanTable(at50), /webauthn +not measured/);
});
