import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate, createHash } from 'node:crypto';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { issueNodeCert, createClusterCa } from '../../../src/crypto/certs.ts';
import { Transport } from '../../../src/transport/transport.ts';
import type { TransportOptions } from '../../../src/transport/transport.ts';
import { PeerClient } from '../../../src/transport/peer-client.ts';
import { TransportError } from '../../../src/transport/errors.ts';
import { resolveLimits } from '../../../src/transport/limits.ts';
import type { TransportLimits } from '../../../src/transport/limits.ts';
import { newStats } from '../../../src/transport/stats.ts';
import { raftFrameServiceDefinition } from '../../../src/transport/proto.ts';
import { encodeRaftFrame } from '../../../src/transport/frames.ts';
import type { TlsMaterial } from '../../../src/transport/types.ts';
import type { Message, MsgHeartbeat, NodeId, SnapshotMetadata } from '../../../src/raft/types.ts';
import { CapturingLogger, RecordingHandler, makePki, waitFor } from './helpers.ts';
import { sendOneBatch } from '../../support/peer-stream.ts';
import type { Pki } from './helpers.ts';

const HOST = '127.0.0.1';
let pki: Pki;

before(async () => {
  pki = await makePki([1, 2, 3]);
});

const running: Transport[] = [];
const clients: PeerClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(running.map((t) => t.stop()));
});

interface Node {
  readonly t: Transport;
  readonly handler: RecordingHandler;
  readonly logger: CapturingLogger;
  readonly port: number;
  readonly address: string;
}

async function startNode(id: NodeId, opts: { peers?: Map<NodeId, string>; limits?: Partial<TransportLimits>; port?: number; tls?: TlsMaterial; advertiseAddress?: string } = {}): Promise<Node> {
  const handler = new RecordingHandler();
  const logger = new CapturingLogger();
  const o: TransportOptions = {
    id,
    listen: { host: HOST, port: opts.port ?? 0 },
    peers: opts.peers ?? new Map(),
    tls: opts.tls ?? pki.tls(id),
    handler,
    logger,
    limits: { initialReconnectBackoffMs: 20, maxReconnectBackoffMs: 200, sendTimeoutMs: 2_000, ...opts.limits },
    ...(opts.advertiseAddress !== undefined ? { advertiseAddress: opts.advertiseAddress } : {}),
  };
  const t = new Transport(o);
  running.push(t);
  const port = await t.start();
  return { t, handler, logger, port, address: `${HOST}:${port}` };
}

/** A bare client, to send what a Transport never would (another identity, oversized batches; test/support/peer-stream.ts). */
function rawClient(selfId: NodeId, peerId: NodeId, address: string, tls: TlsMaterial, limits: Partial<TransportLimits> = {}, advertiseAddress?: string): { client: PeerClient; logger: CapturingLogger; stats: ReturnType<typeof newStats> } {
  const logger = new CapturingLogger();
  const stats = newStats();
  const client = new PeerClient({ selfId, peerId, address, tls, limits: resolveLimits(limits), logger, stats, ...(advertiseAddress !== undefined ? { advertiseAddress } : {}) });
  clients.push(client);
  return { client, logger, stats };
}

const hb = (from: NodeId, to: NodeId, commit: number): MsgHeartbeat => ({ type: 'heartbeat', from, to, term: 1, commit, context: null });

function grpcStatusOf(e: unknown): number | null {
  return e instanceof TransportError ? e.grpcStatus : null;
}

test('two transports exchange batches over mutual TLS, in order', async () => {
  const b = await startNode(2);
  const a = await startNode(1, { peers: new Map([[2, b.address]]) });
  b.t.addPeer(1, a.address);
  const toB: Message[] = [];
  for (let i = 1; i <= 500; i++) toB.push(hb(1, 2, i));
  toB.push({ type: 'app', from: 1, to: 2, term: 1, logTerm: 1, index: 0, commit: 0, entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array([1, 2, 3]) }] });
  // Several send() calls: batches are formed per call and per limit, order must hold across them.
  a.t.send(toB.slice(0, 100));
  a.t.send(toB.slice(100, 101));
  a.t.send(toB.slice(101));
  b.t.send([{ type: 'appResp', from: 2, to: 1, term: 1, index: 1, reject: false, rejectHint: 0, logTerm: 0 }]);
  await waitFor(() => b.handler.messages().length === toB.length, 'B to receive every message');
  await waitFor(() => a.handler.messages().length === 1, 'A to receive the reply');
  assert.deepEqual(b.handler.messages(), toB);
  assert.ok(b.handler.received.every((r) => r.from === 1));
  assert.equal(a.handler.messages()[0]?.type, 'appResp');
  await waitFor(() => a.t.stats().sentMessages === toB.length, 'the sender to count every acknowledged message');
  assert.equal(a.t.stats().droppedQueueFull, 0);
});

test('a batch is split at maxMessagesPerBatch and the receiver refuses a larger one', async () => {
  const b = await startNode(2, { limits: { maxMessagesPerBatch: 10, maxQueuedMessagesPerPeer: 100 } });
  const a = await startNode(1, { peers: new Map([[2, b.address]]), limits: { maxMessagesPerBatch: 10, maxQueuedMessagesPerPeer: 100 } });
  const msgs = Array.from({ length: 35 }, (_, i) => hb(1, 2, i));
  a.t.send(msgs);
  await waitFor(() => b.handler.messages().length === 35, 'all 35 messages');
  assert.deepEqual(b.handler.received.map((r) => r.msgs.length), [10, 10, 10, 5]);
  // A client that does not split: the server refuses the whole batch.
  const { client } = rawClient(1, 2, b.address, pki.tls(1), { maxMessagesPerBatch: 100, maxQueuedMessagesPerPeer: 100 });
  await assert.rejects(sendOneBatch(client, Array.from({ length: 11 }, (_, i) => hb(1, 2, i))), (e: unknown) => grpcStatusOf(e) === grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(b.handler.messages().length, 35, 'nothing of the refused batch was delivered');
  assert.equal(b.t.stats().refusedBatches, 1);
});

test('an oversized batch is refused by the receiver and dropped by the sender', async () => {
  const small = { maxMessageBytes: 64 * 1024, maxBatchBytes: 32 * 1024, maxSnapshotChunkBytes: 16 * 1024, maxCommandBytes: 16 * 1024 };
  const b = await startNode(2, { limits: small });
  const big: Message = { type: 'app', from: 1, to: 2, term: 1, logTerm: 0, index: 0, commit: 0, entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array(100 * 1024) }] };
  // A client allowed to send 1 MiB: the server's grpc.max_receive_message_length refuses it.
  const { client } = rawClient(1, 2, b.address, pki.tls(1), { maxMessageBytes: 1024 * 1024, maxBatchBytes: 512 * 1024, maxSnapshotChunkBytes: 16 * 1024, maxCommandBytes: 16 * 1024 });
  await assert.rejects(sendOneBatch(client, [big]), (e: unknown) => grpcStatusOf(e) === grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(b.handler.messages().length, 0);
  // A transport with the same small limits never sends it: dropped and counted, the rest goes through.
  const a = await startNode(1, { peers: new Map([[2, b.address]]), limits: small });
  a.t.send([big, hb(1, 2, 1)]);
  await waitFor(() => b.handler.messages().length === 1, 'the small message');
  assert.equal(a.t.stats().droppedOversize, 1);
  assert.ok(a.logger.has('error', /larger than maxBatchBytes/));
});

test('a full outbound queue drops new messages and counts them', async () => {
  // Peer 2's address points at a server that is not listening: batches fail, the queue fills.
  const dead = await startNode(3);
  const deadAddress = dead.address;
  await dead.t.stop();
  const a = await startNode(1, { peers: new Map([[2, deadAddress]]), limits: { maxQueuedMessagesPerPeer: 20, maxMessagesPerBatch: 5 } });
  a.t.send(Array.from({ length: 50 }, (_, i) => hb(1, 2, i)));
  // The queue takes 20, the other 30 are dropped at once; then the first batch of 5 leaves.
  assert.equal(a.t.stats().droppedQueueFull, 30);
  assert.equal(a.t.queueLength(2), 15);
  await waitFor(() => a.handler.unreachable.includes(2), 'onUnreachable(2)');
  assert.ok(a.t.stats().failedBatches >= 1);
});

test('a snapshot streamed in chunks arrives intact and the MsgSnap is delivered', async () => {
  const chunkBytes = 4096;
  const b = await startNode(2, { limits: { maxSnapshotChunkBytes: chunkBytes } });
  const a = await startNode(1, { peers: new Map([[2, b.address]]), limits: { maxSnapshotChunkBytes: chunkBytes } });
  const data = new Uint8Array(100_003);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  const metadata: SnapshotMetadata = { index: 500, term: 4, confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } };
  async function* source(): AsyncGenerator<Uint8Array> {
    // Uneven source pieces; the transport re-chunks them to maxSnapshotChunkBytes.
    for (let off = 0; off < data.length; off += 10_000) yield data.subarray(off, off + 10_000);
  }
  await a.t.sendSnapshot(2, { term: 5, metadata }, source());
  assert.equal(b.handler.snapshots.length, 1);
  const snap = b.handler.snapshots[0]!;
  assert.deepEqual({ ...snap, snapshot: { ...snap.snapshot, data: null } }, { type: 'snap', from: 1, to: 2, term: 5, snapshot: { metadata, data: null } });
  assert.equal(createHash('sha256').update(snap.snapshot.data).digest('hex'), createHash('sha256').update(data).digest('hex'));
  const sizes = b.handler.sinks[0]!.chunkSizes;
  assert.ok(sizes.length > data.length / chunkBytes);
  assert.ok(sizes.every((n) => n <= chunkBytes));
  // A MsgSnap handed to send() goes the same way and reports its outcome.
  a.t.send([{ type: 'snap', from: 1, to: 2, term: 5, snapshot: { metadata, data: data.subarray(0, 5000) } }]);
  await waitFor(() => a.handler.snapshotStatus.length === 1, 'snapshot status');
  assert.deepEqual(a.handler.snapshotStatus, [{ id: 2, status: 'finished' }]);
  assert.deepEqual(b.handler.snapshots[1]?.snapshot.data, data.subarray(0, 5000));
});

test('a snapshot larger than the receiver allows is refused and the sender learns it', async () => {
  const b = await startNode(2, { limits: { maxSnapshotBytes: 50_000, maxSnapshotChunkBytes: 4096 } });
  const a = await startNode(1, { peers: new Map([[2, b.address]]), limits: { maxSnapshotChunkBytes: 4096 } });
  const metadata: SnapshotMetadata = { index: 9, term: 1, confState: { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } };
  async function* source(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(80_000);
  }
  await assert.rejects(a.t.sendSnapshot(2, { term: 1, metadata }, source()), (e: unknown) => grpcStatusOf(e) === grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(b.handler.snapshots.length, 0);
  await waitFor(() => b.t.stats().failedSnapshotReceives === 1, 'the receive failure to be counted');
});

test('a snapshot stream that breaks midway is discarded by the receiver', async () => {
  const b = await startNode(2, { limits: { maxSnapshotChunkBytes: 4096 } });
  const a = await startNode(1, { peers: new Map([[2, b.address]]), limits: { maxSnapshotChunkBytes: 4096 } });
  const metadata: SnapshotMetadata = { index: 9, term: 1, confState: { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } };
  let produced = 0;
  async function* failing(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 5; i++) {
      produced += 20_000;
      yield new Uint8Array(20_000);
    }
    // Wait until the receiver has the data so far, then fail like a broken disk read.
    await waitFor(() => b.handler.sinks[0] !== undefined && b.handler.sinks[0].chunkSizes.reduce((x, y) => x + y, 0) === produced, 'the receiver to store the first 100000 bytes');
    throw new Error('disk read failed');
  }
  await assert.rejects(a.t.sendSnapshot(2, { term: 1, metadata }, failing()), /disk read failed/);
  await waitFor(() => b.handler.sinks[0]?.status === 'aborted', 'the receiver to abort its sink');
  assert.equal(b.handler.snapshots.length, 0);
  await waitFor(() => b.t.stats().failedSnapshotReceives === 1, 'the receive failure to be counted');
  // The receiver's sink refusing (full disk) fails the send too.
  b.handler.sinkMaxBytes = 1000;
  async function* ok(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(5000);
  }
  await assert.rejects(a.t.sendSnapshot(2, { term: 1, metadata }, ok()), (e: unknown) => grpcStatusOf(e) === grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(b.handler.sinks[1]?.status, 'aborted');
  assert.equal(b.handler.snapshots.length, 0);
});

test('a client with a certificate from another CA is refused at the handshake, and logged', async () => {
  const b = await startNode(2);
  const rogueCa = await createClusterCa();
  const rogue = await issueNodeCert(rogueCa, 1);
  // The rogue client trusts our CA (so it could verify our server) but presents its own-CA cert.
  const { client } = rawClient(1, 2, b.address, { caPem: pki.ca.certPem, certPem: rogue.certPem, keyPem: rogue.keyPem });
  await assert.rejects(sendOneBatch(client, [hb(1, 2, 1)]), (e: unknown) => grpcStatusOf(e) === grpc.status.UNAVAILABLE);
  assert.equal(b.handler.messages().length, 0);
  await waitFor(() => b.t.stats().refusedHandshakes >= 1, 'the refused handshake to be counted');
  const line = b.logger.lines.find((l) => l.level === 'warn' && /not issued by the cluster CA/.test(l.msg));
  assert.ok(line, 'the refusal is logged');
  assert.match((line.obj as { reason: string }).reason, /UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_SIGNATURE_FAILURE/);
  assert.equal((line.obj as { subject: string }).subject, 'node-1');
  assert.match((line.obj as { peer: string }).peer, /^127\.0\.0\.1:\d+$/);
  // A client with no certificate at all is refused the same way.
  const anonymous = new grpc.Client(b.address, grpc.credentials.createSsl(Buffer.from(pki.ca.certPem), null, null, { checkServerIdentity: () => undefined }), { 'grpc.ssl_target_name_override': 'node-2.raftauth' });
  const stream = raftFrameServiceDefinition.Stream!;
  const status = await new Promise<number>((resolve) => {
    const call = anonymous.makeBidiStreamRequest(stream.path, stream.requestSerialize, stream.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + 2000 });
    call.on('status', (st: grpc.StatusObject) => resolve(st.code));
    call.on('error', () => undefined);
    call.on('data', () => undefined);
    call.write(encodeRaftFrame(1, 2, [hb(1, 2, 1)]));
  });
  anonymous.close();
  assert.equal(status, grpc.status.UNAVAILABLE);
  await waitFor(() => b.t.stats().refusedHandshakes >= 2, 'the second refusal to be counted');
  assert.equal(b.handler.messages().length, 0);
});

test('a node presenting node-2\'s certificate while claiming to be node-3 is refused, and logged', async () => {
  const b = await startNode(1);
  const { client } = rawClient(3, 1, b.address, pki.tls(2));
  await assert.rejects(sendOneBatch(client, [hb(3, 1, 1)]), (e: unknown) => grpcStatusOf(e) === grpc.status.PERMISSION_DENIED);
  const forged = await client.forward({ sessionId: 's', seq: 1, command: new Uint8Array([1]), timeoutMs: 1000 });
  assert.equal(forged.ok, false);
  async function* one(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(10);
  }
  await assert.rejects(client.sendSnapshot({ term: 1, metadata: { index: 1, term: 1, confState: { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } }, one()), (e: unknown) => grpcStatusOf(e) === grpc.status.PERMISSION_DENIED);
  assert.equal(b.handler.messages().length, 0);
  assert.equal(b.handler.proposals.length, 0);
  assert.equal(b.handler.snapshots.length, 0);
  assert.equal(b.t.stats().refusedIdentity, 3, 'the batch stream, the forwarding stream and the snapshot');
  const line = b.logger.lines.find((l) => l.level === 'warn' && /claims another node id/.test(l.msg));
  assert.ok(line);
  assert.deepEqual({ cert: (line.obj as { certNode: number }).certNode, claimed: (line.obj as { claimedNode: string }).claimedNode }, { cert: 2, claimed: '3' });
  // Control: the same certificate claiming its own id is accepted.
  const { client: honest } = rawClient(2, 1, b.address, pki.tls(2));
  assert.equal(await sendOneBatch(honest, [hb(2, 1, 1)]), 1);
});

test('a server whose certificate names another node is refused by the client', async () => {
  const two = await startNode(2);
  // Node 1 believes node 3 lives at node 2's address.
  const a = await startNode(1, { peers: new Map([[3, two.address]]) });
  a.t.send([hb(1, 3, 1)]);
  await waitFor(() => a.handler.unreachable.includes(3), 'onUnreachable(3)');
  assert.equal(two.handler.messages().length, 0);
  assert.ok(a.t.stats().refusedServerIdentity >= 1);
  assert.ok(a.logger.has('warn', /refused a peer server: its certificate names another node/));
  const forwarded = await a.t.forwardPropose(3, { sessionId: 's', seq: 1, command: new Uint8Array([1]), timeoutMs: 1000 });
  assert.deepEqual(forwarded.ok ? null : forwarded.error.code, 'UNAVAILABLE');
  assert.equal(two.handler.proposals.length, 0);
});

test('a transport refuses to start with a certificate that names another node', async () => {
  const handler = new RecordingHandler();
  assert.throws(
    () => new Transport({ id: 3, listen: { host: HOST, port: 0 }, peers: new Map(), tls: pki.tls(2), handler, logger: new CapturingLogger() }),
    (e: unknown) => e instanceof TransportError && e.code === 'TLS_CONFIG' && /names node 2/.test(e.message),
  );
  const other = await createClusterCa();
  const foreign = await issueNodeCert(other, 3);
  assert.throws(
    () => new Transport({ id: 3, listen: { host: HOST, port: 0 }, peers: new Map(), tls: { caPem: pki.ca.certPem, ...foreign }, handler, logger: new CapturingLogger() }),
    (e: unknown) => e instanceof TransportError && e.code === 'TLS_CONFIG' && /not issued by the cluster CA/.test(e.message),
  );
});

test('send() refuses a message that is not from this node, or is addressed to it', async () => {
  const a = await startNode(1, { peers: new Map([[2, '127.0.0.1:1']]) });
  assert.throws(() => a.t.send([hb(2, 1, 1)]), /transport invariant broken/);
  assert.throws(() => a.t.send([hb(1, 1, 1)]), /transport invariant broken/);
  assert.equal(a.t.queueLength(2), 0);
});

test('removePeer drops the peer and its queue; updatePeer points it at a new address', async () => {
  const b1 = await startNode(2);
  const b2 = await startNode(2);
  const a = await startNode(1, { peers: new Map([[2, b1.address]]) });
  a.t.send([hb(1, 2, 1)]);
  await waitFor(() => b1.handler.messages().length === 1, 'the message at the first address');
  a.t.updatePeer(2, b2.address);
  a.t.send([hb(1, 2, 2)]);
  await waitFor(() => b2.handler.messages().length === 1, 'the message at the new address');
  assert.equal(b1.handler.messages().length, 1);
  a.t.removePeer(2);
  a.t.send([hb(1, 2, 3)]);
  assert.equal(a.t.stats().droppedUnknownPeer, 1);
  assert.throws(() => a.t.addPeer(1, b1.address), /own peer/);
  assert.throws(() => a.t.addPeer(4, 'no-port'), /host:port/);
  a.t.addPeer(2, b1.address);
  assert.throws(() => a.t.addPeer(2, b1.address), /already exists/);
});

test('updateTls rotates the certificate a node serves and presents', async () => {
  const b = await startNode(2);
  const a = await startNode(1, { peers: new Map([[2, b.address]]) });
  b.t.addPeer(1, a.address);
  const fingerprint = async (): Promise<string> => {
    const socket = tlsConnect({ host: HOST, port: b.port, ca: pki.ca.certPem, cert: pki.tls(1).certPem, key: pki.tls(1).keyPem, servername: 'node-2.raftauth', ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    await once(socket, 'secureConnect');
    const fp = socket.getPeerCertificate().fingerprint256;
    socket.destroy();
    return fp;
  };
  const renewed = await issueNodeCert(pki.ca, 2);
  assert.equal(await fingerprint(), new X509Certificate(pki.tls(2).certPem).fingerprint256);
  assert.throws(() => b.t.updateTls({ caPem: pki.ca.certPem, ...pki.nodes.get(3)! }), /names node 3/);
  b.t.updateTls({ caPem: pki.ca.certPem, ...renewed });
  assert.equal(await fingerprint(), new X509Certificate(renewed.certPem).fingerprint256);
  a.t.send([hb(1, 2, 1)]);
  b.t.send([hb(2, 1, 1)]);
  await waitFor(() => b.handler.messages().length === 1 && a.handler.messages().length === 1, 'traffic both ways after rotation');
});

test('a peer that restarts is reached again (reconnect with backoff)', async () => {
  const b1 = await startNode(2);
  const port = b1.port;
  const a = await startNode(1, { peers: new Map([[2, b1.address]]) });
  a.t.send([hb(1, 2, 1)]);
  await waitFor(() => b1.handler.messages().length === 1, 'first message');
  await b1.t.stop();
  // While B is down, sends fail and A reports B unreachable.
  let commit = 2;
  await waitFor(() => {
    a.t.send([hb(1, 2, commit++)]);
    return a.handler.unreachable.includes(2);
  }, 'onUnreachable(2) while B is down');
  const b2 = await startNode(2, { port });
  await waitFor(() => {
    a.t.send([hb(1, 2, commit++)]);
    return b2.handler.messages().length > 0;
  }, 'a message to reach the restarted B', 10_000);
  assert.ok(b2.handler.messages().every((m) => m.from === 1 && m.type === 'heartbeat'));
});

test('writes are forwarded and answered, errors included', async () => {
  const leader = await startNode(1);
  const follower = await startNode(2, { peers: new Map([[1, leader.address]]) });
  leader.handler.proposeReply = async (req) => ({ ok: true, result: new TextEncoder().encode(`applied ${req.sessionId}/${req.seq}: ${new TextDecoder().decode(req.command)}`) });
  const r = await follower.t.forwardPropose(1, { sessionId: 'sess-1', seq: 42, command: new TextEncoder().encode('put x'), timeoutMs: 2000 });
  assert.ok(r.ok);
  assert.equal(new TextDecoder().decode(r.result), 'applied sess-1/42: put x');
  const seen = leader.handler.proposals[0]!;
  assert.equal(seen.from, 2);
  assert.ok(seen.timeoutMs > 0 && seen.timeoutMs <= 2000);
  assert.ok(seen.deadlineMs > Date.now() - 2000 && seen.deadlineMs <= Date.now() + 2000);

  leader.handler.proposeReply = async () => ({ ok: false, error: { code: 'NOT_LEADER', leaderHint: 3, message: 'lost leadership' } });
  const nl = await follower.t.forwardPropose(1, { sessionId: 'sess-1', seq: 43, command: new Uint8Array(), timeoutMs: 2000 });
  assert.deepEqual(nl, { ok: false, error: { code: 'NOT_LEADER', leaderHint: 3, message: 'lost leadership' } });

  // The handler never answers: the caller's deadline turns into TIMEOUT.
  leader.handler.proposeReply = () => new Promise(() => undefined);
  const to = await follower.t.forwardPropose(1, { sessionId: 'sess-1', seq: 44, command: new Uint8Array(), timeoutMs: 200 });
  assert.equal(to.ok ? null : to.error.code, 'TIMEOUT');

  // A handler that throws is answered INTERNAL, and the stream carries on.
  leader.handler.proposeReply = async () => {
    throw new Error('boom');
  };
  const internal = await follower.t.forwardPropose(1, { sessionId: 'sess-1', seq: 45, command: new Uint8Array(), timeoutMs: 2000 });
  assert.deepEqual(internal.ok ? null : [internal.error.code, internal.error.message], ['INTERNAL', 'boom']);
  assert.equal(leader.handler.proposals.at(-1)?.from, 2);

  assert.deepEqual(await follower.t.forwardPropose(7, { sessionId: 'sess-1', seq: 46, command: new Uint8Array(), timeoutMs: 100 }), { ok: false, error: { code: 'UNAVAILABLE', leaderHint: 0, message: 'no address for node 7' } });
});

/**
 * A real TLS client (node 2's certificate) whose bytes pass through a gate to the server: its first
 * flight (the ClientHello) goes through, everything after it is held until release(). With a client
 * certificate the held bytes are the client's last flight (Certificate, CertificateVerify,
 * Finished): the server has answered the ClientHello and waits for them, so it stays in the middle
 * of the handshake for as long as the test likes. `held` resolves once the client has written its
 * last flight, i.e. once the server's answer has arrived: an event, not a delay.
 */
function gatedHandshake(port: number): { raw: Socket; held: Promise<void>; release(): void; bytesFromServer(): number } {
  const raw = createConnection({ host: HOST, port });
  let writes = 0;
  let heldChunks: Buffer[] | null = [];
  let markHeld!: () => void;
  const held = new Promise<void>((r) => (markHeld = r));
  let received = 0;
  const gate = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (writes++ === 0) raw.write(chunk);
      else if (heldChunks !== null) {
        heldChunks.push(chunk);
        markHeld();
      }
      cb();
    },
    read() {},
  });
  raw.on('data', (d: Buffer) => {
    received += d.length;
    gate.push(d);
  });
  raw.on('close', () => gate.destroy());
  raw.on('error', () => undefined);
  const client = tlsConnect({ socket: gate, ca: pki.ca.certPem, cert: pki.tls(2).certPem, key: pki.tls(2).keyPem, ALPNProtocols: ['h2'], servername: 'localhost', checkServerIdentity: () => undefined });
  client.on('error', () => undefined);
  return {
    raw,
    held,
    release: () => {
      const chunks = heldChunks ?? [];
      heldChunks = null;
      for (const c of chunks) raw.write(c);
    },
    bytesFromServer: () => received,
  };
}

// The test's timeout (20 s, against a 60 s handshake timeout) turns the old hang into a failure.
test('stop() closes connections still in their TLS handshake, one not begun and one held at its last flight, and does not let the held one finish after it (CI hang, 2026-11-23)', { timeout: 20_000 }, async () => {
  // Regression: stop() destroyed only the connections whose handshake had completed, then awaited
  // the listener's close, which waits for every connection. A peer's connection accepted just
  // before stop() and authenticated just after it (reconnects and TLS probes are frequent while
  // nodes stop) was never destroyed, and stop() waited forever. stop() now destroys every accepted
  // socket at once, so no handshake can complete once it has begun: the held handshake below,
  // released after stop() began, must get no answer.
  const handshakeTimeoutMs = 60_000;
  const a = await startNode(1, { limits: { handshakeTimeoutMs } });
  // 1. A connection that has not begun its handshake.
  const idle = createConnection({ host: HOST, port: a.port });
  idle.on('error', () => undefined);
  await once(idle, 'connect');
  // 2. A handshake the server has answered, its client's last flight held back.
  const gated = gatedHandshake(a.port);
  await gated.held;
  assert.equal(a.t.stats().acceptedConnections, 2);
  const answeredBeforeStop = gated.bytesFromServer();
  assert.ok(answeredBeforeStop > 0, 'the server answered the ClientHello');
  const stopping = a.t.stop();
  // The client finishes its part of the handshake only now.
  gated.release();
  await stopping;
  await waitFor(() => idle.destroyed && gated.raw.destroyed, 'both client sockets to see the close');
  // A completed handshake would have brought the server's session ticket and HTTP/2 settings.
  assert.equal(gated.bytesFromServer(), answeredBeforeStop, 'the server answered the handshake released after stop() began');
  assert.equal(a.t.stats().acceptedConnections, 2);
});

test('a stream announces the sender\'s raft address; the receiver hands it on for the authenticated sender only, and ignores a malformed one', async () => {
  const b = await startNode(2);
  assert.throws(() => new Transport({ id: 1, listen: { host: HOST, port: 0 }, peers: new Map(), tls: pki.tls(1), handler: new RecordingHandler(), logger: new CapturingLogger(), advertiseAddress: 'no port' }), /advertised address must be host:port/);
  const a = await startNode(1, { peers: new Map([[2, b.address]]), advertiseAddress: '127.0.0.1:7001' });
  a.t.send([hb(1, 2, 1)]);
  await waitFor(() => b.handler.messages().length === 1, 'the heartbeat');
  assert.deepEqual(b.handler.announced, [{ from: 1, address: '127.0.0.1:7001' }]);
  // One announcement per stream, not per batch.
  a.t.send([hb(1, 2, 2)]);
  await waitFor(() => b.handler.messages().length === 2, 'the second heartbeat');
  assert.equal(b.handler.announced.length, 1);
  // A malformed announcement is logged and ignored; the stream itself still works.
  const { client } = rawClient(3, 2, b.address, pki.tls(3), {}, 'not-an-address');
  const stream = client.openStream({ onAck: () => undefined, onDrain: () => undefined, onError: () => undefined });
  stream.write([hb(3, 2, 1)]);
  await waitFor(() => b.handler.messages().length === 3, 'node 3\'s heartbeat');
  assert.equal(b.handler.announced.length, 1);
  assert.ok(b.logger.has('warn', /malformed raft address/));
  stream.cancel();
});
