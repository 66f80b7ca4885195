// The snapshotter (src/storage/snapshotter.ts): snapshot files and the snapshot record: create,
// compact, stream, receive, install, prune, and the snapshot policy. Most tests go through the
// DurableStorage facade, whose snapshot calls are the snapshotter's.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import type { StorageWrite } from '../../../src/storage/durable-storage.ts';
import { StorageError, StorageInvariantError } from '../../../src/storage/errors.ts';
import { LOG_ENTRY_OVERHEAD_BYTES } from '../../../src/storage/config.ts';
import { RaftError } from '../../../src/raft/errors.ts';
import { SnapshotReceiver } from '../../../src/storage/snapshot-receiver.ts';
import type { ConfState, SnapshotMetadata } from '../../../src/raft/types.ts';
import { bytes, conf, ents, rawKeys, tempDir, text } from './helpers.ts';
import { FaultyWrites, crashAfterInstallBatches, crashAfterInstallFlip } from '../../support/faulty-storage.ts';

// Small frames and chunks so that a few hundred records span many of each.
const config = {
  compactLogBytes: 1 << 20,
  snapshotCatchupEntries: 3,
  snapshotFrameBytes: 2048,
  maxChunkBytes: 1500,
  installBatchRecords: 50,
  keepSnapshotFiles: 2,
};

const small = { compactLogBytes: 1 << 20, snapshotCatchupEntries: 3 };

const KEYSPACES = ['clients', 'tokens', 'users'];

/** A deterministic state: `n` records spread over the keyspaces, values of varied sizes. */
function statePuts(n: number, tag: string): [string, string, Uint8Array][] {
  const puts: [string, string, Uint8Array][] = [];
  for (let i = 0; i < n; i++) puts.push([KEYSPACES[i % 3]!, `key-${String(i).padStart(4, '0')}`, bytes(`${tag}:${i}:${'x'.repeat((i * 37) % 300)}`)]);
  return puts;
}

/** Open a store holding `records` state records, with the log and applied index at `index`. */
async function seededStore(dir: string, index: number, records: number, tag: string, cs: ConfState = conf(1, 2, 3), extra: Partial<Parameters<typeof DurableStorage.open>[1]> = {}): Promise<DurableStorage> {
  const s = await DurableStorage.open(dir, { config, ...extra });
  const w: StorageWrite = { entries: ents(1, index, 1), hardState: { term: 1, vote: 1, commit: index } };
  await s.commit(w);
  await s.commit({ applied: index, confState: cs, state: { puts: statePuts(records, tag) } });
  return s;
}

/** A state file at index 30 of store A (200 records), as the chunks a follower would be sent. */
async function sourceChunks(t: TestContext): Promise<Uint8Array[]> {
  const a = await seededStore(await tempDir(t), 30, 200, 'A');
  t.after(() => a.close());
  await a.createSnapshot({ index: 30, term: 1, confState: conf(1, 2, 3) });
  return allChunks(a, 30);
}

async function dumpState(s: DurableStorage): Promise<string[]> {
  const out: string[] = [];
  for (const ks of KEYSPACES) {
    for (const r of await s.iterate(ks, { limit: 10_000 })) out.push(`${ks}/${text(r.key)}=${text(r.value)}`);
  }
  return out;
}

async function transfer(from: DurableStorage, index: number, to: DurableStorage, meta: SnapshotMetadata): Promise<string> {
  const stream = await from.openSnapshotChunks(index);
  assert.deepEqual(stream.metadata, meta);
  const rx = await to.createSnapshotReceiver({ index: meta.index, term: meta.term });
  let chunks = 0;
  for await (const c of stream.chunks) {
    assert.ok(c.length <= config.maxChunkBytes);
    await rx.push(c, rx.bytesReceived);
    chunks++;
  }
  assert.ok(chunks > 5, `expected many chunks, got ${chunks}`);
  const got = await rx.finish();
  assert.deepEqual(got.metadata, meta);
  assert.equal(got.bytes, stream.totalBytes);
  return got.path;
}

async function allChunks(s: DurableStorage, index: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of (await s.openSnapshotChunks(index)).chunks) out.push(c);
  return out;
}

test('snapshot create → chunks → receiver → install gives identical state on a second store', async (t) => {
  const a = await seededStore(await tempDir(t), 30, 400, 'A');
  t.after(() => a.close());
  const meta = { index: 30, term: 1, confState: conf(1, 2, 3) };
  const info = await a.createSnapshot(meta);
  assert.equal(info.records, 400);

  const bDir = await tempDir(t);
  const b = await seededStore(bDir, 5, 50, 'B-old', conf(1));
  const path = await transfer(a, 30, b, meta);
  assert.deepEqual(await b.installSnapshot(path), meta);
  assert.deepEqual(await dumpState(b), await dumpState(a));
  assert.equal(b.applied, 30);
  assert.equal(b.firstIndex(), 31);
  assert.equal(b.lastIndex(), 30);
  assert.equal(b.term(30), 1);
  assert.deepEqual(b.snapshot().metadata, meta);
  assert.deepEqual(b.initialState().confState, conf(1, 2, 3));
  assert.equal(b.hardState.commit, 30);
  assert.equal(b.stateGeneration, 1);
  await b.backgroundIdle();
  await b.close();
  // The old generation is gone, the new one is all there, and the log was dropped.
  assert.equal((await rawKeys(bDir, 's/\x00\x00\x00\x00')).length, 0);
  assert.equal((await rawKeys(bDir, 's/\x00\x00\x00\x01')).length, 400);
  assert.equal((await rawKeys(bDir, 'l/')).length, 0);

  const r = await DurableStorage.open(bDir, { config });
  t.after(() => r.close());
  assert.deepEqual(await dumpState(r), await dumpState(a));
  assert.equal(r.applied, 30);
  assert.equal(r.firstIndex(), 31);
  // The installed file is this node's current snapshot: it can stream it on in turn.
  assert.equal((await allChunks(r, 30)).length > 0, true);
  // And the store goes on: the next entries follow the snapshot.
  await r.commit({ entries: ents(31, 32, 2), hardState: { term: 2, vote: 0, commit: 32 } });
  assert.equal(r.lastIndex(), 32);
});

test('a snapshot holds the state at the call, not writes committed while it is written', async (t) => {
  const a = await seededStore(await tempDir(t), 30, 100, 'A');
  t.after(() => a.close());
  const pending = a.createSnapshot({ index: 30, term: 1, confState: conf(1, 2, 3) });
  // Committed while the file is being written: must not be in the snapshot.
  await a.commit({ entries: ents(31, 31, 1), hardState: { term: 1, vote: 1, commit: 31 } });
  await a.commit({ applied: 31, state: { puts: [['users', 'late', bytes('late')]], dels: [['clients', 'key-0000']] } });
  await pending;
  const b = await DurableStorage.open(await tempDir(t), { config });
  t.after(() => b.close());
  const stream = await a.openSnapshotChunks(30);
  const got = await b.receiveSnapshot({ index: 30, term: 1 }, stream.chunks);
  await b.installSnapshot(got.path);
  assert.equal(await b.get('users', 'late'), undefined);
  assert.ok((await b.get('clients', 'key-0000')) !== undefined);
});

test('the receiver refuses a truncated stream and leaves no file behind', async (t) => {
  const chunks = await sourceChunks(t);
  const b = await DurableStorage.open(await tempDir(t), { config });
  t.after(() => b.close());

  for (const cut of [1, chunks.length - 1, chunks.length - 5]) {
    const rx = await b.createSnapshotReceiver();
    for (const c of chunks.slice(0, cut)) await rx.push(c);
    await assert.rejects(rx.finish(), (e: unknown) => e instanceof StorageError && e.code === 'SNAPSHOT_INVALID' && /truncated/.test(e.message));
    await assert.rejects(rx.push(chunks[cut]!), /receiver is failed/);
  }
  // A stream cut inside the trailer.
  const rx = await b.createSnapshotReceiver();
  for (const c of chunks) await rx.push(c.length > 10 && c === chunks[chunks.length - 1] ? c.subarray(0, c.length - 10) : c);
  await assert.rejects(rx.finish(), /truncated/);
  assert.deepEqual(await readdir(b.snapDir), []);
});

test('the receiver refuses every bit flip (seeded; replay with STORAGE_TEST_SEED)', async (t) => {
  const seed = Number(process.env.STORAGE_TEST_SEED ?? Date.now() % 1_000_000);
  console.log(`bit-flip test seed=${seed} (replay: STORAGE_TEST_SEED=${seed})`);
  let x = seed || 1;
  const rand = (n: number): number => {
    x = (x * 1103515245 + 12345) % 2147483648; // LCG: deterministic from the seed
    return x % n;
  };
  const whole = Buffer.concat(await sourceChunks(t));
  const b = await DurableStorage.open(await tempDir(t), { config });
  t.after(() => b.close());

  const positions = [0, 8, 12, 13, whole.length - 1, whole.length - 20];
  for (let i = 0; i < 30; i++) positions.push(rand(whole.length));
  for (const pos of positions) {
    const damaged = Buffer.from(whole);
    damaged[pos]! ^= 1 << rand(8);
    const rx = await b.createSnapshotReceiver();
    let refused: unknown = null;
    try {
      for (let off = 0; off < damaged.length; off += config.maxChunkBytes) await rx.push(damaged.subarray(off, off + config.maxChunkBytes));
      await rx.finish();
    } catch (e) {
      refused = e;
    }
    assert.ok(refused instanceof StorageError && refused.code === 'SNAPSHOT_INVALID', `flip at byte ${pos} (seed ${seed}) was accepted: ${String(refused)}`);
  }
  assert.deepEqual(await readdir(b.snapDir), []);
});

test('the receiver enforces chunk size, order, total size and the announced index', async (t) => {
  const chunks = await sourceChunks(t);
  const whole = Buffer.concat(chunks);
  const dir = await tempDir(t);
  const limits = { maxChunkBytes: 1500, maxSnapshotBytes: 1 << 20, snapshotFrameBytes: 2048, maxRecordBytes: 4096 };

  const big = await SnapshotReceiver.create(dir, limits);
  await assert.rejects(big.push(whole.subarray(0, 1501)), /exceeds maxChunkBytes/);

  const ooo = await SnapshotReceiver.create(dir, limits);
  await ooo.push(chunks[0]!, 0);
  await assert.rejects(ooo.push(chunks[2]!, chunks[0]!.length + chunks[1]!.length), /lost or reordered/);

  const tooBig = await SnapshotReceiver.create(dir, { ...limits, maxSnapshotBytes: 4000 });
  await tooBig.push(chunks[0]!);
  await tooBig.push(chunks[1]!);
  await assert.rejects(tooBig.push(chunks[2]!), /maxSnapshotBytes/);

  const wrongIndex = await SnapshotReceiver.create(dir, limits, { index: 31, term: 1 });
  await assert.rejects(wrongIndex.push(chunks[0]!), /leader announced index 31/);

  const garbage = await SnapshotReceiver.create(dir, limits);
  await assert.rejects(garbage.push(bytes('GET / HTTP/1.1\r\n\r\n')), /bad magic/);

  // Extra bytes after a complete snapshot.
  const extra = await SnapshotReceiver.create(dir, limits);
  for (const c of chunks) await extra.push(c);
  await assert.rejects(extra.push(bytes('x')), /after the trailer/);
  assert.deepEqual(await readdir(dir), []);
});

test('installSnapshot refuses a damaged file and keeps the old state', async (t) => {
  const a = await seededStore(await tempDir(t), 30, 200, 'A');
  t.after(() => a.close());
  const info = await a.createSnapshot({ index: 30, term: 1, confState: conf(1, 2, 3) });
  const bDir = await tempDir(t);
  const b = await seededStore(bDir, 5, 50, 'B-old', conf(1));
  t.after(() => b.close());
  const before = await dumpState(b);
  const damaged = Buffer.from(await readFile(info.path));
  damaged[damaged.length - 100]! ^= 0x10;
  const bad = join(bDir, 'incoming.snap');
  await writeFile(bad, damaged);
  await assert.rejects(b.installSnapshot(bad), (e: unknown) => e instanceof StorageError && e.code === 'SNAPSHOT_INVALID');
  assert.deepEqual(await dumpState(b), before);
  assert.equal(b.applied, 5);
  assert.equal(b.stateGeneration, 0);
});

test('a crash part-way through loading the new generation leaves the old state intact', async (t) => {
  const a = await seededStore(await tempDir(t), 30, 400, 'A');
  t.after(() => a.close());
  const meta = { index: 30, term: 1, confState: conf(1, 2, 3) };
  await a.createSnapshot(meta);

  const bDir = await tempDir(t);
  const b = await seededStore(bDir, 5, 50, 'B-old', conf(1), { wrapWrites: crashAfterInstallBatches(3).wrapWrites });
  const before = await dumpState(b);
  const path = await transfer(a, 30, b, meta);
  await assert.rejects(b.installSnapshot(path), (e: unknown) => e instanceof StorageError && e.code === 'SIMULATED_CRASH');
  await assert.rejects(b.get('users', 'key-0002'), /SIMULATED_CRASH/); // a crashed store serves nothing
  await b.close();
  // The crash left a partial generation 1 (3 batches of 50) beside the live generation 0.
  assert.equal((await rawKeys(bDir, 's/\x00\x00\x00\x01')).length, 150);

  const r = await DurableStorage.open(bDir, { config });
  t.after(() => r.close());
  assert.deepEqual(await dumpState(r), before);
  assert.equal(r.applied, 5);
  assert.equal(r.lastIndex(), 5);
  assert.equal(r.stateGeneration, 0);
  assert.deepEqual(r.initialState().confState, conf(1));
  await r.close();
  assert.equal((await rawKeys(bDir, 's/\x00\x00\x00\x01')).length, 0, 'open() removed the garbage generation');

  // The received file is still there: the install can be retried and succeeds.
  const again = await DurableStorage.open(bDir, { config });
  t.after(() => again.close());
  await again.installSnapshot(path);
  assert.deepEqual(await dumpState(again), await dumpState(a));
});

test('a crash right after the flip leaves the new state', async (t) => {
  const a = await seededStore(await tempDir(t), 30, 400, 'A');
  t.after(() => a.close());
  const meta = { index: 30, term: 1, confState: conf(1, 2, 3) };
  await a.createSnapshot(meta);

  const bDir = await tempDir(t);
  const b = await seededStore(bDir, 5, 50, 'B-old', conf(1), { wrapWrites: crashAfterInstallFlip().wrapWrites });
  const path = await transfer(a, 30, b, meta);
  await assert.rejects(b.installSnapshot(path), (e: unknown) => e instanceof StorageError && e.code === 'SIMULATED_CRASH');
  await b.close();
  assert.equal((await rawKeys(bDir, 's/\x00\x00\x00\x00')).length, 50, 'the old generation was not cleaned up before the crash');

  const r = await DurableStorage.open(bDir, { config });
  t.after(() => r.close());
  assert.deepEqual(await dumpState(r), await dumpState(a));
  assert.equal(r.applied, 30);
  assert.equal(r.stateGeneration, 1);
  assert.equal(r.firstIndex(), 31);
  assert.equal(r.lastIndex(), 30);
  assert.deepEqual(r.snapshot().metadata, meta);
  assert.deepEqual(r.initialState().confState, conf(1, 2, 3));
  await r.close();
  assert.equal((await rawKeys(bDir, 's/\x00\x00\x00\x00')).length, 0, 'open() removed the old generation');
});

test('only the newest keepSnapshotFiles snapshot files are kept', async (t) => {
  const dir = await tempDir(t);
  const s = await seededStore(dir, 10, 10, 'S');
  t.after(() => s.close());
  for (const idx of [10, 20, 30]) {
    if (idx > 10) {
      await s.commit({ entries: ents(idx - 9, idx, 1), hardState: { term: 1, vote: 1, commit: idx } });
      await s.commit({ applied: idx, state: { puts: [['users', `at-${idx}`, bytes(String(idx))]] } });
    }
    await s.createSnapshot({ index: idx, term: 1, confState: conf(1, 2, 3) });
  }
  assert.deepEqual((await readdir(s.snapDir)).sort(), ['1-20.snap', '1-30.snap']);
  await assert.rejects(s.openSnapshotChunks(10), (e: unknown) => e instanceof StorageError && e.code === 'SNAPSHOT_UNAVAILABLE');
  assert.equal(s.firstIndex(), 28);
});

test('receiveSnapshot removes the partial file when the stream breaks', async (t) => {
  const chunks = await sourceChunks(t);
  const b = await DurableStorage.open(await tempDir(t), { config });
  t.after(() => b.close());
  async function* broken(): AsyncGenerator<Uint8Array> {
    yield chunks[0]!;
    yield chunks[1]!;
    throw new Error('peer reset the stream');
  }
  await assert.rejects(b.receiveSnapshot({ index: 30, term: 1 }, broken()), /peer reset the stream/);
  assert.deepEqual(await readdir(b.snapDir), []);
  assert.equal(b.applied, 0);
});

test('a snapshot compacts the log behind snapshotCatchupEntries, and reopen agrees', async (t) => {
  const dir = await tempDir(t);
  const s = await DurableStorage.open(dir, { config: small });
  await s.commit({ entries: ents(1, 20, 1), hardState: { term: 1, vote: 1, commit: 20 } });
  assert.equal(s.shouldCompact(100), false, 'nothing applied yet');
  await s.commit({ applied: 20, confState: conf(1), state: { puts: [['ks', 'a', bytes('1')]] } });
  assert.equal(s.shouldCompact(100), true);
  const info = await s.createSnapshot({ index: 20, term: 1, confState: conf(1) });
  assert.equal(info.compactedThrough, 17);
  assert.equal(info.records, 1);
  assert.equal(s.shouldCompact(100), false, 'nothing applied since');
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


test('shouldCompact: due once the log costs more than the threshold and the applied index moved past the recorded snapshot', async (t) => {
  const s = await seededStore(await tempDir(t), 10, 3, 'S');
  t.after(() => s.close());
  const logBytes = s.stats().logBytes;
  assert.equal(logBytes, ents(1, 10, 1).reduce((n, e) => n + e.data.length + LOG_ENTRY_OVERHEAD_BYTES, 0), 'data plus the overhead of each entry');
  assert.equal(s.shouldCompact(logBytes), false, 'at the threshold');
  assert.equal(s.shouldCompact(logBytes - 1), true);
  assert.equal(s.shouldCompact(), false, 'far below compactLogBytes');
  assert.equal((await s.compactLog())?.compactedThrough, 7);
  assert.equal(s.stats().logBytes, ents(8, 10, 1).reduce((n, e) => n + e.data.length + LOG_ENTRY_OVERHEAD_BYTES, 0), 'what the kept entries cost');
  assert.equal(s.shouldCompact(1), false, 'nothing applied since the compaction');
});

test('compactLog records the applied index without writing a state file; a follower is sent a state file written on demand (issue 15)', async (t) => {
  const dir = await tempDir(t);
  const s = await seededStore(dir, 20, 300, 'S');
  assert.equal(await s.newestSendableStateFile(), null, 'no file yet');
  const done = await s.compactLog();
  assert.deepEqual(done, { metadata: { index: 20, term: 1, confState: conf(1, 2, 3) }, compactedThrough: 17 });
  assert.equal(await s.compactLog(), null, 'nothing new to record');
  assert.deepEqual(await readdir(s.snapDir), [], 'no state copied');
  assert.deepEqual(s.snapshot().metadata, done!.metadata);
  // More writes; then a file for a follower, at the applied index: past the recorded snapshot.
  await s.commit({ entries: ents(21, 25, 1), hardState: { term: 1, vote: 1, commit: 25 } });
  await s.commit({ applied: 25, state: { puts: [['users', 'late', bytes('x')]] } });
  const written = await s.writeStateFile({ index: 25, term: 1, confState: conf(1, 2, 3) });
  assert.equal(written.records, 301);
  assert.deepEqual(s.snapshotMetadata, done!.metadata, 'a state file records nothing');
  assert.deepEqual(await s.newestSendableStateFile(), { index: 25, term: 1, confState: conf(1, 2, 3) });
  assert.deepEqual(await s.writeStateFile({ index: 25, term: 1, confState: conf(1, 2, 3) }), { path: written.path, bytes: written.bytes, records: null }, 'an existing file is kept');
  // Installed elsewhere, it is the state at 25; the log goes on from there.
  const b = await DurableStorage.open(await tempDir(t), { config });
  t.after(() => b.close());
  const meta = { index: 25, term: 1, confState: conf(1, 2, 3) };
  await b.installSnapshot(await transfer(s, 25, b, meta));
  assert.deepEqual(await dumpState(b), await dumpState(s));
  await s.close();
  assert.equal((await rawKeys(dir, 'l/')).length, 8, 'the compacted keys were deleted in the background (18..25 left)');
  // Reopen: the recorded snapshot has no file, and needs none.
  const r = await DurableStorage.open(dir, { config });
  t.after(() => r.close());
  assert.deepEqual(r.snapshotMetadata, done!.metadata);
  assert.equal(r.applied, 25);
  assert.equal(r.firstIndex(), 18);
});

test('compaction keeps fewer than snapshotCatchupEntries when they would cost more than half of compactLogBytes', async (t) => {
  // Entries of ~1 KiB: 10 of them are over half of a 4 KiB budget.
  const s = await DurableStorage.open(await tempDir(t), { config: { ...config, compactLogBytes: 4096, snapshotCatchupEntries: 8 } });
  t.after(() => s.close());
  const big = ents(1, 20, 1).map((e) => ({ ...e, data: new Uint8Array(1024 - LOG_ENTRY_OVERHEAD_BYTES) }));
  await s.commit({ entries: big, hardState: { term: 1, vote: 1, commit: 20 } });
  await s.commit({ applied: 20, state: { puts: [['ks', 'a', bytes('1')]] } });
  assert.equal((await s.compactLog())?.compactedThrough, 18, 'two entries (2 KiB) kept, not eight');
  assert.equal(s.stats().logBytes, 2048);
});

test('a chunk stream abandoned before its first read closes its file', async (t) => {
  const s = await seededStore(await tempDir(t), 10, 3, 'S');
  t.after(() => s.close());
  await s.writeStateFile({ index: 10, term: 1, confState: conf(1, 2, 3) });
  const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
  const before = await openFds();
  const streams = await Promise.all([1, 2, 3, 4, 5].map(() => s.openSnapshotChunks(10)));
  assert.equal(await openFds(), before + 5);
  for (const st of streams) await st.chunks.return(undefined);
  assert.equal(await openFds(), before, 'return() before the first next() closed each file');
});

test('pruning keeps a received file newer than the applied index (it is about to be installed)', async (t) => {
  const dir = await tempDir(t);
  const s = await seededStore(dir, 10, 3, 'S');
  t.after(() => s.close());
  // Files as a follower may hold them: old snapshots, and a received one not yet installed.
  for (const name of ['1-2.snap', '1-5.snap', '1-50.snap']) await writeFile(join(s.snapDir, name), 'x');
  await s.createSnapshot({ index: 10, term: 1, confState: conf(1, 2, 3) });
  assert.deepEqual((await readdir(s.snapDir)).sort(), ['1-10.snap', '1-5.snap', '1-50.snap']);
});

test('a snapshot file with a damaged header is not offered to a follower', async (t) => {
  const s = await seededStore(await tempDir(t), 10, 3, 'S');
  t.after(() => s.close());
  const info = await s.createSnapshot({ index: 10, term: 1, confState: conf(1, 2, 3) });
  const damaged = Buffer.from(await readFile(info.path));
  damaged[20]! ^= 0x01; // inside the header frame, after the 12-byte preamble and the frame header
  await writeFile(info.path, damaged);
  await assert.rejects(s.openSnapshotChunks(10), (e: unknown) => e instanceof StorageError && e.code === 'SNAPSHOT_INVALID');
});

test('a failed write while loading a snapshot stops the store; the next open removes the partial generation', async (t) => {
  const a = await seededStore(await tempDir(t), 30, 400, 'A');
  t.after(() => a.close());
  const meta = { index: 30, term: 1, confState: conf(1, 2, 3) };
  await a.createSnapshot(meta);

  const bDir = await tempDir(t);
  const faults = new FaultyWrites({ purpose: 'install-load', nth: 3, kind: 'fail' });
  const b = await seededStore(bDir, 5, 50, 'B-old', conf(1), { wrapWrites: faults.wrapWrites });
  const before = await dumpState(b);
  const path = await transfer(a, 30, b, meta);
  await assert.rejects(b.installSnapshot(path), (e: unknown) => e instanceof StorageError && e.code === 'IO' && /EIO: injected/.test(e.message));
  assert.equal(faults.fired.length, 1);
  // After a failed write nothing on disk is known for sure: the store stops and cleans nothing up.
  await assert.rejects(b.get('users', 'key-0002'), (e: unknown) => e instanceof StorageError && e.code === 'IO');
  await b.close();
  assert.equal((await rawKeys(bDir, 's/\x00\x00\x00\x01')).length, 100, 'two batches of 50 written, the third refused');

  const r = await DurableStorage.open(bDir, { config });
  t.after(() => r.close());
  assert.deepEqual(await dumpState(r), before);
  assert.equal(r.stateGeneration, 0);
  await r.close();
  assert.equal((await rawKeys(bDir, 's/\x00\x00\x00\x01')).length, 0, 'open() removed the partial generation');
});

test('a crash right after a snapshot is recorded: reopen has the snapshot and the compacted log', async (t) => {
  const dir = await tempDir(t);
  const faults = new FaultyWrites({ purpose: 'snapshot-record', nth: 1, kind: 'crash' });
  const s = await seededStore(dir, 20, 30, 'S', conf(1, 2, 3), { wrapWrites: faults.wrapWrites });
  const meta = { index: 20, term: 1, confState: conf(1, 2, 3) };
  const expected = await dumpState(s);
  await assert.rejects(s.createSnapshot(meta), (e: unknown) => e instanceof StorageError && e.code === 'SIMULATED_CRASH');
  await assert.rejects(s.openSnapshotChunks(20), (e: unknown) => e instanceof StorageError && e.code === 'SIMULATED_CRASH');
  await s.close();

  const r = await DurableStorage.open(dir, { config });
  t.after(() => r.close());
  assert.deepEqual(r.snapshotMetadata, meta);
  assert.equal(r.firstIndex(), 18, 'compacted behind snapshotCatchupEntries (3)');
  assert.equal(r.lastIndex(), 20);
  assert.equal(r.applied, 20);
  assert.deepEqual(await dumpState(r), expected);
  const stream = await r.openSnapshotChunks(20);
  assert.deepEqual(stream.metadata, meta);
  await stream.chunks.return(undefined);
});
