import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packValue } from '../../../src/state/command.ts';
import { T0, domainHarness } from './helpers.ts';
import { DATA_KEYS_KEYSPACE } from '../../../src/state/crypto-keys.ts';
import { RING_KEY } from '../../../src/state/keys.ts';
import type { DataKeyRing, WrappedDataKey } from '../../../src/state/oauth-ops.ts';

function harness() {
  const h = domainHarness('crypto');
  const ring = (): DataKeyRing | null => {
    const r = h.sm.read('crypto', 'ring', {});
    if (!r.ok) assert.fail(r.message);
    const v = r.value as DataKeyRing | null;
    return v === null ? null : { ...v, keys: v.keys.map((k) => ({ ...k, wrapped: new Uint8Array(k.wrapped) })) };
  };
  return { st: h.st, run: h.run, refused: h.refused, ring };
}

const dk = (id: string, masterKid = 'm1', fill = 1, createdAt = T0): WrappedDataKey => ({ id, masterKid, wrapped: new Uint8Array(60).fill(fill), createdAt });

/** A ring with two keys, planted directly (the domain only ever creates one; more come with data-key rotation later). */
function twoKeyRing(h: ReturnType<typeof harness>): DataKeyRing {
  const ring: DataKeyRing = { version: 3, activeId: 'd2', keys: [dk('d1', 'm1', 1, T0), dk('d2', 'm1', 2, T0 + 1)] };
  h.st.m.set(`${DATA_KEYS_KEYSPACE}\u0000${RING_KEY}`, packValue(ring));
  return ring;
}

test('init creates the ring (stored as exactly packValue(DataKeyRing)) and is idempotent', () => {
  const h = harness();
  assert.equal(h.ring(), null);
  assert.deepEqual(h.run('init', { key: dk('d1') }), { ok: true, value: { created: true } });
  const expected: DataKeyRing = { version: 1, activeId: 'd1', keys: [dk('d1')] };
  assert.deepEqual(h.st.get(DATA_KEYS_KEYSPACE, RING_KEY), packValue(expected));
  assert.deepEqual(h.ring(), expected);
  const before = h.st.snapshot();
  assert.deepEqual(h.run('init', { key: dk('d9') }), { ok: true, value: { created: false } });
  assert.deepEqual(h.st.snapshot(), before);
});

test('rewrap replaces every wrapping, keeps ids, order, count, createdAt and the active key', () => {
  const h = harness();
  twoKeyRing(h);
  // Given in another order, with other createdAt values: the ring's own are kept.
  assert.deepEqual(h.run('rewrap', { expectVersion: 3, keys: [dk('d2', 'm2', 8, 5), dk('d1', 'm2', 9, 5)] }), { ok: true, value: { version: 4 } });
  assert.deepEqual(h.ring(), { version: 4, activeId: 'd2', keys: [dk('d1', 'm2', 9, T0), dk('d2', 'm2', 8, T0 + 1)] });
});

test('rewrap refusals: no ring, version conflict, missing, unknown or duplicate ids, bad keys', () => {
  const h = harness();
  h.refused('rewrap', { expectVersion: 1, keys: [dk('d1')] }, 'NOT_FOUND');
  twoKeyRing(h);
  h.refused('rewrap', { expectVersion: 2, keys: [dk('d1', 'm2'), dk('d2', 'm2')] }, 'CONFLICT', /version 3/);
  h.refused('rewrap', { expectVersion: 3, keys: [dk('d1', 'm2')] }, 'INVALID_ARGUMENT', /2 keys, not 1/);
  h.refused('rewrap', { expectVersion: 3, keys: [dk('d1', 'm2'), dk('d2', 'm2'), dk('d3', 'm2')] }, 'INVALID_ARGUMENT', /2 keys, not 3/);
  h.refused('rewrap', { expectVersion: 3, keys: [dk('d1', 'm2'), dk('d3', 'm2')] }, 'INVALID_ARGUMENT', /missing key d2/);
  h.refused('rewrap', { expectVersion: 3, keys: [dk('d1', 'm2'), dk('d1', 'm2')] }, 'INVALID_ARGUMENT', /twice/);
  h.refused('rewrap', { expectVersion: 3, keys: [dk('d1', 'm2'), { ...dk('d2', 'm2'), wrapped: new Uint8Array(4097) }] }, 'INVALID_ARGUMENT', /keys\[1\]\.wrapped/);
  h.refused('rewrap', { expectVersion: 3, keys: new Array(101).fill(dk('d1')) }, 'INVALID_ARGUMENT', /more than 100/);
  h.refused('rewrap', { expectVersion: 3, keys: 'd1' }, 'INVALID_ARGUMENT', /keys must be an array/);
});

test('WrappedDataKey validation on init', () => {
  const h = harness();
  h.refused('init', { key: { ...dk('d1'), id: '' } }, 'INVALID_ARGUMENT', /key\.id/);
  h.refused('init', { key: { ...dk('d1'), id: 'x'.repeat(129) } }, 'INVALID_ARGUMENT', /key\.id/);
  h.refused('init', { key: { ...dk('d1'), masterKid: 7 } }, 'INVALID_ARGUMENT', /key\.masterKid/);
  h.refused('init', { key: { ...dk('d1'), wrapped: 'abc' } }, 'INVALID_ARGUMENT', /key\.wrapped/);
  h.refused('init', { key: { ...dk('d1'), createdAt: -5 } }, 'INVALID_ARGUMENT', /key\.createdAt/);
  h.refused('init', { key: { ...dk('d1'), key: new Uint8Array(32) } }, 'INVALID_ARGUMENT', /unknown field key/);
  h.refused('init', {}, 'INVALID_ARGUMENT', /key must be an object/);
  h.refused('rotate', {}, 'UNKNOWN_OPERATION');
  assert.equal(h.ring(), null);
});
