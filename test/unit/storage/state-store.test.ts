// The state store (src/storage/state-store.ts): the state machine's keyspaces, the applied index,
// the conf state and the state generation. The first tests go through the DurableStorage facade;
// the rest drive the module directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import { StorageCorruptError, StorageError, StorageInvariantError } from '../../../src/storage/errors.ts';
import { printableKey, stateGenEnd, stateGenPrefix, stateKey } from '../../../src/storage/keys.ts';
import type { BatchOp } from '../../../src/storage/level-store.ts';
import type { SnapshotRecord } from '../../../src/storage/snapshot-format.ts';
import type { StorageWrite } from '../../../src/storage/types.ts';
import { bytes, conf, flipRawByte, openModules, rawKeys, tempDir, text } from './helpers.ts';

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

test('planWrite checks each write against the batch so far; afterWrite moves applied and conf state', async (t) => {
  const m = await openModules(await tempDir(t));
  t.after(() => m.level.close());
  const w: StorageWrite = { confState: conf(1, 2), applied: 3, state: { puts: [['users', 'alice', bytes('A')]], dels: [['users', 'bob']] } };
  const ops: BatchOp[] = [];
  const plan = m.state.beginPlan();
  m.state.planWrite(plan, w, 5, ops);
  assert.deepEqual(
    ops.map((o) => `${o.type} ${printableKey(o.key)}`),
    ['put m/confState', 'del s/0/users/bob', 'put s/0/users/alice', 'put m/applied'],
  );
  assert.equal(plan.applied, 3);
  assert.equal(m.state.applied, 0, 'planning changes nothing');
  assert.throws(() => m.state.planWrite(plan, { applied: 2 }, 5, []), (e: unknown) => e instanceof StorageInvariantError && /went backwards from 3 to 2/.test(e.message));
  assert.throws(() => m.state.planWrite(plan, { applied: 6 }, 5, []), /beyond the commit index 5/);
  assert.throws(() => m.state.planWrite(plan, { state: { puts: [['ks', 'k', 'text' as unknown as Uint8Array]] } }, 5, []), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT');
  await m.level.write(ops, true, 'commit', 'test');
  m.state.afterWrite(w);
  assert.equal(m.state.applied, 3);
  assert.deepEqual(m.state.confState, conf(1, 2));
  assert.equal(text(m.state.getSync('users', 'alice')), 'A');
});

test('openSnapshotRead reads the state as of the call, not writes that follow it', async (t) => {
  const m = await openModules(await tempDir(t));
  t.after(() => m.level.close());
  const put = async (key: string, value: string): Promise<void> => {
    const ops: BatchOp[] = [];
    m.state.planWrite(m.state.beginPlan(), { state: { puts: [['ks', key, bytes(value)]] } }, 0, ops);
    await m.level.write(ops, true, 'commit', 'test');
  };
  await put('a', '1');
  await put('b', '2');
  const read = m.state.openSnapshotRead();
  await put('a', 'changed');
  await put('c', 'new');
  const got: string[] = [];
  for await (const r of read.records) got.push(`${r.keyspace}/${text(r.key)}=${text(r.value)}`);
  await read.close();
  assert.equal(read.generation, 0);
  assert.deepEqual(got, ['ks/a=1', 'ks/b=2']);
});

test('a new generation is loaded in bounded batches, invisible until the flip; dropGeneration removes it', async (t) => {
  const m = await openModules(await tempDir(t), { installBatchRecords: 4 });
  t.after(() => m.level.close());
  const ops: BatchOp[] = [];
  m.state.planWrite(m.state.beginPlan(), { state: { puts: [['ks', 'old', bytes('old')]] } }, 0, ops);
  await m.level.write(ops, true, 'commit', 'test');

  const gen = await m.state.prepareNextGeneration();
  assert.equal(gen, 1);
  const loader = m.state.loader(gen);
  const records: SnapshotRecord[] = [];
  for (let i = 0; i < 10; i++) records.push({ keyspace: 'ks', key: bytes(`k${i}`), value: bytes(`v${i}`) });
  for (const r of records) await loader.add(r);
  const genKeys = async (g: number): Promise<number> => (await m.level.db.keys({ gte: stateGenPrefix(g), lt: stateGenEnd(g) }).all()).length;
  assert.equal(await genKeys(1), 8, 'two full batches of 4 written, 2 records still buffered');
  await loader.flush();
  assert.equal(await genKeys(1), 10);
  assert.equal(text(m.state.getSync('ks', 'old')), 'old', 'readers still see generation 0');
  assert.equal(m.state.getSync('ks', 'k0'), undefined);

  const snap = { index: 9, term: 2, confState: conf(1, 2, 3) };
  const flip: BatchOp[] = [];
  m.state.planFlip(gen, snap, flip);
  assert.deepEqual(flip.map((o) => printableKey(o.key)), ['m/stateGen', 'm/confState', 'm/applied']);
  await m.level.write(flip, true, 'install-flip', 'test');
  m.state.afterFlip(gen, snap);
  assert.equal(m.state.generation, 1);
  assert.equal(m.state.applied, 9);
  assert.equal(text(m.state.getSync('ks', 'k7')), 'v7');
  assert.equal(m.state.getSync('ks', 'old'), undefined);
  await m.state.dropGeneration(0);
  assert.equal(await genKeys(0), 0);
});

test('open removes every state generation but the live one', async (t) => {
  const dir = await tempDir(t);
  const m = await openModules(dir);
  const garbage: BatchOp[] = [2, 7].map((gen) => ({ type: 'put', key: stateKey(gen, 'ks', 'k'), value: bytes('x') }));
  await m.level.write(garbage, true, 'commit', 'test');
  await m.level.close();
  const again = await openModules(dir);
  t.after(() => again.level.close());
  await again.level.close();
  assert.deepEqual((await rawKeys(dir, 's/')).length, 0);
});
