// A seeded random walk over the store's write API (appends with conflicting suffixes, hard state,
// applies with state changes, group commits, snapshots with compaction, reopen) checked against a
// plain in-memory model after every step and in full after every reopen.
// Replay a failure with STORAGE_TEST_SEED=<seed> (the seed is printed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import type { StorageWrite } from '../../../src/storage/durable-storage.ts';
import { StorageWriter } from '../../../src/storage/storage-writer.ts';
import type { Entry, HardState } from '../../../src/raft/types.ts';
import { bytes, conf, ent, tempDir, text } from './helpers.ts';

function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    // xorshift32: deterministic from the seed
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

interface Model {
  head: { index: number; term: number };
  log: Entry[]; // entries after head
  hs: HardState;
  applied: number;
  snapIndex: number;
  state: Map<string, string>;
}

const last = (m: Model): number => m.head.index + m.log.length;
const termAt = (m: Model, i: number): number => (i === m.head.index ? m.head.term : m.log[i - m.head.index - 1]!.term);

async function checkFull(s: DurableStorage, m: Model, seed: number, step: number): Promise<void> {
  const ctx = `seed ${seed} step ${step}`;
  assert.equal(s.firstIndex(), m.head.index + 1, ctx);
  assert.equal(s.lastIndex(), last(m), ctx);
  assert.equal(s.term(m.head.index), m.head.term, ctx);
  if (m.log.length > 0) assert.deepEqual(s.entries(m.head.index + 1, last(m) + 1, Infinity), m.log, ctx);
  assert.deepEqual(s.hardState, m.hs, ctx);
  assert.equal(s.applied, m.applied, ctx);
  assert.equal(s.snapshot().metadata.index, m.snapIndex, ctx);
  const got = new Map<string, string>();
  for (const r of await s.iterate('kv', { limit: 10_000 })) got.set(text(r.key)!, text(r.value)!);
  assert.deepEqual(got, m.state, ctx);
}

test('random walk over the write API matches a model across reopens (seeded)', async (t) => {
  const seed = Number(process.env.STORAGE_TEST_SEED ?? Date.now() % 1_000_000);
  console.log(`storage model test seed=${seed} (replay: STORAGE_TEST_SEED=${seed})`);
  const rand = rng(seed);
  const dir = await tempDir(t);
  // compactLogBytes far above what the walk writes: each compaction keeps exactly snapshotCatchupEntries.
  const config = { compactLogBytes: 1 << 20, snapshotCatchupEntries: 5 };
  let s = await DurableStorage.open(dir, { config });
  t.after(() => s.close());
  const m: Model = { head: { index: 0, term: 0 }, log: [], hs: { term: 1, vote: 0, commit: 0 }, applied: 0, snapIndex: 0, state: new Map() };
  await s.commit({ hardState: m.hs });
  let version = 0;

  const appendWrite = (): StorageWrite => {
    // Start anywhere after the commit index (a follower's conflicting suffix) up to the end.
    const lo = Math.max(m.hs.commit, m.head.index) + 1;
    const start = lo + rand(last(m) + 2 - lo);
    let term = Math.max(m.hs.term, termAt(m, start - 1));
    let hs = m.hs;
    if (rand(4) === 0) {
      term++;
      hs = { term, vote: rand(3), commit: m.hs.commit };
    }
    const es: Entry[] = [];
    for (let i = 0, n = 1 + rand(5); i < n; i++) es.push(ent(start + i, term, `v${version++}`));
    m.log = m.log.slice(0, start - m.head.index - 1).concat(es);
    m.hs = hs;
    return { entries: es, hardState: hs };
  };
  const commitWrite = (): StorageWrite => {
    m.hs = { ...m.hs, commit: m.hs.commit + rand(last(m) - m.hs.commit + 1) };
    return { hardState: m.hs };
  };
  const applyWrite = (): StorageWrite => {
    const to = m.applied + rand(m.hs.commit - m.applied + 1);
    const puts: [string, string, Uint8Array][] = [];
    const dels: [string, string][] = [];
    const used = new Set<string>();
    for (let i = 0, n = rand(4); i < n; i++) {
      const k = `k${rand(30)}`;
      if (used.has(k)) continue;
      used.add(k);
      if (rand(3) === 0) {
        dels.push(['kv', k]);
        m.state.delete(k);
      } else {
        const v = `x${version++}`;
        puts.push(['kv', k, bytes(v)]);
        m.state.set(k, v);
      }
    }
    m.applied = to;
    return { applied: to, state: { puts, dels } };
  };

  for (let step = 0; step < 250; step++) {
    const op = rand(10);
    if (process.env.STORAGE_TEST_TRACE) console.log(step, op, s.firstIndex(), s.term(s.firstIndex() - 1), JSON.stringify({ head: m.head, last: last(m), hs: m.hs, applied: m.applied, snap: m.snapIndex, terms: m.log.map((e) => e.term).join(",") }));
    if (op <= 3) await s.commit(appendWrite());
    else if (op === 4) await s.commit(commitWrite());
    else if (op === 5) await s.commit(applyWrite());
    else if (op === 6) {
      // A group commit: several writes, one fsync.
      const w = new StorageWriter(s);
      const before = s.stats().syncBatches;
      await Promise.all([w.submit(appendWrite()), w.submit(commitWrite()), w.submit(applyWrite())]);
      assert.equal(s.stats().syncBatches, before + 1, `seed ${seed} step ${step}`);
    } else if (op === 7 && m.applied > m.snapIndex && m.applied >= m.head.index) {
      const term = termAt(m, m.applied);
      // With a state file (offline recovery) or without one (the node's compaction): the same record.
      if (rand(2) === 0) await s.createSnapshot({ index: m.applied, term, confState: conf(1) });
      else assert.deepEqual((await s.compactLog())?.metadata, { index: m.applied, term, confState: s.confState }, `seed ${seed} step ${step}`);
      m.snapIndex = m.applied;
      const compactTo = Math.max(m.head.index, m.applied - config.snapshotCatchupEntries);
      if (compactTo > m.head.index) {
        const headTerm = termAt(m, compactTo);
        m.log = m.log.slice(compactTo - m.head.index);
        m.head = { index: compactTo, term: headTerm };
      }
    } else if (op === 8) {
      await s.close();
      s = await DurableStorage.open(dir, { config });
      if (process.env.STORAGE_TEST_TRACE) console.log('reopened', JSON.stringify(s.stats()), JSON.stringify(s.snapshot().metadata));
      await checkFull(s, m, seed, step);
    } else {
      await checkFull(s, m, seed, step);
    }
    assert.equal(s.lastIndex(), last(m), `seed ${seed} step ${step}`);
  }
  await s.close();
  s = await DurableStorage.open(dir, { config });
  await checkFull(s, m, seed, 250);
});
