// The log store (src/storage/log-store.ts): raft log, hard state, log head and the core's cache.
// The first tests go through the DurableStorage facade (what the node sees); the rest drive the
// module directly: it only plans batches, and its cache moves only after a batch is durable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import { StorageCorruptError, StorageInvariantError } from '../../../src/storage/errors.ts';
import { META, logKey, printableKey } from '../../../src/storage/keys.ts';
import type { BatchOp } from '../../../src/storage/level-store.ts';
import type { StorageWrite } from '../../../src/storage/types.ts';
import { conf, ent, ents, flipRawByte, openModules, rawKeys, tempDir } from './helpers.ts';

const show = (ops: readonly BatchOp[]): string[] => ops.map((o) => `${o.type} ${printableKey(o.key)}`);

test('a conflicting suffix is replaced, in the cache and on disk', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  await s.commit({ entries: ents(1, 6, 1), hardState: { term: 1, vote: 1, commit: 2 } });
  await s.commit({ entries: [ent(4, 2, 'new4'), ent(5, 2, 'new5')], hardState: { term: 2, vote: 0, commit: 2 } });
  assert.equal(s.lastIndex(), 5);
  assert.equal(s.term(4), 2);
  assert.deepEqual(s.entries(4, 6, Infinity), [ent(4, 2, 'new4'), ent(5, 2, 'new5')]);
  // A replacement shorter than the old suffix deletes the tail.
  await s.commit({ entries: [ent(3, 3, 'new3')], hardState: { term: 3, vote: 0, commit: 2 } });
  assert.equal(s.lastIndex(), 3);
  await s.close();
  assert.deepEqual((await rawKeys(dir, 'l/')).length, 3);

  const r = await DurableStorage.open(dir);
  t.after(() => r.close());
  assert.equal(r.lastIndex(), 3);
  assert.deepEqual(r.entries(1, 4, Infinity), [ent(1, 1), ent(2, 1), ent(3, 3, 'new3')]);
});

test('a damaged log record makes open refuse, naming the store and the index', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  await s.commit({ entries: ents(1, 5, 1), hardState: { term: 1, vote: 0, commit: 5 } });
  await s.close();
  await flipRawByte(dir, logKey(3), 6);
  await assert.rejects(DurableStorage.open(dir), (e: unknown) => {
    assert.ok(e instanceof StorageCorruptError, String(e));
    assert.equal(e.store, 'raft log');
    assert.equal(e.index, 3);
    assert.equal(e.key, 'l/3');
    assert.match(e.message, /raft log entry at index 3/);
    assert.match(e.message, /wipe its data directory/);
    return true;
  });
  // The failed open released the LevelDB lock: a second attempt reports the same damage, not LOCKED.
  await assert.rejects(DurableStorage.open(dir), (e: unknown) => e instanceof StorageCorruptError && e.index === 3);
});

test('a damaged hard state, or a hole in the log, makes open refuse', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  await s.commit({ entries: ents(1, 5, 1), hardState: { term: 1, vote: 0, commit: 5 } });
  await s.close();
  await flipRawByte(dir, META.hardState, 0);
  await assert.rejects(DurableStorage.open(dir), (e: unknown) => e instanceof StorageCorruptError && e.store === 'hard state' && e.key === 'm/hardState');

  const dir2 = await tempDir(t);
  const s2 = await DurableStorage.open(dir2);
  await s2.commit({ entries: ents(1, 5, 1) });
  await s2.close();
  const { ClassicLevel } = await import('classic-level');
  const raw = new ClassicLevel<Uint8Array, Uint8Array>(`${dir2}/db`, { keyEncoding: 'view', valueEncoding: 'view' });
  await raw.del(logKey(4));
  await raw.close();
  await assert.rejects(DurableStorage.open(dir2), (e: unknown) => e instanceof StorageCorruptError && e.store === 'raft log' && e.index === 4 && /missing/.test(e.message));
});

test('planWrite only plans: the cache moves in afterWrite; a replaced suffix is puts then dels, checked against the batch so far', async (t) => {
  const m = await openModules(await tempDir(t));
  t.after(() => m.level.close());
  const first: StorageWrite = { entries: ents(1, 5, 1), hardState: { term: 1, vote: 1, commit: 2 } };
  const ops: BatchOp[] = [];
  const plan = m.log.beginPlan();
  m.log.planWrite(plan, first, ops);
  assert.deepEqual(show(ops), ['put m/hardState', 'put l/1', 'put l/2', 'put l/3', 'put l/4', 'put l/5']);
  assert.equal(plan.last, 5);
  assert.equal(m.log.lastIndex(), 0, 'planning changes nothing the core can see');
  assert.equal(m.log.hardState.term, 0);
  await m.level.write(ops, true, 'commit', 'test');
  m.log.afterWrite(first);
  assert.equal(m.log.lastIndex(), 5);
  assert.deepEqual(m.log.hardState, { term: 1, vote: 1, commit: 2 });

  // Replace from index 4: the new entry is put and the stale tail deleted, in one batch.
  const ops2: BatchOp[] = [];
  const plan2 = m.log.beginPlan();
  m.log.planWrite(plan2, { entries: [ent(4, 2)] }, ops2);
  assert.deepEqual(show(ops2), ['put l/4', 'del l/5']);
  // A second write of the same batch is checked against the first one, not against the cache.
  m.log.planWrite(plan2, { entries: [ent(5, 2)] }, ops2);
  assert.equal(plan2.last, 5);
  assert.throws(() => m.log.planWrite(plan2, { entries: [ent(7, 2)] }, ops2), (e: unknown) => e instanceof StorageInvariantError && /gap after the last index 5/.test(e.message));
  // Entries at or below the durable commit index are never rewritten.
  assert.throws(() => m.log.planWrite(m.log.beginPlan(), { entries: [ent(2, 2)] }, []), /overwrite committed entry 2/);
  assert.throws(() => m.log.planWrite(m.log.beginPlan(), { hardState: { term: 1, vote: 1, commit: 1 } }, []), /commit index went backwards/);
});

test('planCompaction keeps snapshotCatchupEntries behind the snapshot; the cache compacts only after the batch; the keys go afterwards in bounded batches', async (t) => {
  const m = await openModules(await tempDir(t), { compactLogBytes: 1 << 20, snapshotCatchupEntries: 3, deleteBatchKeys: 5 });
  t.after(() => m.level.close());
  const w: StorageWrite = { entries: ents(1, 20, 1), hardState: { term: 1, vote: 1, commit: 20 } };
  const ops: BatchOp[] = [];
  m.log.planWrite(m.log.beginPlan(), w, ops);
  await m.level.write(ops, true, 'commit', 'test');
  m.log.afterWrite(w);

  const meta = { index: 20, term: 1, confState: conf(1) };
  const compaction: BatchOp[] = [];
  const head = m.log.planCompaction(meta, compaction);
  assert.deepEqual(head, { index: 17, term: 1 });
  assert.deepEqual(show(compaction), ['put m/logHead'], 'one small batch: the head only');
  assert.equal(m.log.firstIndex(), 1, 'nothing moves before the batch is durable');
  await m.level.write(compaction, true, 'snapshot-record', 'test');
  m.log.afterCompaction(meta, head);
  assert.equal(m.log.firstIndex(), 18);
  assert.deepEqual(m.log.logHead, { index: 17, term: 1 });
  assert.deepEqual(m.log.snapshot().metadata, meta);
  const batchSizes: number[] = [];
  const write = m.level.write.bind(m.level);
  m.level.write = (batch, sync, purpose, what) => {
    batchSizes.push(batch.length);
    return write(batch, sync, purpose, what);
  };
  assert.equal(await m.log.deleteCompacted(), 17);
  assert.deepEqual(batchSizes, [5, 5, 5, 2], '17 keys in batches of 5');
  assert.deepEqual(await m.level.db.keys({ gte: logKey(0), lt: logKey(18) }).all(), []);
  assert.equal((await m.level.db.keys({ gte: logKey(18), lt: logKey(21) }).all()).length, 3);
  // Nothing left to compact: no operations, same head.
  const again: BatchOp[] = [];
  assert.deepEqual(m.log.planCompaction(meta, again), head);
  assert.equal(again.length, 0);
});

test('planReset drops the whole log and moves the commit index (never term or vote) up to the snapshot', async (t) => {
  const m = await openModules(await tempDir(t));
  t.after(() => m.level.close());
  const w: StorageWrite = { entries: ents(1, 8, 2), hardState: { term: 3, vote: 2, commit: 4 } };
  const ops: BatchOp[] = [];
  m.log.planWrite(m.log.beginPlan(), w, ops);
  await m.level.write(ops, true, 'commit', 'test');
  m.log.afterWrite(w);

  const snap = { index: 30, term: 2, confState: conf(1, 2) };
  const reset: BatchOp[] = [];
  const hs = m.log.planReset(snap, reset);
  assert.deepEqual(hs, { term: 3, vote: 2, commit: 30 });
  assert.deepEqual(show(reset), ['put m/hardState', 'put m/logHead', ...ents(1, 8, 2).map((e) => `del ${printableKey(logKey(e.index))}`)]);
  assert.equal(m.log.lastIndex(), 8);
  await m.level.write(reset, true, 'install-flip', 'test');
  m.log.afterReset(snap, hs);
  assert.equal(m.log.firstIndex(), 31);
  assert.equal(m.log.lastIndex(), 30);
  assert.equal(m.log.term(30), 2);
  assert.deepEqual(m.log.hardState, hs);
  assert.deepEqual(m.log.snapshot().metadata, snap);
  await m.level.close();
  assert.equal((await rawKeys(m.level.dataDir, 'l/')).length, 0);
});
