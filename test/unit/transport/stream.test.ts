// The long-lived streams nodes use (src/transport/raft.proto: Stream for raft messages, ProposeStream for
// forwarded writes): pipelining within a window, the probe rule on a new stream, the Ack deadline,
// identity checked on a stream, and forwarded writes answered by id in any order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Transport } from '../../../src/transport/transport.ts';
import type { TransportLimits } from '../../../src/transport/limits.ts';
import { channelCredentials } from '../../../src/transport/tls.ts';
import { raftFrameServiceDefinition } from '../../../src/transport/proto.ts';
import { encodeRaftFrame } from '../../../src/transport/frames.ts';
import type { WireAck } from '../../../src/transport/proto.ts';
import type { MsgHeartbeat, NodeId } from '../../../src/raft/types.ts';
import type { IncomingProposeRequest, ProposeResult } from '../../../src/transport/types.ts';
import { CapturingLogger, RecordingHandler, makePki, waitFor } from './helpers.ts';
import type { Pki } from './helpers.ts';

const HOST = '127.0.0.1';
let pki: Pki;
before(async () => {
  pki = await makePki([1, 2, 3]);
});
const running: Transport[] = [];
const closers: (() => void)[] = [];
after(async () => {
  for (const c of closers) c();
  await Promise.all(running.map((t) => t.stop()));
});

/** A handler whose onMessages can be made to hold every batch until released. */
class HoldingHandler extends RecordingHandler {
  hold = false;
  private held: (() => void)[] = [];
  override onMessages(from: NodeId, msgs: readonly MsgHeartbeat[]): void | Promise<void> {
    if (!this.hold) return super.onMessages(from, msgs);
    return new Promise<void>((resolve) => {
      this.held.push(() => {
        super.onMessages(from, msgs);
        resolve();
      });
    });
  }
  heldCount(): number {
    return this.held.length;
  }
  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }
}

async function start(id: NodeId, handler: RecordingHandler, peers: Map<NodeId, string> = new Map(), limits: Partial<TransportLimits> = {}): Promise<{ t: Transport; address: string }> {
  const t = new Transport({
    id,
    listen: { host: HOST, port: 0 },
    peers,
    tls: pki.tls(id),
    handler,
    logger: new CapturingLogger(),
    limits: { initialReconnectBackoffMs: 20, maxReconnectBackoffMs: 200, ...limits },
  });
  running.push(t);
  const port = await t.start();
  return { t, address: `${HOST}:${port}` };
}

const hb = (from: NodeId, to: NodeId, commit: number): MsgHeartbeat => ({ type: 'heartbeat', from, to, term: 1, commit, context: null });

test('a new stream carries one batch until its first Ack, then up to maxBatchesInFlightPerPeer, in order', async () => {
  const hb2 = new HoldingHandler();
  const b = await start(2, hb2);
  const a = await start(1, new RecordingHandler(), new Map([[2, b.address]]), { maxBatchesInFlightPerPeer: 4 });
  // Unproven stream: three send() calls, but only the first batch is written.
  a.t.send([hb(1, 2, 1)]);
  a.t.send([hb(1, 2, 2)]);
  a.t.send([hb(1, 2, 3)]);
  assert.equal(a.t.queueLength(2), 2, 'one batch in flight on a stream that has not been acknowledged yet');
  await waitFor(() => hb2.messages().length === 3, 'the first three messages');
  await waitFor(() => a.t.stats().sentMessages === 3, 'their Acks');
  // Proven: each send() becomes a batch of its own, four may await their Ack at once.
  hb2.hold = true;
  for (let i = 4; i <= 13; i++) a.t.send([hb(1, 2, i)]);
  assert.equal(a.t.queueLength(2), 6, 'four batches written without waiting for an Ack, six queued');
  await waitFor(() => hb2.heldCount() === 1, 'the receiver to hold the first of them');
  hb2.release();
  await waitFor(() => hb2.messages().length === 13, 'all thirteen messages');
  assert.deepEqual(hb2.messages().map((m) => (m as MsgHeartbeat).commit), Array.from({ length: 13 }, (_, i) => i + 1));
  await waitFor(() => a.t.stats().sentMessages === 13, 'every Ack');
  assert.equal(a.t.stats().failedBatches, 0);
});

test('a batch not acknowledged within sendTimeoutMs gives the stream up and reports the peer; the next send opens a new stream', async () => {
  const hb2 = new HoldingHandler();
  const b = await start(2, hb2);
  const a = new RecordingHandler();
  const at = await start(1, a, new Map([[2, b.address]]), { sendTimeoutMs: 300 });
  at.t.send([hb(1, 2, 1)]);
  await waitFor(() => at.t.stats().sentMessages === 1, 'the first Ack');
  hb2.hold = true;
  const sentMs = Date.now();
  at.t.send([hb(1, 2, 2)]);
  await waitFor(() => a.unreachable.includes(2), 'onUnreachable(2)');
  assert.ok(Date.now() - sentMs >= 250, 'reported at the deadline, not at once');
  assert.equal(at.t.stats().failedBatches, 1);
  hb2.release();
  at.t.send([hb(1, 2, 3)]);
  await waitFor(() => hb2.messages().some((m) => (m as MsgHeartbeat).commit === 3), 'a message on a new stream');
});

/** A raw Stream call from node 1's certificate, writing exactly the batches given. */
function rawStream(address: string, peerId: NodeId): { call: grpc.ClientDuplexStream<Buffer, WireAck>; status: Promise<grpc.StatusObject> } {
  const client = new grpc.Client(address, channelCredentials(pki.tls(1), peerId, () => undefined), { 'grpc.ssl_target_name_override': `node-${peerId}.raftauth` });
  closers.push(() => client.close());
  const m = raftFrameServiceDefinition.Stream!;
  const call = client.makeBidiStreamRequest(m.path, m.requestSerialize as (b: Buffer) => Buffer, m.responseDeserialize as (b: Buffer) => WireAck, new grpc.Metadata(), {});
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined);
  call.on('data', () => undefined);
  return { call, status };
}

test('a stream whose first batch claims another node than its certificate names is refused', async () => {
  const h = new RecordingHandler();
  const b = await start(2, h);
  const { call, status } = rawStream(b.address, 2);
  call.write(encodeRaftFrame(3, 2, [hb(3, 2, 1)]));
  assert.equal((await status).code, grpc.status.PERMISSION_DENIED);
  assert.equal(h.messages().length, 0);
});

test('a later batch on a stream may not claim another node, be for another node, or be malformed', async () => {
  const h = new RecordingHandler();
  const b = await start(2, h);
  const first = rawStream(b.address, 2);
  first.call.write(encodeRaftFrame(1, 2, [hb(1, 2, 1)]));
  await waitFor(() => h.messages().length === 1, 'the honest first batch');
  first.call.write(encodeRaftFrame(3, 2, [hb(3, 2, 2)]));
  assert.equal((await first.status).code, grpc.status.PERMISSION_DENIED);
  // A frame names one sender and one receiver for all its messages: none can speak for a third node.
  const second = rawStream(b.address, 2);
  second.call.write(encodeRaftFrame(1, 2, [hb(1, 2, 3)]));
  await waitFor(() => h.messages().length === 2, 'the next honest batch');
  second.call.write(encodeRaftFrame(1, 3, [hb(1, 3, 4)]));
  assert.equal((await second.status).code, grpc.status.FAILED_PRECONDITION);
  const third = rawStream(b.address, 2);
  // A valid frame (key, one length byte, data) with its last byte cut off and its length fixed up.
  const good = encodeRaftFrame(1, 2, [hb(1, 2, 5)]);
  third.call.write(Buffer.concat([Buffer.from([0x0a, good.length - 3]), good.subarray(2, good.length - 1)]));
  assert.equal((await third.status).code, grpc.status.INVALID_ARGUMENT);
  assert.deepEqual(h.messages().map((m) => (m as MsgHeartbeat).commit), [1, 3], 'nothing of a refused batch was delivered');
});

test('forwarded writes on one stream are answered by id, in whatever order they finish; an unanswered one times out', async () => {
  const h = new RecordingHandler();
  const answers = new Map<number, (r: ProposeResult) => void>();
  h.proposeReply = (req: IncomingProposeRequest) => new Promise<ProposeResult>((resolve) => answers.set(req.seq, resolve));
  const b = await start(2, h);
  const a = await start(1, new RecordingHandler(), new Map([[2, b.address]]));
  const n = 20;
  const pending = Array.from({ length: n }, (_, i) => a.t.forwardPropose(2, { sessionId: 's', seq: i + 1, command: new Uint8Array([i + 1]), timeoutMs: 5_000 }));
  await waitFor(() => answers.size === n, 'every forwarded write at the leader');
  // Answer in reverse order, each with its own payload.
  for (let seq = n; seq >= 1; seq--) answers.get(seq)!({ ok: true, result: new Uint8Array([seq, seq]) });
  const results = await Promise.all(pending);
  results.forEach((r, i) => assert.deepEqual(r, { ok: true, result: new Uint8Array([i + 1, i + 1]) }));
  assert.deepEqual(h.proposals.map((p) => p.from), Array(n).fill(1), 'authenticated as node 1');
  // One the leader never answers: TIMEOUT at the caller's timeout, and the stream stays usable.
  const startedMs = Date.now();
  const late = await a.t.forwardPropose(2, { sessionId: 's', seq: 100, command: new Uint8Array([1]), timeoutMs: 200 });
  assert.equal(late.ok, false);
  assert.equal(!late.ok && late.error.code, 'TIMEOUT');
  assert.ok(Date.now() - startedMs >= 150);
  answers.get(100)!({ ok: true, result: new Uint8Array([9]) }); // too late: ignored
  h.proposeReply = async (req) => ({ ok: true, result: req.command });
  assert.deepEqual(await a.t.forwardPropose(2, { sessionId: 's', seq: 101, command: new Uint8Array([7]), timeoutMs: 5_000 }), { ok: true, result: new Uint8Array([7]) });
});

test('forwarded writes waiting on a leader that goes away are answered UNAVAILABLE', async () => {
  const h = new RecordingHandler();
  h.proposeReply = () => new Promise<ProposeResult>(() => undefined);
  const b = await start(2, h);
  const a = await start(1, new RecordingHandler(), new Map([[2, b.address]]));
  const pending = [1, 2, 3].map((seq) => a.t.forwardPropose(2, { sessionId: 's', seq, command: new Uint8Array([seq]), timeoutMs: 10_000 }));
  await waitFor(() => h.proposals.length === 3, 'the writes at the leader');
  const startedMs = Date.now();
  await b.t.stop();
  for (const r of await Promise.all(pending)) {
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'UNAVAILABLE');
  }
  assert.ok(Date.now() - startedMs < 5_000, 'at once, not at the timeout');
});
