// Issue 15's targets are judged from measurements only: each comparison both ways, and a missing
// measurement is "not judged", never met.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeTargets } from './targets.ts';
import type { SizeFacts } from './targets.ts';

const size = (records: number, o: Partial<SizeFacts['sustained'] & object> = {}, rest: Partial<SizeFacts> = {}): SizeFacts => ({
  records,
  sustained: { writesPerSec: 1000, p99Ms: 20, termChanges: 0, leaderChanges: 0, timeouts: 0, ...o },
  learnerCatchUpSeconds: 10,
  maxProcessRssMb: 200,
  ...rest,
});

const byName = (r: ReturnType<typeof computeTargets>): Record<string, { measured: unknown; met: boolean | null }> => Object.fromEntries(r.targets.map((t) => [t.target.split(' ')[0] + ' ' + t.target.split(' ')[1], t]));

test('all met: the ratios are the largest size against the smallest', () => {
  const r = computeTargets([size(10_000), size(100_000, { p99Ms: 25, writesPerSec: 950 }), size(1_000_000, { p99Ms: 30, writesPerSec: 900 })]);
  assert.equal(r.largest, 1_000_000);
  assert.equal(r.smallest, 10_000);
  assert.equal(r.targets.length, 6);
  for (const t of r.targets) assert.equal(t.met, true, t.target);
  const t = byName(r);
  assert.equal(t['p99 <=']!.measured, 1.5);
  assert.equal(t['throughput >=']!.measured, 0.9);
});

test('each target fails on its own measurement', () => {
  const r = computeTargets([size(10_000), size(1_000_000, { p99Ms: 30.1, writesPerSec: 899, termChanges: 3, timeouts: 90 }, { learnerCatchUpSeconds: 60.5, maxProcessRssMb: 301 })]);
  for (const t of r.targets) assert.equal(t.met, false, t.target);
  const t = byName(r);
  assert.equal(t['zero leader']!.measured, 3);
  assert.equal(t['zero timeouts']!.measured, 90);
  assert.equal(t['RSS of']!.measured, 301);
});

test('leader changes seen without a term change still fail the target', () => {
  const r = computeTargets([size(10_000), size(20_000, { leaderChanges: 1 })]);
  assert.equal(byName(r)['zero leader']!.met, false);
});

test('a missing measurement is not judged, never met', () => {
  const r = computeTargets([size(10_000), size(1_000_000, {}, { sustained: null, learnerCatchUpSeconds: null, maxProcessRssMb: null })]);
  for (const t of r.targets) {
    assert.equal(t.met, null, t.target);
    assert.ok(t.why && t.why.length > 0);
  }
  const one = computeTargets([size(10_000)]);
  assert.equal(byName(one)['p99 <=']!.met, null);
  assert.equal(byName(one)['zero leader']!.met, true, 'one size still judges the absolute targets');
  assert.deepEqual(computeTargets([]).targets, []);
});
