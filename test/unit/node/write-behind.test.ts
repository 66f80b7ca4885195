import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WriteBehind } from '../../../src/node/write-behind.ts';

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const s = (v: Uint8Array | undefined): string | undefined => (v === undefined ? undefined : new TextDecoder().decode(v));

test('writes in flight shadow the store until their write is released; a later write keeps its values', () => {
  const store = new Map<string, Uint8Array>([['ks/a', b('disk-a')], ['ks/b', b('disk-b')]]);
  const view = new WriteBehind((ks, k) => store.get(`${ks}/${k}`));
  assert.equal(s(view.get('ks', 'a')), 'disk-a');
  const w1c = { puts: [['ks', 'a', b('w1-a')] as const], dels: [['ks', 'b'] as const] };
  const w1 = view.record(w1c);
  assert.equal(s(view.get('ks', 'a')), 'w1-a');
  assert.equal(view.get('ks', 'b'), undefined, 'a delete in flight hides the stored value');
  const w2c = { puts: [['ks', 'a', b('w2-a')] as const], dels: [] };
  const w2 = view.record(w2c);
  assert.equal(s(view.get('ks', 'a')), 'w2-a', 'the newest write in flight wins');
  // Write 1 lands: the store has its values; a stays shadowed by write 2, b is the store's again.
  store.set('ks/a', b('w1-a'));
  store.delete('ks/b');
  view.release(w1, w1c);
  assert.equal(s(view.get('ks', 'a')), 'w2-a');
  assert.equal(view.get('ks', 'b'), undefined);
  assert.equal(view.size, 1);
  store.set('ks/a', b('w2-a'));
  view.release(w2, w2c);
  assert.equal(view.size, 0, 'nothing shadowed once every write is done');
  assert.equal(s(view.get('ks', 'a')), 'w2-a');
});
