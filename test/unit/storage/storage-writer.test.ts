import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { ClassicLevel } from 'classic-level';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import { StorageWriter } from '../../../src/storage/storage-writer.ts';
import { StorageError } from '../../../src/storage/errors.ts';
import { bytes, ent, tempDir, text } from './helpers.ts';

/**
 * classic-level's implementation of batch (durable-storage.ts writeBatch calls it directly on the
 * group-commit path; abstract-level's public batch() ends in it too), typed for spying.
 */
const levelProto = ClassicLevel.prototype as unknown as { _batch: (...args: unknown[]) => Promise<void> };

/** Count LevelDB batches written with sync: true, through a spy on the real batch method. */
function spySyncBatches(t: { after: (fn: () => void) => void }): () => number {
  const spy = mock.method(levelProto, '_batch');
  t.after(() => spy.mock.restore());
  return () => spy.mock.calls.filter((c) => ((c.arguments as unknown[])[1] as { sync?: boolean } | undefined)?.sync === true).length;
}

test('N concurrent proposals are merged into one commit: one sync batch', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  const syncBatches = spySyncBatches(t);
  const w = new StorageWriter(s);
  const N = 50;
  // Each proposal: its log entry, the hard state after it, and its applied result.
  const acks = Array.from({ length: N }, (_, i) =>
    w.submit({ entries: [ent(i + 1, 1, `p${i}`)], hardState: { term: 1, vote: 1, commit: i + 1 }, applied: i + 1, state: { puts: [['props', `p${i}`, bytes(String(i))]] } }),
  );
  assert.equal(s.lastIndex(), 0, 'nothing is visible before the fsync');
  await Promise.all(acks);
  assert.equal(syncBatches(), 1);
  assert.equal(w.stats().flushes, 1);
  assert.equal(w.stats().maxWritesPerFlush, N);
  assert.equal(s.stats().syncBatches, 1);
  assert.equal(s.lastIndex(), N);
  await s.close();

  const r = await DurableStorage.open(dir);
  t.after(() => r.close());
  assert.equal(r.lastIndex(), N);
  assert.equal(r.applied, N);
  assert.equal(text(await r.get('props', 'p49')), '49');
});

test('writes arriving while a sync batch is in flight share the next one', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  t.after(() => s.close());
  // Hold the first sync batch until the test releases it, so "in flight" is certain, not a race.
  const original = levelProto._batch;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let syncCalls = 0;
  const spy = mock.method(levelProto, '_batch', async function (this: ClassicLevel<Uint8Array, Uint8Array>, ...args: unknown[]) {
    if ((args[1] as { sync?: boolean } | undefined)?.sync === true && ++syncCalls === 1) await gate;
    return (original as (...a: unknown[]) => Promise<void>).apply(this, args);
  });
  t.after(() => spy.mock.restore());
  const w = new StorageWriter(s);
  let firstDone = false;
  const first = w.submit({ entries: [ent(1, 1)], hardState: { term: 1, vote: 0, commit: 0 } }).then(() => (firstDone = true));
  // Wait (with a deadline, no sleeping) until the first group commit is in flight.
  const deadline = Date.now() + 5000;
  while (syncCalls === 0) {
    assert.ok(Date.now() < deadline, 'first batch never started');
    await new Promise((r) => setImmediate(r));
  }
  const more = Array.from({ length: 20 }, (_, i) => w.submit({ entries: [ent(i + 2, 1)] }));
  await new Promise((r) => setImmediate(r));
  assert.equal(firstDone, false);
  assert.equal(syncCalls, 1, 'no second batch while the first is in flight');
  assert.equal(s.lastIndex(), 0);
  release();
  await first;
  await Promise.all(more);
  await w.idle();
  assert.equal(syncCalls, 2);
  assert.equal(w.stats().flushes, 2);
  assert.equal(w.stats().maxWritesPerFlush, 20);
  assert.equal(s.lastIndex(), 21);
});

test('the write queue is bounded and a failed group fails every write in it', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir);
  t.after(() => s.close());
  const w = new StorageWriter(s, { maxPendingWrites: 3, maxPendingBytes: 1 << 20 });
  const ok = [1, 2, 3].map((i) => w.submit({ entries: [ent(i, 1)] }));
  await assert.rejects(w.submit({ entries: [ent(4, 1)] }), (e: unknown) => e instanceof StorageError && e.code === 'OVERLOADED');
  await Promise.all(ok);

  // A gap in the group is a driver bug: the whole group is refused and nothing is written.
  const bad = [w.submit({ entries: [ent(4, 1)] }), w.submit({ entries: [ent(9, 1)] })];
  const results = await Promise.allSettled(bad);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(s.lastIndex(), 3);

  const small = new StorageWriter(s, { maxPendingWrites: 100, maxPendingBytes: 200 });
  await assert.rejects(small.submit({ state: { puts: [['ks', 'k', new Uint8Array(500)]] } }), /write queue full/);
});
