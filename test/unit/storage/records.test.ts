import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logKey, parseLogKey, parseStateKey, printableKey, stateGenEnd, stateGenPrefix, stateKey, MAX_STATE_GEN } from '../../../src/storage/keys.ts';
import { decodeConfState, decodeEntry, decodeHardState, encodeConfState, encodeEntry, encodeHardState, frameValue, unframeValue } from '../../../src/storage/records.ts';
import { conf, ent } from './helpers.ts';

test('log keys sort in numeric order and round-trip', () => {
  const idx = [0, 1, 2, 255, 256, 65_535, 65_536, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
  const keys = idx.map(logKey);
  const sorted = [...keys].sort((a, b) => Buffer.compare(a, b));
  assert.deepEqual(sorted.map((k) => parseLogKey(k)), idx);
  assert.equal(printableKey(logKey(42)), 'l/42');
  // The layout on disk: the prefix, then u64 big-endian (as DataView.setBigUint64 writes it).
  for (const i of [...idx, 2 ** 32 - 1, 2 ** 32 + 1, 0x1234_5678_9abc]) {
    const want = new Uint8Array(10);
    want.set(logKey(0).subarray(0, 2), 0);
    new DataView(want.buffer).setBigUint64(2, BigInt(i));
    assert.deepEqual(logKey(i), want, `logKey(${i})`);
  }
  assert.equal(parseLogKey(new TextEncoder().encode('m/hardState')), null);
});

test('state keys: generations are disjoint ranges, keys round-trip', () => {
  const k = stateKey(3, 'users', 'alice');
  assert.deepEqual(parseStateKey(k), { gen: 3, keyspace: 'users', key: new TextEncoder().encode('alice') });
  assert.equal(printableKey(k), 's/3/users/alice');
  assert.equal(printableKey(stateKey(3, 'users', new Uint8Array([0, 255]))), 's/3/users/0x00ff');
  for (const gen of [0, 3, 255, 256, MAX_STATE_GEN]) {
    const inside = stateKey(gen, 'zz', new Uint8Array([255, 255, 255]));
    assert.ok(Buffer.compare(stateGenPrefix(gen), inside) <= 0);
    assert.ok(Buffer.compare(inside, stateGenEnd(gen)) < 0);
    if (gen < MAX_STATE_GEN) assert.ok(Buffer.compare(stateGenEnd(gen), stateKey(gen + 1, 'a', '')) <= 0);
  }
  assert.throws(() => stateKey(0, 'has/slash', 'k'), /keyspace/);
  assert.throws(() => stateKey(0, '', 'k'), /keyspace/);
});

test('the record checksum catches every single-bit flip and a value moved to another key', () => {
  const key = logKey(7);
  const framed = frameValue(key, encodeEntry(ent(7, 3, 'payload')));
  assert.deepEqual(decodeEntry(7, unframeValue(key, framed)!), ent(7, 3, 'payload'));
  for (let bit = 0; bit < framed.length * 8; bit++) {
    const damaged = framed.slice();
    damaged[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(unframeValue(key, damaged), null, `bit ${bit} flip not detected`);
  }
  assert.equal(unframeValue(logKey(8), framed), null);
  assert.equal(unframeValue(key, framed.subarray(0, 3)), null);
});

test('hard state and conf state codecs round-trip', () => {
  assert.deepEqual(decodeHardState(encodeHardState({ term: 9, vote: 2, commit: 100 })), { term: 9, vote: 2, commit: 100 });
  const cs = { ...conf(1, 2, 3), learners: [4], votersOutgoing: [1, 2], learnersNext: [3], autoLeave: true };
  assert.deepEqual(decodeConfState(encodeConfState(cs)), cs);
});
