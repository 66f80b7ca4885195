// The shared LevelDB (src/storage/level-store.ts): the one write path and the stopped state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError } from '../../../src/storage/errors.ts';
import { LevelStore, type BatchOp } from '../../../src/storage/level-store.ts';
import { FaultyWrites } from '../../support/faulty-storage.ts';
import { bytes, tempDir } from './helpers.ts';

const put = (k: string, v: string): BatchOp => ({ type: 'put', key: bytes(k), value: bytes(v) });

test('a failed write stops the store for good; a failed cleanup only leaves garbage', async (t) => {
  const faults = new FaultyWrites({ purpose: 'cleanup', nth: 1, kind: 'fail' }, { purpose: 'commit', nth: 2, kind: 'fail' });
  const level = await LevelStore.open(await tempDir(t), faults.wrapWrites);
  t.after(() => level.close());
  await level.write([put('x/1', 'a'), put('x/2', 'b')], true, 'commit', 'write a test batch');
  // The garbage delete fails: the error reaches the caller unchanged and the store goes on.
  await assert.rejects(level.deleteRange(bytes('x/'), bytes('x0'), 10), /EIO: injected write failure of cleanup batch 1/);
  assert.equal(level.isStopped, false);
  level.checkUsable();
  assert.equal(await level.deleteRange(bytes('x/'), bytes('x0'), 1), 2, 'a retry deletes in batches of 1');
  assert.equal(faults.count('cleanup'), 3);
  // A failed write of anything else is an IO error that stops the store: every later call throws it.
  await assert.rejects(level.write([put('y', '1')], true, 'commit', 'write a test batch'), (e: unknown) => e instanceof StorageError && e.code === 'IO' && /failed to write a test batch/.test(e.message));
  assert.equal(level.isStopped, true);
  assert.throws(() => level.checkUsable(), (e: unknown) => e instanceof StorageError && e.code === 'IO');
  assert.equal(await level.deleteRange(bytes('x/'), bytes('x0'), 1), 0, 'a stopped store deletes nothing more');
  assert.deepEqual(faults.written.map((w) => [w.purpose, w.sync, w.ops.length]), [['commit', true, 2], ['cleanup', false, 1], ['cleanup', false, 1]]);
});

test('close refuses further calls at once, then lets background work finish before LevelDB closes', async (t) => {
  const level = await LevelStore.open(await tempDir(t));
  let drained = false;
  const closing = level.close(async () => {
    assert.throws(() => level.checkUsable(), (e: unknown) => e instanceof StorageError && e.code === 'CLOSED');
    assert.equal(level.db.status, 'open', 'LevelDB stays open while background work drains');
    drained = true;
  });
  await closing;
  assert.equal(drained, true);
  assert.equal(level.db.status, 'closed');
  await level.close(); // idempotent
});
