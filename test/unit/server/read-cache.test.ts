import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachePublisher, ReadCache, ReadCacheError } from '../../../src/server/read-cache.ts';
import type { CacheUpdate } from '../../../src/server/read-cache.ts';

test('a table is replaced by a newer version and never rolled back by an older one', () => {
  const c = new ReadCache();
  assert.equal(c.version('status'), 0);
  assert.equal(c.get('status', 'self'), undefined);
  assert.equal(c.apply({ table: 'status', entries: [['self', { term: 1 }], ['x', 1]], version: 1 }), true);
  assert.deepEqual(c.get('status', 'self'), { term: 1 });
  assert.equal(c.apply({ table: 'status', entries: [['self', { term: 2 }]], version: 2 }), true);
  assert.deepEqual(c.get('status', 'self'), { term: 2 });
  assert.equal(c.get('status', 'x'), undefined, 'a push replaces the whole table');
  assert.equal(c.apply({ table: 'status', entries: [['self', { term: 1 }]], version: 1 }), false);
  assert.equal(c.apply({ table: 'status', entries: [['self', { term: 9 }]], version: 2 }), false, 'same version is not newer');
  assert.deepEqual(c.get('status', 'self'), { term: 2 });
  assert.equal(c.version('status'), 2);
  assert.deepEqual([...c.entries('status').keys()], ['self']);
});

test('malformed updates and updates over the limits are refused', () => {
  const c = new ReadCache({ maxTables: 2, maxEntriesPerTable: 2 });
  for (const bad of [null, 5, { table: '', entries: [], version: 1 }, { table: 't', entries: [], version: 0 }, { table: 't', entries: {}, version: 1 }, { table: 't', entries: [[1, 2]], version: 1 }, { table: 't', entries: [['a']], version: 1 }]) {
    assert.throws(() => c.apply(bad), ReadCacheError, JSON.stringify(bad));
  }
  assert.throws(() => c.apply({ table: 't', entries: [['a', 1], ['b', 2], ['c', 3]], version: 1 }), /3 entries exceed the limit of 2/);
  c.apply({ table: 'a', entries: [], version: 1 });
  c.apply({ table: 'b', entries: [], version: 1 });
  assert.throws(() => c.apply({ table: 'c', entries: [], version: 1 }), /2 tables, the limit/);
  assert.equal(c.apply({ table: 'b', entries: [['k', 1]], version: 2 }), true, 'a table already held may still be updated');
});

test('the publisher numbers versions per table, keeps its local cache current and gives a new subscriber every table first', () => {
  const p = new CachePublisher({ maxTables: 4, maxEntriesPerTable: 4 });
  const early: CacheUpdate[] = [];
  const unsubscribe = p.subscribe((u) => early.push(u));
  assert.equal(p.publish('status', [['self', 1]]).version, 1);
  assert.equal(p.publish('status', [['self', 2]]).version, 2);
  assert.equal(p.publish('keys', [['k1', 'a']]).version, 1);
  assert.deepEqual(
    early.map((u) => [u.table, u.version]),
    [['status', 1], ['status', 2], ['keys', 1]],
  );
  assert.equal(p.local.get('status', 'self'), 2);

  const late: CacheUpdate[] = [];
  p.subscribe((u) => late.push(u));
  assert.deepEqual(
    late.map((u) => [u.table, u.version, u.entries]),
    [['status', 2, [['self', 2]]], ['keys', 1, [['k1', 'a']]]],
  );
  unsubscribe();
  p.publish('status', [['self', 3]]);
  assert.equal(early.length, 3, 'unsubscribed');
  assert.equal(late.length, 3);
  assert.throws(() => p.publish('big', [['a', 1], ['b', 1], ['c', 1], ['d', 1], ['e', 1]]), /exceed the limit/);
  assert.equal(p.local.version('big'), 0, 'a refused publish changes nothing');
});
