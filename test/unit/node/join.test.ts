// A node joining a running cluster whose config does not list the leader (issue 13, defect 1).
// Leadership moves at every rolling restart, so a join config written earlier names followers
// only; the joiner must still catch up and keep up when the leader moves again.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawNode } from '../../../src/raft/raw-node.ts';
import type { ConfState, Message, NodeId } from '../../../src/raft/types.ts';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import { StateMachine } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { WriteBehind } from '../../../src/node/write-behind.ts';
import { RaftDriver } from '../../../src/node/driver.ts';
import type { DriverTransport } from '../../../src/node/driver.ts';
import { LocalCluster, get, put, waitFor } from './helpers.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('a joiner whose config lists only a follower catches up, learns every member from the member table, and follows a new leader', async () => {
  const c = new LocalCluster();
  await c.init([1, 2, 3]);
  try {
    for (const id of [1, 2, 3]) await c.start(id);
    let leader = await c.leader();
    for (let i = 0; i < 20; i++) await put(leader, `j${i}`, `v${i}`);
    // The one member the joiner knows of is a follower.
    const listed = [1, 2, 3].find((id) => id !== leader.id)!;
    const a4 = await c.reserve(4);
    const n4 = await c.start(4, { join: true, initial: [listed, 4] });
    await leader.addLearner(4, a4);
    await waitFor('the joiner caught up through a leader its config does not list', async () => (await get(n4, 'j19', 'local')) === 'v19', 15_000);
    // After the snapshot the member table names every member: the joiner can reach each of them,
    // not only the ones that happened to contact it.
    await waitFor('the joiner has an address for every member', () => [1, 2, 3].every((id) => n4.transport.peerState(id) !== null));

    // Leadership moves to the third node, which the joiner's config never named either.
    const third = [1, 2, 3].find((id) => id !== leader.id && id !== listed)!;
    await leader.transferLeadership(third);
    await waitFor(`node ${third} leads`, async () => (await c.nodes.get(third)!.status()).role === 'leader');
    leader = c.nodes.get(third)!;
    await put(leader, 'after-move', 'yes');
    await waitFor('the joiner applied a write of the new leader', async () => (await get(n4, 'after-move', 'local')) === 'yes', 15_000);
    // And a write through the joiner itself is forwarded to the leader it was never told of.
    await put(n4, 'through-joiner', 'yes');
    assert.equal(await get(leader, 'through-joiner'), 'yes');
  } finally {
    await c.close();
  }
});

/** A transport that records the peers the driver gives it. */
class PeerRecordingTransport implements DriverTransport {
  readonly peers = new Map<NodeId, string>();
  readonly sent: Message[] = [];
  send(messages: readonly Message[]): void {
    this.sent.push(...messages);
  }
  async sendSnapshot(): Promise<void> {
    throw new Error('no snapshots here');
  }
  addPeer(id: NodeId, address: string): void {
    assert.equal(this.peers.has(id), false, `peer ${id} added twice`);
    this.peers.set(id, address);
  }
  updatePeer(id: NodeId, address: string): void {
    this.peers.set(id, address);
  }
  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }
}

/** A driver of node 1 on a fresh store: bootstrapped with `conf`, or empty (a joiner) when null. */
async function driverWith(conf: ConfState | null, known: ReadonlyMap<NodeId, string>): Promise<{ driver: RaftDriver; transport: PeerRecordingTransport }> {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-join-test-'));
  dirs.push(dir);
  const storage = await DurableStorage.open(dir);
  if (conf) await storage.bootstrap(conf);
  const stateView = new WriteBehind((ks, k) => storage.getSync(ks, k));
  const sm = new StateMachine(stateView, SESSION_LIMITS);
  const node = new RawNode({ id: 1, storage, applied: storage.applied, electionTick: 10, heartbeatTick: 1, rng: () => 0, preVote: true, checkQuorum: true, readOnlyOption: 'safe' });
  const transport = new PeerRecordingTransport();
  for (const [id, a] of known) transport.addPeer(id, a);
  const driver = new RaftDriver({ id: 1, node, storage, sm, stateView, transport, logger: { info(): void {}, warn(): void {}, error(): void {} }, onFatal: (e) => assert.fail(String(e)) });
  driver.setKnownPeers(known);
  after(() => driver.stop().then(() => storage.close()));
  return { driver, transport };
}

test('an announced address is used only for a member (or by a node with no configuration yet) that has no address', async () => {
  const conf = { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  {
    const { driver, transport } = await driverWith(conf, new Map([[2, '127.0.0.1:1002']]));
    driver.start();
    driver.enqueue({ kind: 'peerAddress', id: 2, address: '127.0.0.1:9999' }); // known: the member table's address stands
    driver.enqueue({ kind: 'peerAddress', id: 7, address: '127.0.0.1:1007' }); // not a member: ignored
    driver.enqueue({ kind: 'peerAddress', id: 1, address: '127.0.0.1:1001' }); // ourselves: ignored
    driver.enqueue({ kind: 'peerAddress', id: 3, address: '127.0.0.1:1003' }); // a member with no address: learned
    await waitFor('node 3 learned', () => transport.peers.has(3));
    assert.deepEqual([...transport.peers].sort(), [[2, '127.0.0.1:1002'], [3, '127.0.0.1:1003']]);
  }
  {
    // A joiner before its snapshot has no configuration: the leader that contacts it is learned.
    const { driver, transport } = await driverWith(null, new Map([[2, '127.0.0.1:1002']]));
    driver.start();
    driver.enqueue({ kind: 'peerAddress', id: 5, address: '127.0.0.1:1005' });
    await waitFor('node 5 learned', () => transport.peers.has(5));
    assert.equal(transport.peers.get(2), '127.0.0.1:1002');
  }
});
