// The raft driver's message timing, on a real store with a stalled write: a leader's appends leave
// before its own write is durable (Raft dissertation §10.2.1), a follower's acknowledgement does
// not, and messages that waited in the inbox count before the ticks that piled up meanwhile.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawNode } from '../../../src/raft/raw-node.ts';
import type { Message, NodeId, SnapshotMetadata } from '../../../src/raft/types.ts';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import type { StorageWrite } from '../../../src/storage/durable-storage.ts';
import type { StorageConfig } from '../../../src/storage/config.ts';
import { StateMachine } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { kvDomain } from '../../../src/state/kv.ts';
import { WriteBehind } from '../../../src/node/write-behind.ts';
import { RaftDriver } from '../../../src/node/driver.ts';
import { leaderLossDelayMs } from '../../../src/node/leader-loss.ts';
import type { DriverTransport } from '../../../src/node/driver.ts';
import { waitFor } from './helpers.ts';
import { encodeCommandBytes, readHeader, splitBatchEntry } from '../../../src/node/command.ts';
import { packValue } from '../../../src/state/command.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A transport that records what the driver sends, and when. */
class RecordingTransport implements DriverTransport {
  readonly sent: Message[] = [];
  send(messages: readonly Message[]): void {
    this.sent.push(...messages);
  }
  /** Snapshots streamed to followers: whom, the header, and the bytes read from the stream. */
  readonly snapshots: { to: NodeId; header: { term: number; metadata: SnapshotMetadata }; bytes: number }[] = [];
  async sendSnapshot(to: NodeId, header: { term: number; metadata: SnapshotMetadata }, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let bytes = 0;
    for await (const c of chunks) bytes += c.length;
    this.snapshots.push({ to, header, bytes });
  }
  addPeer(): void {}
  updatePeer(): void {}
  removePeer(): void {}
}

const quiet = { info(): void {}, warn(): void {}, error(o: object, m: string): void {
  console.error(m, o);
} };

/**
 * Node `id` of the voters [1, 2, 3], on a fresh store, with a driver whose store commits can be
 * held: while `stall` is set, each commit waits until released.
 */
async function driverOf(
  id: NodeId,
  extra: Partial<ConstructorParameters<typeof RaftDriver>[0]> = {},
  storageConfig: Partial<StorageConfig> = {},
): Promise<{ driver: RaftDriver; node: RawNode; transport: RecordingTransport; storage: DurableStorage; gate: { stall: boolean; waiting: number; release: () => void } }> {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-driver-test-'));
  dirs.push(dir);
  const storage = await DurableStorage.open(dir, { config: storageConfig });
  await storage.bootstrap({ voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
  const held: (() => void)[] = [];
  const gate = {
    stall: false,
    get waiting(): number {
      return held.length;
    },
    release(): void {
      gate.stall = false;
      for (const r of held.splice(0)) r();
    },
  };
  const commit = storage.commit.bind(storage);
  storage.commit = async (w: StorageWrite | readonly StorageWrite[], o?: { sync?: boolean }): Promise<void> => {
    if (gate.stall) await new Promise<void>((r) => held.push(r));
    return commit(w, o);
  };
  const stateView = new WriteBehind((ks, k) => storage.getSync(ks, k));
  const sm = new StateMachine(stateView, SESSION_LIMITS);
  sm.register(kvDomain);
  // rng 0: every randomized election timeout is exactly electionTick.
  const node = new RawNode({ id, storage, applied: storage.applied, electionTick: 10, heartbeatTick: 1, rng: () => 0, preVote: true, checkQuorum: true, readOnlyOption: 'safe' });
  const transport = new RecordingTransport();
  const driver = new RaftDriver({ id, node, storage, sm, stateView, transport, logger: quiet, onFatal: (e) => assert.fail(String(e)), ...extra });
  return { driver, node, transport, storage, gate };
}

/**
 * Node 1 of driverOf, elected leader of term 2 (it times out after exactly 10 ticks with rng 0,
 * then gets node 2's pre-vote and vote), its no-op committed by both followers, which therefore
 * left probing.
 */
async function electedLeader(storageConfig: Partial<StorageConfig> = {}, extra: Partial<ConstructorParameters<typeof RaftDriver>[0]> = {}): Promise<Awaited<ReturnType<typeof driverOf>>> {
  const d = await driverOf(1, extra, storageConfig);
  const { driver, transport, storage } = d;
  driver.start();
  for (let i = 0; i < 10; i++) driver.tick();
  await waitFor('a pre-vote request', () => transport.sent.some((m) => m.type === 'preVote'));
  driver.enqueue({ kind: 'messages', messages: [{ type: 'preVoteResp', from: 2, to: 1, term: 2, reject: false }] });
  await waitFor('a vote request', () => transport.sent.some((m) => m.type === 'vote'));
  driver.enqueue({ kind: 'messages', messages: [{ type: 'voteResp', from: 2, to: 1, term: 2, reject: false }] });
  await waitFor('leadership', () => driver.status().softState.role === 'leader');
  await waitFor('the no-op (index 2) on disk', () => storage.lastIndex() === 2);
  driver.enqueue({ kind: 'messages', messages: [2, 3].map((from) => ({ type: 'appResp' as const, from, to: 1, term: 2, index: 2, reject: false, rejectHint: 0, logTerm: 0 })) });
  await waitFor('the no-op committed', () => driver.status().hardState.commit === 2);
  return d;
}

test('a leader sends its appends before its own write is durable; it commits only with a follower', async () => {
  // Leader of term 2, its no-op acknowledged by both followers: appends go out as soon as proposed.
  const { driver, transport, storage, gate } = await electedLeader();
  try {
    // A proposal while the store is stalled: the appends carrying it leave before the write.
    gate.stall = true;
    const before = transport.sent.length;
    let outcome: unknown = null;
    driver.enqueue({ kind: 'propose', data: new TextEncoder().encode('x'), reply: (o) => (outcome = o) });
    await waitFor('the write to stall', () => gate.waiting === 1);
    const apps = transport.sent.slice(before).filter((m) => m.type === 'app' && m.entries.some((e) => e.index === 3));
    assert.deepEqual(apps.map((m) => m.to).sort(), [2, 3], 'both followers got entry 3 while the leader\'s write of it is in flight');
    assert.equal(storage.lastIndex(), 2, 'entry 3 is not durable on the leader yet');
    // A follower acknowledges it: entry 3 is on a majority (node 2 and, once durable, the leader).
    driver.enqueue({ kind: 'messages', messages: [{ type: 'appResp', from: 2, to: 1, term: 2, index: 3, reject: false, rejectHint: 0, logTerm: 0 }] });
    gate.release();
    await waitFor('the proposal applied', () => outcome !== null);
    assert.equal((outcome as { kind: string }).kind, 'applied');
    assert.equal(storage.lastIndex(), 3);
    // A Ready that only moves the commit index owes no fsync: its messages leave before its write.
    let second: unknown = null;
    driver.enqueue({ kind: 'propose', data: new TextEncoder().encode('y'), reply: (o) => (second = o) });
    await waitFor('entry 4 on disk', () => storage.lastIndex() === 4);
    gate.stall = true;
    const mark = transport.sent.length;
    driver.enqueue({ kind: 'messages', messages: [{ type: 'appResp', from: 3, to: 1, term: 2, index: 4, reject: false, rejectHint: 0, logTerm: 0 }] });
    await waitFor('the apply write of entry 4 to stall', () => gate.waiting === 1);
    assert.deepEqual(
      transport.sent.slice(mark).filter((m) => m.type === 'app' && m.commit === 4).map((m) => m.to).sort(),
      [2, 3],
      'the new commit index went out while the write applying entry 4 is in flight',
    );
    assert.equal(second, null, 'the proposal is answered only after its write');
    gate.release();
    await waitFor('the second proposal applied', () => second !== null);
  } finally {
    gate.release();
    await driver.stop();
    await storage.close();
  }
});

test('a follower acknowledges appended entries only after its write is durable', async () => {
  const { driver, transport, storage, gate } = await driverOf(2);
  driver.start();
  try {
    gate.stall = true;
    driver.enqueue({ kind: 'messages', messages: [{ type: 'app', from: 1, to: 2, term: 2, index: 1, logTerm: 1, commit: 1, entries: [{ term: 2, index: 2, type: 'normal', data: new Uint8Array(0) }] }] });
    await waitFor('the write to stall', () => gate.waiting === 1);
    assert.equal(transport.sent.filter((m) => m.type === 'appResp').length, 0, 'no acknowledgement before the entry is durable');
    gate.release();
    await waitFor('the acknowledgement', () => transport.sent.some((m) => m.type === 'appResp' && !m.reject && m.index === 2));
    assert.equal(storage.lastIndex(), 2);
  } finally {
    gate.release();
    await driver.stop();
    await storage.close();
  }
});

test('a heartbeat waiting in the inbox counts before the ticks that piled up with it', async () => {
  const { driver, node, transport, storage } = await driverOf(2);
  try {
    // Follower of leader 1 in term 2, 8 of its 10 election ticks gone (stepped on the core directly).
    node.step({ type: 'app', from: 1, to: 2, term: 2, index: 1, logTerm: 1, commit: 1, entries: [] });
    for (let i = 0; i < 8; i++) node.tick();
    // While the loop was busy, a heartbeat and 5 ticks arrived: 8 + 5 would be past the timeout.
    driver.enqueue({ kind: 'messages', messages: [{ type: 'heartbeat', from: 1, to: 2, term: 2, commit: 1, context: null }] });
    for (let i = 0; i < 5; i++) driver.tick();
    driver.start();
    await waitFor('the heartbeat answered', () => transport.sent.some((m) => m.type === 'heartbeatResp'));
    await waitFor('the term on disk', () => storage.hardState.term === 2);
    assert.equal(transport.sent.filter((m) => m.type === 'preVote').length, 0, 'no election while the leader is heard from');
    assert.equal(driver.status().softState.role, 'follower');
    assert.equal(driver.status().softState.lead, 1);
  } finally {
    await driver.stop();
    await storage.close();
  }
});

/** A driver timer the test fires by hand: the delay of leaderLost, armed with its length. */
function manualTimer(): { set: (fn: () => void, ms: number) => () => void; armed: { fn: () => void; ms: number; cancelled: boolean }[] } {
  const armed: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  return {
    armed,
    set(fn, ms) {
      const a = { fn, ms, cancelled: false };
      armed.push(a);
      return () => (a.cancelled = true);
    },
  };
}

/** Follower `self` of leader 1 in term 2 (stepped on the core directly). */
function followLeader1(node: RawNode, self: NodeId = 2): void {
  node.step({ type: 'app', from: 1, to: self, term: 2, index: 1, logTerm: 1, commit: 1, entries: [] });
}

test('a follower that loses its leader\'s connection forgets it and campaigns after the random delay, with no election timeout', async () => {
  const timer = manualTimer();
  const { driver, node, transport, storage } = await driverOf(2, { leaderLossSlotMs: 100, random: () => 0.5, setTimer: timer.set });
  try {
    followLeader1(node);
    driver.start();
    driver.enqueue({ kind: 'unreachable', id: 3 });
    driver.enqueue({ kind: 'unreachable', id: 1 });
    await waitFor('the leader forgotten', () => driver.status().softState.lead === 0);
    assert.equal(timer.armed.length, 1, 'one delay, for the leader only (peer 3 is not the leader)');
    assert.equal(timer.armed[0]!.ms, 25, 'first of the other voters [2, 3]: rank 0, plus 0.5 of half a 100 ms slot');
    assert.equal(transport.sent.filter((m) => m.type === 'preVote').length, 0, 'no campaign before the delay');
    timer.armed[0]!.fn();
    await waitFor('pre-votes to both peers', () => transport.sent.filter((m) => m.type === 'preVote').length === 2);
    assert.equal(driver.status().softState.role, 'preCandidate');
    // No tick was ever given: the election timeout played no part.
    driver.enqueue({ kind: 'unreachable', id: 1 });
    assert.equal(timer.armed.length, 1, 'a pre-candidate has no leader to lose');
  } finally {
    await driver.stop();
    await storage.close();
  }
});

test('a leader heard from again before the delay ends is followed, not replaced; the switch off keeps the leader', async () => {
  const timer = manualTimer();
  const { driver, node, transport, storage } = await driverOf(2, { leaderLossSlotMs: 100, random: () => 0, setTimer: timer.set });
  try {
    followLeader1(node);
    driver.enqueue({ kind: 'unreachable', id: 1 });
    driver.enqueue({ kind: 'messages', messages: [{ type: 'heartbeat', from: 1, to: 2, term: 2, commit: 1, context: null }] });
    driver.start();
    await waitFor('the heartbeat answered', () => transport.sent.some((m) => m.type === 'heartbeatResp'));
    assert.equal(timer.armed.length, 1);
    timer.armed[0]!.fn();
    // Processed in order after the campaign check: by the time this answers, the check has run.
    driver.enqueue({ kind: 'messages', messages: [{ type: 'heartbeat', from: 1, to: 2, term: 2, commit: 1, context: null }] });
    await waitFor('the second heartbeat answered', () => transport.sent.filter((m) => m.type === 'heartbeatResp').length === 2);
    assert.equal(transport.sent.filter((m) => m.type === 'preVote' || m.type === 'vote').length, 0);
    assert.equal(driver.status().softState.lead, 1);
  } finally {
    await driver.stop();
    await storage.close();
  }
  const off = await driverOf(2, { leaderLossSlotMs: 0, setTimer: timer.set });
  try {
    followLeader1(off.node);
    off.driver.start();
    off.driver.enqueue({ kind: 'unreachable', id: 1 });
    off.driver.enqueue({ kind: 'messages', messages: [{ type: 'heartbeat', from: 1, to: 2, term: 2, commit: 1, context: null }] });
    await waitFor('the heartbeat answered', () => off.transport.sent.some((m) => m.type === 'heartbeatResp'));
    assert.equal(timer.armed.length, 1, 'switched off: no delay armed');
    assert.equal(off.driver.status().softState.lead, 1);
  } finally {
    await off.driver.stop();
    await off.storage.close();
  }
});

test('leaderLossDelayMs: survivors ask in the order of their ids, half a slot apart at least; non-voters never', () => {
  const cs = { voters: [1, 2, 3, 4, 5], learners: [6], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const at = (self: number, r: number) => leaderLossDelayMs(self, 3, cs, 80, () => r);
  assert.deepEqual([1, 2, 4, 5].map((id) => at(id, 0)), [0, 80, 160, 240]);
  assert.deepEqual([1, 2, 4, 5].map((id) => at(id, 0.999)), [39, 119, 199, 279]);
  assert.equal(at(6, 0), null, 'a learner does not campaign');
  assert.equal(at(3, 0), null, 'nor the lost leader itself');
  // A joint configuration: the outgoing voters count too.
  assert.equal(leaderLossDelayMs(7, 1, { ...cs, voters: [1, 7], votersOutgoing: [1, 2, 3] }, 80, () => 0), 160);
});

test('a survivor whose turn comes while another survivor\'s election is under way leaves it to them', async () => {
  const timer = manualTimer();
  const { driver, node, transport, storage } = await driverOf(3, { leaderLossSlotMs: 100, random: () => 0, setTimer: timer.set });
  try {
    followLeader1(node, 3);
    driver.start();
    driver.enqueue({ kind: 'unreachable', id: 1 });
    await waitFor('the leader forgotten', () => driver.status().softState.lead === 0);
    assert.equal(timer.armed[0]!.ms, 100, 'second of the other voters [2, 3]: one slot');
    // Survivor 2 (first in turn) asks for votes in term 3; we grant it.
    driver.enqueue({ kind: 'messages', messages: [{ type: 'vote', from: 2, to: 3, term: 3, index: 1, logTerm: 1, transfer: false }] });
    await waitFor('the vote granted', () => transport.sent.some((m) => m.type === 'voteResp' && !m.reject));
    timer.armed[0]!.fn();
    driver.enqueue({ kind: 'messages', messages: [{ type: 'vote', from: 2, to: 3, term: 3, index: 1, logTerm: 1, transfer: false }] });
    await waitFor('the repeated request answered after the campaign check', () => transport.sent.filter((m) => m.type === 'voteResp').length === 2);
    assert.equal(transport.sent.filter((m) => m.type === 'preVote' || m.type === 'vote').length, 0, 'no competing campaign');
    assert.equal(driver.status().softState.role, 'follower');
  } finally {
    await driver.stop();
    await storage.close();
  }
});

test('commands proposed in one pass share one entry, stamped with the leader clock, and each gets its own result', async () => {
  const entrySizes: number[] = [];
  const d = await electedLeader({}, { observer: { leaderChanged: () => undefined, snapshot: () => undefined, proposedEntry: (n) => entrySizes.push(n) } });
  const { driver, transport, storage, gate } = d;
  try {
    gate.stall = true; // hold the loop in its write, so the next proposals meet in one pass
    driver.enqueue({ kind: 'propose', data: encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, packValue(['kv', 'put', { key: 'a', value: 'warm' }])), reply: () => undefined });
    await waitFor('the first write to stall', () => gate.waiting === 1);
    const outcomes: unknown[] = [];
    const cmds = [
      encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, packValue(['kv', 'put', { key: 'a', value: '1' }])),
      encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, packValue(['kv', 'append', { key: 'a', value: '2' }])),
      encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, new Uint8Array([0xc1])), // a payload that is not msgpack
      encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, packValue(['kv', 'append', { key: 'a', value: '3' }])),
    ];
    cmds.forEach((data, i) => driver.enqueue({ kind: 'propose', data, reply: (o) => (outcomes[i] = o) }));
    const mark = transport.sent.length;
    gate.release();
    await waitFor('entry 4 on disk', () => storage.lastIndex() === 4);
    const apps = transport.sent.slice(mark).filter((m) => m.type === 'app' && m.entries.some((e) => e.index === 4));
    assert.ok(apps.length > 0);
    const entry = apps[0]!.type === 'app' ? apps[0]!.entries.find((e) => e.index === 4)! : null;
    const inside = splitBatchEntry(entry!.data)!;
    assert.equal(inside.length, 4, 'the four commands of the pass went out as one entry');
    assert.deepEqual(entrySizes, [1, 4], 'the observer (raftauth_proposed_entry_commands) saw both entries');
    for (const c of inside) assert.ok(Math.abs(readHeader(c).ts - Date.now()) < 60_000, 'each command carries the leader clock');
    assert.equal(readHeader(cmds[0]!).ts, 0, 'the proposer\'s bytes are not changed');
    driver.enqueue({ kind: 'messages', messages: [{ type: 'appResp', from: 2, to: 1, term: 2, index: 4, reject: false, rejectHint: 0, logTerm: 0 }] });
    await waitFor('all four answered', () => outcomes.filter(Boolean).length === 4);
    assert.deepEqual(
      outcomes.map((o) => (o as { kind: string; result: { ok: boolean; code?: string; value?: unknown } }).result).map((r) => (r.ok ? r.value : r.code)),
      [{}, { value: '12' }, 'MALFORMED_COMMAND', { value: '123' }],
      'results in order, one per command; the malformed one changes nothing and fails alone',
    );
  } finally {
    gate.release();
    await driver.stop();
    await storage.close();
  }
});

test('compaction copies no state; a state file written for a follower behind the log does not hold up the loop (issue 15)', async () => {
  const d = await electedLeader({ compactLogBytes: 2048, snapshotCatchupEntries: 1 });
  const { driver, storage, transport } = d;
  let releaseFile!: () => void;
  const held = new Promise<void>((r) => (releaseFile = r));
  const fileIndexes: number[] = [];
  const write = storage.writeStateFile.bind(storage);
  storage.writeStateFile = (meta) => {
    fileIndexes.push(meta.index);
    // The LevelDB snapshot is taken at the call, as the real one does; the file waits for the test.
    const p = write(meta);
    return held.then(() => p);
  };
  const put = (i: number): Promise<unknown> =>
    new Promise((resolve) => driver.enqueue({ kind: 'propose', data: encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, packValue(['kv', 'put', { key: `k${i}`, value: 'v' }])), reply: resolve }));
  // The followers acknowledge whatever they are sent, so entries commit; node 3 until it goes quiet.
  let node3Acks = true;
  const ack = setInterval(() => {
    const index = storage.lastIndex();
    driver.enqueue({ kind: 'messages', messages: [{ type: 'appResp', from: 2, to: 1, term: 2, index, reject: false, rejectHint: 0, logTerm: 0 }] });
    if (node3Acks) driver.enqueue({ kind: 'messages', messages: [{ type: 'appResp', from: 3, to: 1, term: 2, index, reject: false, rejectHint: 0, logTerm: 0 }] });
  }, 5);
  try {
    let n = 0;
    while (storage.snapshotMetadata.index <= 2 && n < 60) await put(n++);
    await waitFor('a compaction', () => storage.snapshotMetadata.index > 2);
    assert.ok(storage.firstIndex() > 3, `the log was compacted (first index ${storage.firstIndex()})`);
    assert.deepEqual(fileIndexes, [], 'compacting wrote no state file');
    assert.deepEqual((await readdir(storage.snapDir)).filter((f) => f.endsWith('.snap')), ['1-1.snap'], 'only the bootstrap file is on disk');
    // Node 3 goes quiet; the log grows past twice its budget and is compacted past node 3's match.
    await waitFor('node 3\'s last acknowledgement counted', async () => {
      await put(n++);
      return (driver.status().progress?.get(3)?.match ?? 0) >= storage.lastIndex() - 1;
    });
    node3Acks = false;
    const m3 = driver.status().progress!.get(3)!.match;
    while (storage.firstIndex() - 1 <= m3 && n < 300) await put(n++);
    assert.ok(storage.firstIndex() - 1 > m3, `compacted past node 3's match ${m3} once the log outgrew its bound (head ${storage.firstIndex() - 1})`);
    // Node 3 rejects the last append it was sent, from its last index: the leader probes from
    // there, which is compacted, so the core sends a snapshot.
    const lastApp = transport.sent.filter((m): m is Extract<Message, { type: 'app' }> => m.type === 'app' && m.to === 3).at(-1)!;
    driver.enqueue({ kind: 'messages', messages: [{ type: 'appResp', from: 3, to: 1, term: 2, index: lastApp.index, reject: true, rejectHint: m3, logTerm: 0 }] });
    await waitFor('a state file started for node 3', () => fileIndexes.length === 1);
    assert.ok(fileIndexes[0]! >= storage.snapshotMetadata.index, 'at or past the compaction point');
    // The file is still being written: the loop goes on applying new writes.
    for (let i = 0; i < 6; i++) {
      const o = await Promise.race([put(n++), new Promise((r) => setTimeout(() => r({ kind: 'not answered within 5 s' }), 5_000))]);
      assert.equal((o as { kind: string }).kind, 'applied', `write ${n} while the state file is held`);
    }
    assert.ok(driver.appliedIndex() > fileIndexes[0]!, 'writes applied while the file was held');
    assert.equal(transport.snapshots.length, 0, 'nothing sent before the file is written');
    releaseFile();
    await waitFor('the state file sent to node 3', () => transport.snapshots.length === 1);
    const sent = transport.snapshots[0]!;
    assert.equal(sent.to, 3);
    assert.equal(sent.header.metadata.index, fileIndexes[0], 'the header names the file, not the snapshot the core named');
    assert.equal(sent.header.metadata.term, 2);
    assert.ok(sent.bytes > 0);
    // Node 3 installs it and catches up from the log.
    node3Acks = true;
    await put(n++);
    await waitFor('node 3 caught up', () => (driver.status().progress?.get(3)?.match ?? 0) >= storage.lastIndex() - 1);
    assert.equal(fileIndexes.length, 1, 'one file');
  } finally {
    clearInterval(ack);
    releaseFile();
    await driver.stop();
    await storage.close();
  }
});

// Asynchronous storage writes (issue 14, decision 6): the loop does not wait for a write. These
// run with 8 writes in flight (raft.maxWritesInFlight); the default of 1 is the case above where a
// proposal waits in the inbox while the loop's write is stalled.

test('with one write in flight (the default) the loop still steps messages during a write, and proposals gathered meanwhile leave as one Ready', async () => {
  const { driver, transport, storage, gate } = await electedLeader();
  try {
    gate.stall = true;
    const put = (key: string): Uint8Array => encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, packValue(['kv', 'put', { key, value: 'v' }]));
    const outcomes: string[] = [];
    driver.enqueue({ kind: 'propose', data: put('a'), reply: (o) => outcomes.push(`a:${o.kind}`) });
    await waitFor('the write of entry 3 to stall', () => gate.waiting === 1);
    const mark = transport.sent.length;
    driver.enqueue({ kind: 'propose', data: put('b'), reply: (o) => outcomes.push(`b:${o.kind}`) });
    driver.enqueue({ kind: 'propose', data: put('c'), reply: (o) => outcomes.push(`c:${o.kind}`) });
    // The follower's acknowledgement of entry 3 is stepped while the write is stalled: the two
    // followers are a majority, so entry 3 commits without the leader's own write.
    driver.enqueue({ kind: 'messages', messages: [2, 3].map((from) => ({ type: 'appResp' as const, from, to: 1, term: 2, index: 3, reject: false, rejectHint: 0, logTerm: 0 })) });
    await waitFor('commit 3 while the write is stalled', () => driver.status().hardState.commit === 3);
    assert.equal(driver.writesInFlight(), 1);
    assert.equal(transport.sent.slice(mark).filter((m) => m.type === 'app').length, 0, 'no new Ready while the one write is in flight');
    gate.release();
    await waitFor('the gathered proposals sent', () => transport.sent.slice(mark).some((m) => m.type === 'app' && m.to === 2 && m.entries.length > 0));
    const apps = transport.sent.slice(mark).filter((m) => m.type === 'app' && m.to === 2 && m.entries.length > 0);
    assert.equal(apps.length, 1, 'the two proposals gathered during the write left in one append');
    const commands = apps[0]!.type === 'app' ? apps[0]!.entries.reduce((n, e) => n + (splitBatchEntry(e.data)?.length ?? 0), 0) : 0;
    assert.equal(commands, 2, 'carrying both commands');
    await waitFor('a answered', () => outcomes.includes('a:applied'));
  } finally {
    gate.release();
    await driver.stop();
    await storage.close();
  }
});

test('while a write is stalled the leader goes on: a later proposal is replicated, and answers come in order once both writes are durable', async () => {
  const { driver, transport, storage, gate } = await electedLeader({}, { maxWritesInFlight: 8 });
  try {
    gate.stall = true;
    const outcomes: string[] = [];
    const put = (key: string, value: string): Uint8Array => encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, packValue(['kv', 'put', { key, value }]));
    driver.enqueue({ kind: 'propose', data: put('a', '1'), reply: (o) => outcomes.push(`a:${o.kind}`) });
    await waitFor('the write of entry 3 to stall', () => gate.waiting === 1);
    const mark = transport.sent.length;
    driver.enqueue({ kind: 'propose', data: put('b', '2'), reply: (o) => outcomes.push(`b:${o.kind}`) });
    await waitFor('entry 4 sent to both followers', () => transport.sent.slice(mark).filter((m) => m.type === 'app' && m.entries.some((e) => e.index === 4)).length === 2);
    assert.equal(gate.waiting, 1, 'still one commit in flight: entry 4 waits in the storage writer, merged into the next group');
    assert.equal(storage.lastIndex(), 2, 'neither entry is durable on the leader yet');
    // Both followers acknowledge both entries; the leader's own write is still stalled, and the
    // two followers are a majority: the entries commit without it, and apply in memory.
    driver.enqueue({ kind: 'messages', messages: [2, 3].map((from) => ({ type: 'appResp' as const, from, to: 1, term: 2, index: 4, reject: false, rejectHint: 0, logTerm: 0 })) });
    await waitFor('commit 4 with the followers alone', () => driver.status().hardState.commit === 4);
    assert.deepEqual(outcomes, [], 'no answer before the writes that apply them are done');
    assert.equal(driver.appliedIndex(), 2, 'the applied index moves only when the state is in the store');
    gate.release();
    await waitFor('both answered', () => outcomes.length === 2);
    assert.deepEqual(outcomes, ['a:applied', 'b:applied'], 'in log order');
    assert.equal(driver.appliedIndex(), 4);
    assert.equal(storage.lastIndex(), 4);
  } finally {
    gate.release();
    await driver.stop();
    await storage.close();
  }
});

test('apply sees the state of a write still in flight (the write-behind view)', async () => {
  const { driver, storage, gate } = await electedLeader({}, { maxWritesInFlight: 8 });
  try {
    const cmd = (op: string, value: string): Uint8Array => encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, packValue(['kv', op, { key: 'k', value }]));
    // Both followers: the leader's own write of entry 4 waits behind the stalled one.
    const ack = (index: number): void => void driver.enqueue({ kind: 'messages', messages: [2, 3].map((from) => ({ type: 'appResp' as const, from, to: 1, term: 2, index, reject: false, rejectHint: 0, logTerm: 0 })) });
    let first: unknown = null;
    driver.enqueue({ kind: 'propose', data: cmd('put', '1'), reply: (o) => (first = o) });
    await waitFor('entry 3 durable', () => storage.lastIndex() === 3);
    gate.stall = true;
    ack(3);
    await waitFor('the write applying entry 3 to stall', () => gate.waiting === 1);
    assert.equal(storage.getSync('kv', 'k'), undefined, 'k is not in the store yet');
    let second: { kind: string; result?: { ok: boolean; value?: unknown } } | null = null;
    driver.enqueue({ kind: 'propose', data: cmd('append', '2'), reply: (o) => (second = o as typeof second) });
    await waitFor('entry 4 handed out', () => driver.status().lastIndex === 4);
    ack(4);
    await waitFor('commit 4', () => driver.status().hardState.commit === 4);
    gate.release();
    await waitFor('both answered', () => first !== null && second !== null);
    assert.deepEqual(second!.result, { ok: true, value: { value: '12' } }, 'the append read the put of the write in flight');
  } finally {
    gate.release();
    await driver.stop();
    await storage.close();
  }
});

test('a follower\'s acknowledgement with nothing of its own to write still waits for the write in flight', async () => {
  const { driver, transport, storage, gate } = await driverOf(2, { maxWritesInFlight: 8 });
  driver.start();
  try {
    gate.stall = true;
    const app: Message = { type: 'app', from: 1, to: 2, term: 2, index: 1, logTerm: 1, commit: 1, entries: [{ term: 2, index: 2, type: 'normal', data: new Uint8Array(0) }] };
    driver.enqueue({ kind: 'messages', messages: [app] });
    await waitFor('the write of entry 2 to stall', () => gate.waiting === 1);
    // The leader resends the same append (a retry): the entry is already in the log, being
    // written; the core acknowledges it without a new entry, so its Ready owes no fsync.
    driver.enqueue({ kind: 'messages', messages: [app] });
    await waitFor('the duplicate\'s Ready queued behind the stalled write', () => driver.writesInFlight() === 2);
    assert.equal(transport.sent.filter((m) => m.type === 'appResp').length, 0, 'no acknowledgement of entry 2 before it is durable');
    gate.release();
    await waitFor('the acknowledgements', () => transport.sent.filter((m) => m.type === 'appResp' && !m.reject && m.index === 2).length === 2);
    assert.equal(storage.lastIndex(), 2);
  } finally {
    gate.release();
    await driver.stop();
    await storage.close();
  }
});
