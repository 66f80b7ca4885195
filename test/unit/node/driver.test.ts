// The raft driver's message timing, on a real store with a stalled write: a leader's appends leave
// before its own write is durable (Raft dissertation §10.2.1), a follower's acknowledgement does
// not, and messages that waited in the inbox count before the ticks that piled up meanwhile.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawNode } from '../../../src/raft/raw-node.ts';
import type { Message, NodeId } from '../../../src/raft/types.ts';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import type { StorageWrite } from '../../../src/storage/durable-storage.ts';
import { StateMachine } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { kvDomain } from '../../../src/state/kv.ts';
import { RaftDriver } from '../../../src/node/driver.ts';
import type { DriverTransport } from '../../../src/node/driver.ts';
import { waitFor } from './helpers.ts';

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
  async sendSnapshot(): Promise<void> {
    throw new Error('no snapshots here');
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
async function driverOf(id: NodeId): Promise<{ driver: RaftDriver; node: RawNode; transport: RecordingTransport; storage: DurableStorage; gate: { stall: boolean; waiting: number; release: () => void } }> {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-driver-test-'));
  dirs.push(dir);
  const storage = await DurableStorage.open(dir);
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
  const sm = new StateMachine({ get: (ks, k) => storage.getSync(ks, k) }, SESSION_LIMITS);
  sm.register(kvDomain);
  // rng 0: every randomized election timeout is exactly electionTick.
  const node = new RawNode({ id, storage, applied: storage.applied, electionTick: 10, heartbeatTick: 1, rng: () => 0, preVote: true, checkQuorum: true, readOnlyOption: 'safe' });
  const transport = new RecordingTransport();
  const driver = new RaftDriver({ id, node, storage, sm, transport, logger: quiet, onFatal: (e) => assert.fail(String(e)) });
  return { driver, node, transport, storage, gate };
}

test('a leader sends its appends before its own write is durable; it commits only with a follower', async () => {
  const { driver, transport, storage, gate } = await driverOf(1);
  driver.start();
  try {
    // Become leader of term 2: time out (rng 0: after exactly 10 ticks), then node 2's pre-vote and vote.
    for (let i = 0; i < 10; i++) driver.tick();
    await waitFor('a pre-vote request', () => transport.sent.some((m) => m.type === 'preVote'));
    driver.enqueue({ kind: 'messages', messages: [{ type: 'preVoteResp', from: 2, to: 1, term: 2, reject: false }] });
    await waitFor('a vote request', () => transport.sent.some((m) => m.type === 'vote'));
    driver.enqueue({ kind: 'messages', messages: [{ type: 'voteResp', from: 2, to: 1, term: 2, reject: false }] });
    await waitFor('leadership', () => driver.status().softState.role === 'leader');
    await waitFor('the no-op (index 2) on disk', () => storage.lastIndex() === 2);
    // Both followers acknowledge the no-op: they leave probing, so appends go out as soon as proposed.
    driver.enqueue({ kind: 'messages', messages: [2, 3].map((from) => ({ type: 'appResp' as const, from, to: 1, term: 2, index: 2, reject: false, rejectHint: 0, logTerm: 0 })) });
    await waitFor('the no-op committed', () => driver.status().hardState.commit === 2);
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
