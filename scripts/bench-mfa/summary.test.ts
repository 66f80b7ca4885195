import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MfaLevel } from './summary.ts';
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

test('the target: TOTP at 100 with p99 under 20 ms, no error, not run dry', () => {
  const s = summarize([level({ factor: 'totp', concurrency: 10, p99: 1 }), level({ factor: 'totp', concurrency: 100, p99: 19.9 }), level({ factor: 'webauthn', concurrency: 100, ok: 500 })], [10, 100]);
  assert.equal(s.concurrency, 100);
  assert.equal(s.totp?.p99Ms, 19.9);
  assert.equal(s.webauthn?.reqPerSec, 50);
  assert.equal(s.targets.totpP99Under20ms, true);
  assert.deepEqual(s.targetNotes, []);
  assert.match(humanTable(s), /MET/);
});

test('not met: p99 at 20 ms, a failed request, a level that ran dry, no level at 100', () => {
  assert.equal(summarize([level({ factor: 'totp', concurrency: 100, p99: 20 })], [100]).targets.totpP99Under20ms, false);
  const err = summarize([level({ factor: 'totp', concurrency: 100, errorCount: 1 })], [100]);
  assert.equal(err.targets.totpP99Under20ms, false);
  assert.match(err.targetNotes[0]!, /1 TOTP requests failed/);
  const dry = summarize([level({ factor: 'totp', concurrency: 100, ranDryAtS: 4.2 })], [100]);
  assert.equal(dry.targets.totpP99Under20ms, false);
  assert.match(dry.targetNotes[0]!, /ran out 4.2 s/);
  const at50 = summarize([level({ factor: 'totp', concurrency: 50, p99: 1 })], [16, 50]);
  assert.equal(at50.concurrency, 50, 'the highest level is reported');
  assert.equal(at50.totp?.p99Ms, 1);
  assert.equal(at50.targets.totpP99Under20ms, false);
  const none = summarize([level({ factor: 'webauthn', concurrency: 100 })], [100]);
  assert.equal(none.totp, null);
  assert.equal(none.targets.totpP99Under20ms, false);
  assert.match(humanTable(none), /totp +not measured/);
});
