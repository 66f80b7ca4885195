import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../../../src/raft/memory-storage.ts';
import { RaftError } from '../../../src/raft/errors.ts';
import type { Entry } from '../../../src/raft/types.ts';

const ent = (index: number, term: number, data = ''): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(data) });

test('append, truncate a conflicting suffix, read back', () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
  assert.equal(s.lastIndex(), 3);
  s.append([ent(3, 2), ent(4, 2)]);
  assert.deepEqual(s.entries(1, 5, Infinity).map((e) => [e.index, e.term]), [[1, 1], [2, 1], [3, 2], [4, 2]]);
  s.append([ent(2, 3)]);
  assert.equal(s.lastIndex(), 2);
  assert.equal(s.term(2), 3);
});

test('compaction keeps the term of the compacted index and refuses reads behind it', () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 2)]);
  s.compact(2);
  assert.equal(s.firstIndex(), 3);
  assert.equal(s.term(2), 1);
  assert.throws(() => s.term(1), (e: unknown) => e instanceof RaftError && e.code === 'COMPACTED');
  assert.throws(() => s.entries(2, 3, Infinity), (e: unknown) => e instanceof RaftError && e.code === 'COMPACTED');
  assert.throws(() => s.entries(3, 5, Infinity), (e: unknown) => e instanceof RaftError && e.code === 'UNAVAILABLE');
});

test('entries honours maxBytes but returns at least one entry', () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1, 'x'.repeat(100)), ent(2, 1, 'y'.repeat(100))]);
  assert.equal(s.entries(1, 3, 1).length, 1);
  assert.equal(s.entries(1, 3, 1000).length, 2);
});

test('a gap in appended entries is an invariant failure', () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1)]);
  assert.throws(() => s.append([ent(3, 1)]), /gap/);
});
