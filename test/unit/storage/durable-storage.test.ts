// The DurableStorage facade (src/storage/durable-storage.ts): open and reopen, the one-batch commit
// across the log store and the state store, the concurrency contract, bootstrap, and what a failed
// or crashed write leaves (through test/support/faulty-storage.ts). The modules behind it have their
// own tests: log-store.test.ts, state-store.test.ts, snapshotter.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import { StorageError, StorageInvariantError } from '../../../src/storage/errors.ts';
import { printableKey } from '../../../src/storage/keys.ts';
import { FaultyWrites } from '../../support/faulty-storage.ts';
import { bytes, conf, ent, ents, tempDir, text } from './helpers.ts';

const small = { compactLogBytes: 1 << 20, snapshotCatchupEntries: 3 };

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

test('config is validated at open', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(DurableStorage.open(dir, { config: { snapshotCatchupEntries: 10, compactLogBytes: 2_000 } }), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_CONFIG');
  await assert.rejects(DurableStorage.open(dir, { config: { maxChunkBytes: 1.5 } }), /maxChunkBytes must be a positive integer/);
  await assert.rejects(DurableStorage.open(dir, { config: { levelMaxOpenFiles: 73 } }), /levelMaxOpenFiles must be between 74 and 50000/);
  await assert.rejects(DurableStorage.open(dir, { config: { levelMaxOpenFiles: 50_001 } }), /levelMaxOpenFiles must be between 74 and 50000/);
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

test('a commit that touches every module is ONE fsynced batch: log, hard state, state, applied index, conf state', async (t) => {
  const faults = new FaultyWrites();
  const s = await DurableStorage.open(await tempDir(t), { wrapWrites: faults.wrapWrites });
  t.after(() => s.close());
  await s.commit([
    { entries: ents(1, 2, 1), hardState: { term: 1, vote: 1, commit: 2 } },
    { confState: conf(1), applied: 2, state: { puts: [['users', 'alice', bytes('A')]] } },
  ]);
  const batches = faults.written.filter((w) => w.purpose === 'commit');
  assert.equal(batches.length, 1);
  assert.equal(faults.written.length, 1, 'nothing else was written');
  assert.equal(batches[0]!.sync, true);
  assert.deepEqual(batches[0]!.ops.map((o) => `${o.type} ${printableKey(o.key)}`).sort(), ['put l/1', 'put l/2', 'put m/applied', 'put m/confState', 'put m/hardState', 'put s/0/users/alice']);
  assert.equal(s.stats().syncBatches, 1);
});

test('a failed commit write stops the store and changes nothing it serves; reopen shows the last durable state', async (t) => {
  const dir = await tempDir(t);
  const faults = new FaultyWrites({ purpose: 'commit', nth: 2, kind: 'fail' });
  const s = await DurableStorage.open(dir, { wrapWrites: faults.wrapWrites });
  await s.commit({ entries: ents(1, 3, 1), hardState: { term: 1, vote: 1, commit: 3 } });
  await assert.rejects(s.commit({ applied: 3, state: { puts: [['ks', 'a', bytes('1')]] } }), (e: unknown) => e instanceof StorageError && e.code === 'IO');
  assert.equal(s.applied, 0);
  // After a failed fsync the file's state is unknown: the store serves nothing more.
  await assert.rejects(s.get('ks', 'a'), (e: unknown) => e instanceof StorageError && e.code === 'IO');
  assert.throws(() => s.getSync('ks', 'a'), (e: unknown) => e instanceof StorageError && e.code === 'IO');
  await assert.rejects(s.commit({ applied: 1 }), (e: unknown) => e instanceof StorageError && e.code === 'IO');
  await s.close();

  const r = await DurableStorage.open(dir);
  t.after(() => r.close());
  assert.equal(r.lastIndex(), 3);
  assert.equal(r.applied, 0);
  assert.equal(await r.get('ks', 'a'), undefined);
});

test('a crash right after a commit batch: the store had not shown it yet, reopen shows all of it', async (t) => {
  const dir = await tempDir(t);
  const faults = new FaultyWrites({ purpose: 'commit', nth: 1, kind: 'crash' });
  const s = await DurableStorage.open(dir, { wrapWrites: faults.wrapWrites });
  await assert.rejects(s.commit({ entries: ents(1, 3, 1), hardState: { term: 1, vote: 1, commit: 2 }, applied: 2, state: { puts: [['ks', 'a', bytes('1')]] } }), (e: unknown) => e instanceof StorageError && e.code === 'SIMULATED_CRASH');
  assert.equal(s.lastIndex(), 0, 'the cache changes only after the batch resolves');
  await s.close();

  const r = await DurableStorage.open(dir);
  t.after(() => r.close());
  assert.equal(r.lastIndex(), 3);
  assert.deepEqual(r.hardState, { term: 1, vote: 1, commit: 2 });
  assert.equal(r.applied, 2);
  assert.equal(text(await r.get('ks', 'a')), '1');
});
