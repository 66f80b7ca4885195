import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import { StorageCorruptError, StorageError, StorageInvariantError } from '../../../src/storage/errors.ts';
import { META, logKey, stateKey } from '../../../src/storage/keys.ts';
import { RaftError } from '../../../src/raft/errors.ts';
import { bytes, conf, ent, ents, flipRawByte, rawKeys, tempDir, text } from './helpers.ts';

const small = { snapshotEveryEntries: 10, snapshotCatchupEntries: 3 };

test('hard state, entries and conf state survive close and reopen', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  assert.deepEqual(s.initialState().hardState, { term: 0, vote: 0, commit: 0 });
  assert.equal(s.lastIndex(), 0);
  await s.commit({ hardState: { term: 2, vote: 3, commit: 4 }, entries: [...ents(1, 3, 1), ...ents(4, 5, 2)] });
  await s.commit({ confState: conf(1, 2, 3), applied: 4, state: { puts: [['users', 'alice', bytes('A')]] } });
  await s.close();

  const r = await DurableStorage.open(dir);
  t.after(() => r.close());
  assert.deepEqual(r.initialState(), { hardState: { term: 2, vote: 3, commit: 4 }, confState: conf(1, 2, 3) });
  assert.equal(r.firstIndex(), 1);
  assert.equal(r.lastIndex(), 5);
  assert.deepEqual(r.entries(1, 6, Infinity), [...ents(1, 3, 1), ...ents(4, 5, 2)]);
  assert.equal(r.term(0), 0);
  assert.equal(r.term(4), 2);
  assert.equal(r.applied, 4);
  assert.equal(text(await r.get('users', 'alice')), 'A');
  assert.equal(r.getSync('users', 'alice')?.length, 1);
});

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

test('several writes in one commit are applied in order with one sync batch', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  t.after(() => s.close());
  await s.commit([
    { entries: ents(1, 4, 1), hardState: { term: 1, vote: 0, commit: 0 } },
    { entries: [ent(3, 2, 'x')], hardState: { term: 2, vote: 0, commit: 2 } },
    { applied: 2, state: { puts: [['k', 'a', bytes('1')]] } },
    { state: { dels: [['k', 'a']] } },
    { state: { puts: [['k', 'a', bytes('2')]] } },
  ]);
  assert.equal(s.stats().syncBatches, 1);
  assert.equal(s.lastIndex(), 3);
  assert.equal(s.term(3), 2);
  assert.equal(text(await s.get('k', 'a')), '2');
  assert.equal(s.applied, 2);
});

test('the cache changes only after the sync batch resolves', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  t.after(() => s.close());
  const p = s.commit({ entries: ents(1, 3, 1), hardState: { term: 1, vote: 0, commit: 0 } });
  assert.equal(s.lastIndex(), 0);
  assert.equal(s.hardState.term, 0);
  await p;
  assert.equal(s.lastIndex(), 3);
  assert.equal(s.hardState.term, 1);
});

test('overlapping commits and impossible writes are invariant failures', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  t.after(() => s.close());
  await s.commit({ entries: ents(1, 3, 1), hardState: { term: 1, vote: 2, commit: 2 } });
  const p = s.commit({ entries: [ent(4, 1)] });
  await assert.rejects(s.commit({ entries: [ent(5, 1)] }), (e: unknown) => e instanceof StorageInvariantError && /in flight/.test(e.message));
  await p;
  await assert.rejects(s.commit({ hardState: { term: 1, vote: 3, commit: 2 } }), /at most one vote per term/);
  await assert.rejects(s.commit({ hardState: { term: 0, vote: 0, commit: 2 } }), /terms only increase/);
  await assert.rejects(s.commit({ entries: [ent(6, 1)] }), /gap/);
  await assert.rejects(s.commit({ entries: [ent(2, 5)] }), /overwrite committed entry 2/);
  await assert.rejects(s.commit({ applied: 3 }), /beyond the commit index/);
  await assert.rejects(s.commit({ state: { puts: [['Bad/Space', 'k', bytes('v')]] } }), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT');
  await assert.rejects(s.commit({ state: { puts: [['ks', 'k', bytes('v')]], dels: [['ks', 'k']] } }), /both put and deleted/);
  // None of the refused writes changed anything.
  assert.equal(s.lastIndex(), 4);
  assert.deepEqual(s.hardState, { term: 1, vote: 2, commit: 2 });
  assert.equal(s.stats().syncBatches, 2);
});

test('iterate returns a bounded, ordered range of one keyspace', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir, { config: { maxIterateLimit: 100 } });
  t.after(() => s.close());
  const puts: [string, string, Uint8Array][] = [];
  for (let i = 0; i < 20; i++) puts.push(['tokens', `t${String(i).padStart(2, '0')}`, bytes(`v${i}`)]);
  puts.push(['tokensx', 't05', bytes('other keyspace')]);
  await s.commit({ state: { puts } });
  const page = await s.iterate('tokens', { gte: 't05', lt: 't15', limit: 4 });
  assert.deepEqual(page.map((r) => text(r.key)), ['t05', 't06', 't07', 't08']);
  assert.deepEqual(page.map((r) => text(r.value)), ['v5', 'v6', 'v7', 'v8']);
  assert.equal((await s.iterate('tokens', { limit: 100 })).length, 20);
  assert.equal((await s.iterate('tokensx', { limit: 100 })).length, 1);
  await assert.rejects(s.iterate('tokens', { limit: 101 }), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT');
});

test('a snapshot compacts the log behind snapshotCatchupEntries, and reopen agrees', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir, { config: small });
  await s.commit({ entries: ents(1, 20, 1), hardState: { term: 1, vote: 1, commit: 20 } });
  assert.equal(s.shouldSnapshot(), false);
  await s.commit({ applied: 20, confState: conf(1), state: { puts: [['ks', 'a', bytes('1')]] } });
  assert.equal(s.shouldSnapshot(), true);
  const info = await s.createSnapshot({ index: 20, term: 1, confState: conf(1) });
  assert.equal(info.compactedThrough, 17);
  assert.equal(info.records, 1);
  assert.equal(s.shouldSnapshot(), false);
  assert.equal(s.firstIndex(), 18);
  assert.equal(s.term(17), 1);
  assert.throws(() => s.term(16), (e: unknown) => e instanceof RaftError && e.code === 'COMPACTED');
  assert.deepEqual(s.snapshot().metadata, { index: 20, term: 1, confState: conf(1) });
  await assert.rejects(s.createSnapshot({ index: 20, term: 1, confState: conf(1) }), (e: unknown) => e instanceof StorageError && e.code === 'SNAPSHOT_OUT_OF_DATE');
  await s.close();
  assert.equal((await rawKeys(dir, 'l/')).length, 3);

  const r = await DurableStorage.open(dir, { config: small });
  t.after(() => r.close());
  assert.equal(r.firstIndex(), 18);
  assert.equal(r.lastIndex(), 20);
  assert.equal(r.term(17), 1);
  assert.deepEqual(r.snapshot().metadata, { index: 20, term: 1, confState: conf(1) });
  assert.equal(r.applied, 20);
});

test('createSnapshot refuses an index that is not the applied index', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir, { config: small });
  t.after(() => s.close());
  await s.commit({ entries: ents(1, 5, 1), hardState: { term: 1, vote: 0, commit: 5 }, applied: 4 });
  await assert.rejects(s.createSnapshot({ index: 5, term: 1, confState: conf(1) }), (e: unknown) => e instanceof StorageInvariantError && /applied index is 4/.test(e.message));
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

test('a damaged state record is refused on read, and the store then refuses to serve', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  await s.commit({ state: { puts: [['users', 'alice', bytes('alice-record')], ['users', 'bob', bytes('bob-record')]] } });
  await s.close();
  await flipRawByte(dir, stateKey(0, 'users', 'alice'), 7);

  // By default open scrubs the state and refuses to start.
  await assert.rejects(DurableStorage.open(dir), (e: unknown) => e instanceof StorageCorruptError && e.store === 'state' && e.key === 's/0/users/alice');
  // Without the scrub the damage is found on the first read of the record.
  const r = await DurableStorage.open(dir, { verifyState: false });
  t.after(() => r.close());
  assert.equal(text(await r.get('users', 'bob')), 'bob-record');
  await assert.rejects(r.get('users', 'alice'), (e: unknown) => {
    assert.ok(e instanceof StorageCorruptError);
    assert.equal(e.store, 'state');
    assert.equal(e.key, 's/0/users/alice');
    assert.match(e.message, /state record s\/0\/users\/alice is damaged/);
    return true;
  });
  await assert.rejects(r.get('users', 'bob'), StorageCorruptError);
  await assert.rejects(r.commit({ applied: 0 }), StorageCorruptError);
});

test('a damaged state record is also found by iterate', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  await s.commit({ state: { puts: [['ks', 'a', bytes('1')], ['ks', 'b', bytes('2')]] } });
  await s.close();
  await flipRawByte(dir, stateKey(0, 'ks', 'b'), 4);
  const r = await DurableStorage.open(dir, { verifyState: false });
  t.after(() => r.close());
  await assert.rejects(r.iterate('ks', { limit: 10 }), (e: unknown) => e instanceof StorageCorruptError && e.key === 's/0/ks/b');
});

test('config is validated at open', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(DurableStorage.open(dir, { config: { snapshotCatchupEntries: 10, snapshotEveryEntries: 10 } }), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_CONFIG');
  await assert.rejects(DurableStorage.open(dir, { config: { maxChunkBytes: 1.5 } }), /maxChunkBytes must be a positive integer/);
});

test('createSnapshot may overlap a log-only commit but not one that changes state', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir, { config: small });
  t.after(() => s.close());
  await s.commit({ entries: ents(1, 7, 1), hardState: { term: 1, vote: 0, commit: 7 }, applied: 5, state: { puts: [['ks', 'a', bytes('1')]] } });
  const withState = s.commit({ applied: 6, state: { puts: [['ks', 'b', bytes('2')]] } });
  await assert.rejects(s.createSnapshot({ index: 5, term: 1, confState: conf(1) }), /commit with state changes is in flight/);
  await withState;
  const logOnly = s.commit({ entries: ents(8, 9, 1) });
  const snap = await s.createSnapshot({ index: 6, term: 1, confState: conf(1) });
  await logOnly;
  assert.equal(snap.records, 2);
  assert.equal(s.lastIndex(), 9);
});

test('a second process (or handle) on the same data dir is refused', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  t.after(() => s.close());
  // Said plainly (issue 13, defect 3): which store, that another process holds it, what to do.
  await assert.rejects(DurableStorage.open(dir), (e: unknown) => {
    assert.ok(e instanceof StorageError && e.code === 'LOCKED', String(e));
    assert.equal(e.message, `LOCKED: another process holds the store at ${dir} (its LevelDB lock ${join(dir, 'db', 'LOCK')}): is this node already running? Stop that process first, or give this one another node.dataDir`);
    return true;
  });
});

test('bootstrap makes a fresh store a founding member, once', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  assert.equal(await s.bootstrap(conf(1, 2, 3)), true);
  assert.deepEqual(s.initialState(), { hardState: { term: 1, vote: 0, commit: 1 }, confState: conf(1, 2, 3) });
  assert.deepEqual(s.snapshot().metadata, { index: 1, term: 1, confState: conf(1, 2, 3) });
  assert.equal(s.firstIndex(), 2);
  assert.equal(s.lastIndex(), 1);
  assert.equal(s.applied, 1);
  await s.commit({ entries: [ent(2, 2)], hardState: { term: 2, vote: 1, commit: 1 } });
  await s.close();

  const r = await DurableStorage.open(dir);
  assert.equal(await r.bootstrap(conf(1, 2, 3)), false, 'a restarting founding member keeps its state');
  assert.deepEqual(r.initialState(), { hardState: { term: 2, vote: 1, commit: 1 }, confState: conf(1, 2, 3) });
  assert.equal(r.term(1), 1);
  assert.equal(r.lastIndex(), 2);

  // A node that joins later is sent the bootstrap snapshot and ends up in the same place.
  const joiner = await DurableStorage.open(await tempDir(t));
  t.after(() => joiner.close());
  const stream = await r.openSnapshotChunks(1);
  const got = await joiner.receiveSnapshot({ index: 1, term: 1 }, stream.chunks);
  await joiner.installSnapshot(got.path);
  assert.deepEqual(joiner.snapshot().metadata, { index: 1, term: 1, confState: conf(1, 2, 3) });
  assert.deepEqual(joiner.initialState().confState, conf(1, 2, 3));
  assert.equal(joiner.firstIndex(), 2);
  await r.close();
});

test('an unsynced commit may move only the commit and applied indexes and the state', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  t.after(() => s.close());
  await s.commit({ entries: ents(1, 3, 1), hardState: { term: 1, vote: 1, commit: 0 } });
  await s.commit({ hardState: { term: 1, vote: 1, commit: 3 }, applied: 2, state: { puts: [['ks', 'a', bytes('1')]] } }, { sync: false });
  assert.deepEqual(s.stats().syncBatches, 1);
  assert.deepEqual(s.stats().unsyncedBatches, 1);
  assert.equal(s.hardState.commit, 3);
  await assert.rejects(s.commit({ entries: [ent(4, 1)] }, { sync: false }), /must be synced/);
  await assert.rejects(s.commit({ hardState: { term: 2, vote: 0, commit: 3 } }, { sync: false }), /must be synced/);
  assert.equal(s.lastIndex(), 3);
});
