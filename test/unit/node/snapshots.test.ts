// The node's compaction policy and the pins that keep a follower's log (src/node/snapshots.ts),
// against a store stand-in: what the duty decides, not how the store records it (that is
// test/unit/storage/snapshotter.test.ts, and the whole path test/unit/node/driver.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMPACT_SPREAD, PIN_MAX_LOG_FACTOR, PIN_MAX_MS, SnapshotDuty, compactThresholdBytes } from '../../../src/node/snapshots.ts';
import type { SnapshotSender } from '../../../src/node/snapshots.ts';
import type { DurableStorage } from '../../../src/storage/durable-storage.ts';
import type { MsgSnap, NodeId, ProgressStatus, SnapshotMetadata } from '../../../src/raft/types.ts';
import { waitFor } from './helpers.ts';

const BUDGET = 10_000;

/** The parts of DurableStorage the duty uses, with a log whose cost and head the test sets. */
class FakeStore {
  logBytes = 0;
  head = 0;
  applied = 100;
  readonly compactions: (number | undefined)[] = [];
  readonly config = { compactLogBytes: BUDGET };
  shouldCompact(threshold: number): boolean {
    return this.logBytes > threshold;
  }
  firstIndex(): number {
    return this.head + 1;
  }
  stats(): { logBytes: number } {
    return { logBytes: this.logBytes };
  }
  async compactLog(floor?: number): Promise<{ metadata: SnapshotMetadata; compactedThrough: number } | null> {
    this.compactions.push(floor);
    this.head = Math.min(this.applied, floor ?? Number.MAX_SAFE_INTEGER);
    return { metadata: { index: this.applied, term: 1, confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, compactedThrough: this.head };
  }
  async newestSendableStateFile(): Promise<SnapshotMetadata> {
    return { index: 60, term: 1, confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } };
  }
  async openSnapshotChunks(index: number): Promise<{ metadata: SnapshotMetadata; totalBytes: number; chunks: AsyncGenerator<Uint8Array> }> {
    async function* one(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(8);
    }
    return { metadata: { index, term: 1, confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, totalBytes: 8, chunks: one() };
  }
}

function duty(store: FakeStore, progress: Map<NodeId, ProgressStatus>, clock: { ms: number }): { d: SnapshotDuty; warnings: string[] } {
  const warnings: string[] = [];
  const d = new SnapshotDuty({
    id: 1,
    storage: store as unknown as DurableStorage,
    log: { info(): void {}, warn: (_o: object, m: string) => void warnings.push(m) },
    fail: (e) => assert.fail(String(e)),
    stopping: () => false,
    requestStateFile: () => Promise.reject(new Error('not in this test')),
    progress: () => progress,
    nowMs: () => clock.ms,
  });
  return { d, warnings };
}

const pr = (match: number): ProgressStatus => ({ match, next: match + 1, state: 'probe', recentActive: true, inflight: 0, isLearner: false });
const snapTo = (to: NodeId): MsgSnap => ({ type: 'snap', from: 1, to, term: 2, snapshot: { metadata: { index: 40, term: 1, confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array(0) } });
const sender: SnapshotSender = {
  async sendSnapshot(_to, _h, chunks): Promise<void> {
    for await (const _c of chunks) void _c;
  },
};

async function sendTo(d: SnapshotDuty, to: NodeId): Promise<boolean> {
  return new Promise((resolve) => d.stream(snapTo(to), sender, resolve));
}

test('compactThresholdBytes spreads members over [budget, budget × (1 + COMPACT_SPREAD)), a different point for each of ids 1..7', () => {
  const points = [1, 2, 3, 4, 5, 6, 7].map((id) => compactThresholdBytes(id, 1_000_000));
  for (const p of points) assert.ok(p >= 1_000_000 && p < 1_000_000 * (1 + COMPACT_SPREAD), String(p));
  assert.equal(new Set(points).size, points.length, `distinct: ${points.join(', ')}`);
  assert.ok(Math.min(...points.map((p, i) => Math.min(...points.filter((_, j) => j !== i).map((q) => Math.abs(p - q))))) > 1_000, 'at least 0.1% apart');
});

test('a follower sent a state file pins the log head at its index until its match reaches it', async () => {
  const store = new FakeStore();
  const progress = new Map([[2, pr(100)], [3, pr(10)]]);
  const clock = { ms: 0 };
  const { d } = duty(store, progress, clock);
  assert.equal(await sendTo(d, 3), true);
  assert.deepEqual([...d.pinned], [[3, 60]]);
  store.logBytes = BUDGET * 1.5;
  assert.equal(d.compactionDue(), true, 'the head (0) may still move up to the pin');
  d.compact();
  await waitFor('the compaction', () => store.compactions.length === 1);
  assert.deepEqual(store.compactions, [60], 'the floor is the file index');
  await waitFor('compaction finished', () => d.compactionDue() === false);
  assert.equal(store.head, 60);
  // Node 3 installed it: its match reaches 60, the pin goes, compaction is due again.
  progress.set(3, pr(60));
  assert.equal(d.compactionDue(), true);
  assert.deepEqual([...d.pinned], []);
});

test('a pin gives way after PIN_MAX_MS, or once the log costs more than PIN_MAX_LOG_FACTOR × compactLogBytes (logged)', async () => {
  const store = new FakeStore();
  const progress = new Map([[2, pr(100)], [3, pr(10)]]);
  const clock = { ms: 0 };
  const { d, warnings } = duty(store, progress, clock);
  await sendTo(d, 3);
  store.head = 60;
  store.logBytes = BUDGET * 1.5;
  assert.equal(d.compactionDue(), false, 'held at the pin');
  clock.ms = PIN_MAX_MS + 1;
  assert.equal(d.compactionDue(), true, 'the pin expired');
  assert.deepEqual([...d.pinned], []);

  await sendTo(d, 3);
  clock.ms += 1;
  assert.equal(d.compactionDue(), false);
  store.logBytes = BUDGET * PIN_MAX_LOG_FACTOR + 1;
  assert.equal(d.compactionDue(), true, 'the memory bound wins');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /outgrew its bound/);
});

test('a pin goes when the follower is no longer in the leader\'s progress (removed, or this node stopped leading)', async () => {
  const store = new FakeStore();
  const progress = new Map([[2, pr(100)], [3, pr(10)]]);
  const { d } = duty(store, progress, { ms: 0 });
  await sendTo(d, 3);
  store.head = 60;
  store.logBytes = BUDGET * 1.5;
  assert.equal(d.compactionDue(), false);
  progress.delete(3);
  assert.equal(d.compactionDue(), true);
});
