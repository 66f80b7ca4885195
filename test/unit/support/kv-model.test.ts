import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kvModel } from '../../support/kv-model.ts';
import type { KvOperation } from '../../support/kv-model.ts';

test('get accepts exactly the current value, absent as null, and leaves the state alone', () => {
  assert.deepEqual(kvModel.step(null, { op: 'get', key: 'k' }, { op: 'get', value: null }), { ok: true, next: null });
  assert.equal(kvModel.step(null, { op: 'get', key: 'k' }, { op: 'get', value: '' }).ok, false);
  assert.equal(kvModel.step('', { op: 'get', key: 'k' }, { op: 'get', value: null }).ok, false);
  assert.deepEqual(kvModel.step('v', { op: 'get', key: 'k' }, { op: 'get', value: 'v' }), { ok: true, next: 'v' });
  assert.equal(kvModel.step('v', { op: 'get', key: 'k' }, { op: 'get', value: 'w' }).ok, false);
});

test('put always succeeds and overwrites', () => {
  assert.deepEqual(kvModel.step(null, { op: 'put', key: 'k', value: 'a' }, { op: 'put' }), { ok: true, next: 'a' });
  assert.deepEqual(kvModel.step('a', { op: 'put', key: 'k', value: 'b' }, { op: 'put' }), { ok: true, next: 'b' });
});

test('cas swaps only from the expected value and reports the value it compared against', () => {
  const swapFromAbsent = { op: 'cas', key: 'k', expected: null, value: 'a' } as const;
  assert.deepEqual(kvModel.step(null, swapFromAbsent, { op: 'cas', ok: true, actual: null }), { ok: true, next: 'a' });
  // Against '' (present but empty) the absent-expectation fails.
  assert.deepEqual(kvModel.step('', swapFromAbsent, { op: 'cas', ok: false, actual: '' }), { ok: true, next: '' });
  assert.equal(kvModel.step('', swapFromAbsent, { op: 'cas', ok: true, actual: '' }).ok, false);
  const swapAB = { op: 'cas', key: 'k', expected: 'a', value: 'b' } as const;
  assert.deepEqual(kvModel.step('a', swapAB, { op: 'cas', ok: true, actual: 'a' }), { ok: true, next: 'b' });
  assert.equal(kvModel.step('a', swapAB, { op: 'cas', ok: false, actual: 'a' }).ok, false);
  assert.deepEqual(kvModel.step('c', swapAB, { op: 'cas', ok: false, actual: 'c' }), { ok: true, next: 'c' });
  assert.equal(kvModel.step('c', swapAB, { op: 'cas', ok: false, actual: 'a' }).ok, false, 'a failed cas must report the real value');
});

test('append concatenates onto the value, absent counting as empty, and returns the result', () => {
  assert.deepEqual(kvModel.step(null, { op: 'append', key: 'k', value: 'x' }, { op: 'append', value: 'x' }), { ok: true, next: 'x' });
  assert.deepEqual(kvModel.step('ab', { op: 'append', key: 'k', value: 'c' }, { op: 'append', value: 'abc' }), { ok: true, next: 'abc' });
  assert.equal(kvModel.step('ab', { op: 'append', key: 'k', value: 'c' }, { op: 'append', value: 'c' }).ok, false);
});

test('an unknown output is accepted and the state moves as the operation dictates', () => {
  assert.deepEqual(kvModel.step('a', { op: 'get', key: 'k' }, undefined), { ok: true, next: 'a' });
  assert.deepEqual(kvModel.step('a', { op: 'cas', key: 'k', expected: 'a', value: 'b' }, undefined), { ok: true, next: 'b' });
  assert.deepEqual(kvModel.step('z', { op: 'cas', key: 'k', expected: 'a', value: 'b' }, undefined), { ok: true, next: 'z' });
  assert.deepEqual(kvModel.step('a', { op: 'append', key: 'k', value: 'b' }, undefined), { ok: true, next: 'ab' });
});

test('an output of the wrong kind is a recording bug and throws', () => {
  assert.throws(() => kvModel.step(null, { op: 'get', key: 'k' }, { op: 'put' }), /output of kind 'put' recorded for a 'get'/);
});

test('hash keeps absent distinct from every string', () => {
  const states = [null, '', 'N', 'S', 'SN', 'a'];
  assert.equal(new Set(states.map((s) => kvModel.hash(s))).size, states.length);
});

test('partition splits by key in order of first appearance and drops indeterminate gets', () => {
  const h: KvOperation[] = [
    { clientId: 1, input: { op: 'put', key: 'b', value: '1' }, call: 0, return: 1, output: { op: 'put' } },
    { clientId: 2, input: { op: 'get', key: 'a' }, call: 0, return: 2, output: { op: 'get', value: null } },
    { clientId: 3, input: { op: 'get', key: 'b' }, call: 1, return: Infinity, output: undefined },
    { clientId: 4, input: { op: 'append', key: 'b', value: 'x' }, call: 2, return: Infinity, output: undefined },
    { clientId: 1, input: { op: 'get', key: 'a' }, call: 3, return: 4, output: { op: 'get', value: null } },
  ];
  const parts = kvModel.partition!(h);
  assert.deepEqual(
    parts.map((p) => p.map((o) => o.clientId)),
    [
      [1, 4],
      [2, 1],
    ],
  );
});

test('describe names the operation, key, arguments and result', () => {
  const d = kvModel.describe!;
  assert.equal(d({ op: 'get', key: 'k' }, { op: 'get', value: null }), 'get "k" => nil');
  assert.equal(d({ op: 'put', key: 'k', value: 'v' }, { op: 'put' }), 'put "k" "v" => ok');
  assert.equal(d({ op: 'cas', key: 'k', expected: null, value: 'v' }, { op: 'cas', ok: false, actual: 'w' }), 'cas "k" nil -> "v" => failed (actual "w")');
  assert.equal(d({ op: 'append', key: 'k', value: 'v' }, undefined), 'append "k" "v" => ?');
});
