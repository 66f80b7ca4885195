// The write-load checker on its own (no processes): it must catch every kind of wrong history the
// cluster tests rely on it for, or their "no acknowledged write lost" would assert nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProcessCluster } from './harness.ts';
import { WriteLoad } from './load.ts';

function loadWith(acked: number[], attempted: number[]): WriteLoad {
  // check() reads no cluster; the load is never started.
  const l = new WriteLoad(null as unknown as ProcessCluster, { writers: 1, targets: () => [], requestTimeoutMs: 1 });
  l.acked[0]!.push(...acked);
  for (const s of attempted) l.attempted[0]!.add(s);
  return l;
}

test('WriteLoad.check accepts a correct history, with or without unacknowledged writes applied', () => {
  const l = loadWith([1, 2, 3], [1, 2, 3, 4, 5]);
  assert.equal(l.check(0, '1;2;3;'), null);
  assert.equal(l.check(0, '1;2;3;4;'), null);
  // 4 timed out (not acknowledged) and was applied after 5: allowed, nothing was promised about 4.
  assert.equal(l.check(0, '1;2;3;5;4;'), null);
});

test('WriteLoad.check catches lost, duplicated, phantom and reordered writes', () => {
  const l = loadWith([1, 2, 3], [1, 2, 3, 4]);
  assert.match(l.check(0, '1;3;') ?? '', /1 acknowledged writes missing \(first 2\)/);
  assert.match(l.check(0, null) ?? '', /3 acknowledged writes missing/);
  assert.match(l.check(0, '1;1;2;3;') ?? '', /seq 1 applied twice/);
  assert.match(l.check(0, '1;2;3;9;') ?? '', /seq 9 was never sent/);
  assert.match(l.check(0, '2;1;3;') ?? '', /acknowledged seq 1 applied after seq 2/);
  // 3 was acknowledged before 4 was sent, so 4 cannot precede it.
  assert.match(l.check(0, '1;2;4;3;') ?? '', /acknowledged seq 3 applied after seq 4/);
});
