// The simulated node's disk model and Ready handling, on one node driven by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, NodeId } from '../../src/raft/types.ts';
import { MAX_BATCH_ENTRY_BYTES, MAX_COMMANDS_PER_ENTRY, splitBatchEntry } from '../../src/node/command.ts';
import { SafetyChecker } from './checks.ts';
import { DEFAULT_SESSION_LIMITS } from './kv-state-machine.ts';
import { SimNode, type ClientReply, type ClientRequest, type NodeHost, type NodeSettings, type SimBugs } from './node.ts';
import { Rng } from './rng.ts';

function harness(simBugs: SimBugs = {}, voters: readonly NodeId[] = [1], maxPendingProposals = 16) {
  let now = 0;
  const disk: { node: NodeId; inc: number; atUs: number }[] = [];
  const sent: Message[] = [];
  const replies: { req: ClientRequest; reply: ClientReply }[] = [];
  const checker = new SafetyChecker(() => now);
  const host: NodeHost = {
    nowUs: () => now,
    scheduleDiskDone: (node, inc, atUs) => disk.push({ node, inc, atUs }),
    sendPeer: (m) => sent.push(m),
    reply: (_node, req, reply) => replies.push({ req, reply }),
    onConfChangeApplied: () => {},
    onVoteCast: () => {},
    checker,
    trace: null,
  };
  const settings: NodeSettings = {
    electionTick: 10,
    heartbeatTick: 1,
    preVote: false,
    checkQuorum: false,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 16,
    maxCommittedSizePerReady: null,
    maxUncommittedEntriesSize: null,
    snapshotEveryEntries: 1000,
    keepEntries: 10,
    sessionLimits: DEFAULT_SESSION_LIMITS,
    maxPendingProposals,
    maxPendingReads: 16,
    readTimeoutUs: 1_000_000,
    coreBugs: {},
    simBugs,
    maxWritesInFlight: 1,
  };
  const node = new SimNode(1, { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false }, settings, host, new Rng(1), { latencyMinUs: 1_000, latencyMaxUs: 1_000, slowP: 0, slowMaxUs: 0 });
  node.start();
  /** Complete pending disk writes until none is left. */
  const flush = (): void => {
    while (disk.length > 0) {
      const d = disk.shift()!;
      now = Math.max(now, d.atUs);
      node.diskDone(d.inc);
    }
  };
  return { node, disk, sent, replies, checker, flush, advance: (us: number) => (now += us) };
}

test('node: nothing reaches storage before the disk completes, and a crash loses the pending write', () => {
  const h = harness();
  const last0 = h.node.storage.lastIndex();
  h.node.campaign();
  h.flush(); // the vote and the leader's no-op become durable
  assert.equal(h.node.role, 'leader');
  const last1 = h.node.storage.lastIndex();
  assert.ok(last1 > last0, 'the no-op is durable after the write completes');
  const req: ClientRequest = { clientId: 1, opId: 1, attempt: 1, cmd: { type: 'register' } };
  h.node.handleRequest(req);
  assert.equal(h.disk.length, 1, 'the proposal waits on the disk');
  assert.equal(h.node.storage.lastIndex(), last1, 'not durable yet');
  assert.equal(h.replies.length, 0, 'not answered before it is durable and applied');
  h.node.crash();
  h.flush(); // the write of the previous life completes into nothing
  assert.equal(h.node.storage.lastIndex(), last1, 'the un-fsynced proposal is gone');
  h.node.start();
  assert.equal(h.node.storage.initialState().hardState.vote, 1, 'the vote survived');
  assert.ok(h.checker.ok, JSON.stringify(h.checker.violations));
});

test('node: a write is answered only once applied; the forgetVote switch persists vote 0', () => {
  const h = harness({ forgetVote: true });
  h.node.campaign();
  h.flush();
  h.node.handleRequest({ clientId: 1, opId: 1, attempt: 1, cmd: { type: 'register' } });
  h.flush();
  assert.equal(h.replies.length, 1);
  assert.deepEqual(h.replies[0]!.reply, { type: 'result', result: { type: 'registered', sessionId: h.node.appliedIndex * MAX_COMMANDS_PER_ENTRY } });
  assert.equal(h.node.storage.initialState().hardState.vote, 0, 'forgetVote drops the vote on the way to disk');
});

test('node: a vote request leaves only after the vote is durable, unless sendBeforePersist is on', () => {
  for (const bug of [false, true]) {
    const h = harness({ sendBeforePersist: bug }, [1, 2]);
    h.node.campaign();
    assert.equal(h.disk.length, 1, 'the new term and self-vote wait on the disk');
    assert.equal(h.sent.length, bug ? 1 : 0, bug ? 'the bug sends at once' : 'nothing is sent before the write is durable');
    h.flush();
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0]!.type, 'vote');
    assert.equal(h.node.storage.initialState().hardState.vote, 1);
  }
});

test('node: writes that arrive while a write is pending leave as one batch entry, answered per command', () => {
  const h = harness();
  h.node.campaign();
  h.flush();
  const req = (opId: number): ClientRequest => ({ clientId: opId, opId, attempt: 1, cmd: { type: 'register' } });
  h.node.handleRequest(req(1)); // the disk is idle: proposed at once, a batch of one
  assert.equal(h.disk.length, 1);
  const first = h.node.storage.lastIndex() + 1;
  h.node.handleRequest(req(2));
  h.node.handleRequest(req(3));
  h.node.handleRequest(req(4));
  assert.equal(h.disk.length, 1, 'gathered while the write is pending: nothing proposed yet');
  h.flush();
  const last = h.node.storage.lastIndex();
  assert.equal(last, first + 1, 'two entries: the first request alone, then the three gathered');
  const batch = splitBatchEntry(h.node.storage.entries(last, last + 1, Infinity)[0]!.data);
  assert.equal(batch?.length, 3);
  assert.deepEqual(h.replies.map((r) => [r.req.opId, r.reply]), [
    [1, { type: 'result', result: { type: 'registered', sessionId: first * MAX_COMMANDS_PER_ENTRY } }],
    [2, { type: 'result', result: { type: 'registered', sessionId: last * MAX_COMMANDS_PER_ENTRY } }],
    [3, { type: 'result', result: { type: 'registered', sessionId: last * MAX_COMMANDS_PER_ENTRY + 1 } }],
    [4, { type: 'result', result: { type: 'registered', sessionId: last * MAX_COMMANDS_PER_ENTRY + 2 } }],
  ]);
  assert.ok(h.checker.ok, JSON.stringify(h.checker.violations));
});

test('node: a gathered batch is refused as a whole by a node that is not the leader', () => {
  const h = harness({}, [1, 2]);
  h.node.campaign(); // a candidate: its vote write is pending, nobody answers it
  h.node.handleRequest({ clientId: 1, opId: 1, attempt: 1, cmd: { type: 'register' } });
  h.node.handleRequest({ clientId: 2, opId: 2, attempt: 1, cmd: { type: 'register' } });
  assert.equal(h.replies.length, 0, 'gathered while the vote is being written');
  h.flush();
  assert.deepEqual(h.replies.map((r) => [r.req.opId, r.reply.type]), [[1, 'notLeader'], [2, 'notLeader']]);
});

test('node: a gathered batch is closed at the driver\'s byte bound (MAX_BATCH_ENTRY_BYTES)', () => {
  const h = harness({}, [1], 64);
  h.node.campaign();
  h.flush();
  h.node.handleRequest({ clientId: 99, opId: 1, attempt: 1, cmd: { type: 'register' } });
  h.flush();
  const sid = (h.replies[0]!.reply as { result: { sessionId: number } }).result.sessionId;
  h.node.handleRequest({ clientId: 98, opId: 1, attempt: 1, cmd: { type: 'register' } }); // keeps the disk busy
  const before = h.node.storage.lastIndex() + 1;
  const value = 'v'.repeat(64 * 1024);
  for (let i = 1; i <= 20; i++) h.node.handleRequest({ clientId: 100 + i, opId: 1, attempt: 1, cmd: { type: 'kv', sessionId: sid, seq: i, input: { op: 'put', key: 'k', value } } });
  h.flush();
  const sizes: number[] = [];
  for (let i = before + 1; i <= h.node.storage.lastIndex(); i++) {
    const e = h.node.storage.entries(i, i + 1, Infinity)[0]!;
    const n = splitBatchEntry(e.data)!.length;
    // The bound counts the commands' bytes; the entry adds its 6-byte header and 4 bytes per command.
    assert.ok(e.data.length - 6 - 4 * n <= MAX_BATCH_ENTRY_BYTES, `entry ${i} holds ${e.data.length} bytes`);
    sizes.push(n);
  }
  assert.deepEqual(sizes, [15, 5], 'sixteen 64 KiB commands pass 1 MiB: the batch closes at fifteen');
  assert.equal(h.replies.filter((r) => r.reply.type === 'result').length, 22, 'every command answered');
});
