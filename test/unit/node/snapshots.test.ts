// The node's compaction policy and the log it keeps for lagging members (src/node/snapshots.ts),
// against a store stand-in: what the duty decides, not how the store records it (that is
// test/unit/storage/snapshotter.test.ts, and the whole path test/unit/node/driver.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMPACT_SPREAD, LOG_HOLD_FACTOR, SnapshotDuty, compactThresholdBytes } from '../../../src/node/snapshots.ts';
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

function duty(store: FakeStore, progress: Map<NodeId, ProgressStatus> | null): { d: SnapshotDuty; warnings: string[] } {
  const warnings: string[] = [];
  const d = new SnapshotDuty({
    id: 1,
    storage: store as unknown as DurableStorage,
    log: { info(): void {}, warn: (_o: object, m: string) => void warnings.push(m) },
    fail: (e) => assert.fail(String(e)),
    stopping: () => false,
    requestStateFile: () => Promise.reject(new Error('not in this test')),
    progress: () => progress,
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

test('the log head stays at or below the lowest match of the other members', async () => {
  const store = new FakeStore();
  // Node 1 (this one) leads; node 3 lags at 10.
  const progress = new Map([[1, pr(100)], [2, pr(100)], [3, pr(10)]]);
  const { d } = duty(store, progress);
  store.logBytes = BUDGET * 1.5;
  assert.equal(d.compactionDue(), true, 'the head (0) may still move up to 10');
  d.compact();
  await waitFor('the compaction', () => store.compactions.length === 1);
  assert.deepEqual(store.compactions, [10], 'the floor is node 3\'s match');
  await waitFor('compaction finished', () => d.compactionDue() === false);
  assert.equal(store.head, 10, 'held at node 3\'s match');
  // Node 3 catches up (it installed a state file at 60, say): the head may move again.
  progress.set(3, pr(60));
  assert.equal(d.compactionDue(), true);
  d.compact();
  await waitFor('the second compaction', () => store.compactions.length === 2);
  assert.deepEqual(store.compactions, [10, 60]);
});

test('past LOG_HOLD_FACTOR × compactLogBytes the memory bound wins: compaction ignores the lagging member (logged once)', async () => {
  const store = new FakeStore();
  const progress = new Map([[1, pr(100)], [2, pr(100)], [3, pr(10)]]);
  const { d, warnings } = duty(store, progress);
  store.head = 10;
  store.logBytes = BUDGET * 1.5;
  assert.equal(d.compactionDue(), false, 'held at node 3\'s match');
  store.logBytes = BUDGET * LOG_HOLD_FACTOR + 1;
  assert.equal(d.compactionDue(), true, 'the memory bound wins');
  assert.equal(d.compactionDue(), true);
  assert.equal(warnings.length, 1, 'one warning per episode');
  assert.match(warnings[0]!, /outgrew its bound/);
  d.compact();
  await waitFor('the compaction', () => store.compactions.length === 1);
  assert.deepEqual(store.compactions, [undefined], 'no floor');
});

test('a node that does not lead compacts without a floor; a state file being chosen holds compaction off', async () => {
  const store = new FakeStore();
  const { d } = duty(store, null);
  store.head = 10;
  store.logBytes = BUDGET * 1.5;
  assert.equal(d.compactionDue(), true);
  // While a send chooses its file (here: waits on a file that never comes), nothing is compacted.
  const progress = new Map([[1, pr(100)], [2, pr(100)], [3, pr(100)]]);
  let release!: (m: SnapshotMetadata) => void;
  const waiting = new SnapshotDuty({
    id: 1,
    storage: Object.assign(new FakeStore(), { logBytes: BUDGET * 1.5, newestSendableStateFile: async () => null }) as unknown as DurableStorage,
    log: { info(): void {}, warn(): void {} },
    fail: (e) => assert.fail(String(e)),
    stopping: () => false,
    requestStateFile: () => new Promise((r) => (release = r)),
    progress: () => progress,
  });
  assert.equal(waiting.compactionDue(), true);
  const sent = sendTo(waiting, 3);
  assert.equal(waiting.compactionDue(), false, 'held while the file is chosen');
  await waitFor('the file request', () => release !== undefined);
  release({ index: 90, term: 1, confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } });
  assert.equal(await sent, true);
  assert.equal(waiting.compactionDue(), true);
});
