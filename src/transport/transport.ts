// The peer transport actor: raft messages out (batched, per-peer bounded queues, pipelined on one
// long-lived stream per peer), raft messages in (through PeerServer), snapshot streaming, and
// forwarding of proposals and ReadIndex requests to the leader.
//
// Loss is acceptable, blocking is not: Raft retransmits whatever is lost (appends are re-sent on
// the next heartbeat response or probe, §5.3), so when a peer's queue is full the newest messages
// are dropped and counted rather than buffered without bound, and a failed batch is not retried.
// What Raft needs to hear about is a peer it cannot reach (handler.onUnreachable → the driver
// calls reportUnreachable, so the leader stops pipelining to it and probes instead).
import * as grpc from '@grpc/grpc-js';
import type { Message, MsgSnap, NodeId, SnapshotMetadata } from '../raft/types.ts';
import { PEER_ADDRESS, estimateMessageBytes } from './codec.ts';
import { TransportError } from './errors.ts';
import type { TransportLimits } from './limits.ts';
import { ENVELOPE_MARGIN_BYTES, resolveLimits } from './limits.ts';
import { PeerClient } from './peer-client.ts';
import type { PeerStream } from './peer-client.ts';
import { PeerServer } from './server.ts';
import type { TransportStats } from './stats.ts';
import type { TransportObserver } from './peer-client.ts';
import { newStats } from './stats.ts';
import { checkOwnTlsMaterial } from './tls.ts';
import type { ListenAddress, ProposeRequest, ProposeResult, TlsMaterial, TransportHandler, TransportLogger } from './types.ts';

export interface TransportOptions {
  readonly id: NodeId;
  readonly listen: ListenAddress;
  /** Peers by node id: "host:port". Our own id must not be among them. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly tls: TlsMaterial;
  readonly handler: TransportHandler;
  readonly limits?: Partial<TransportLimits>;
  readonly logger: TransportLogger;
  /** Metrics hooks (peer RTT); optional. */
  readonly observer?: TransportObserver;
  /**
   * This node's raft address as its peers dial it (host:port; the member table's, not a wildcard
   * listen address). Sent when a stream to a peer opens, so a peer that has no address for this
   * node yet (a joiner before its snapshot) can answer. Optional.
   */
  readonly advertiseAddress?: string;
}

/** A FIFO of messages with O(1) push and shift (a plain array's shift is O(n)). */
class MessageQueue {
  private items: Message[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(m: Message): void {
    this.items.push(m);
  }
  peek(): Message | undefined {
    return this.items[this.head];
  }
  shift(): Message | undefined {
    const m = this.items[this.head];
    if (m === undefined) return undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return m;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** A batch written to a peer's stream and not acknowledged yet. */
interface SentBatch {
  /** When it was written (process.hrtime, ns). */
  readonly atNs: bigint;
  readonly messages: number;
}

interface Peer {
  readonly id: NodeId;
  readonly address: string;
  readonly client: PeerClient;
  readonly queue: MessageQueue;
  /** The stream batches go out on; opened on demand, dropped when it fails. */
  stream: PeerStream | null;
  /** Batches written to `stream` and not acknowledged, oldest first. */
  unacked: SentBatch[];
  /**
   * True once the current stream has carried an Ack. Until then one batch at a time is written,
   * as a probe: a stream to a peer that is down would otherwise swallow the whole queue.
   */
  proven: boolean;
  /** The stream's buffer is full: wait for its drain. */
  blocked: boolean;
  /** Fires when the oldest unacknowledged batch may have outlived sendTimeoutMs. */
  deadlineTimer: NodeJS.Timeout | null;
  sendingSnapshot: boolean;
  /** False after a failed call, until one succeeds; only the first failure is logged as a warning. */
  healthy: boolean;
  removed: boolean;
}


/** gRPC statuses that mean "could not reach the peer" rather than "the peer refused this". */
const UNREACHABLE_STATUSES: ReadonlySet<number> = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED]);

export class Transport {
  readonly id: NodeId;
  readonly limits: TransportLimits;
  private readonly opts: TransportOptions;
  private readonly counters: TransportStats = newStats();
  private readonly peers = new Map<NodeId, Peer>();
  private readonly server: PeerServer;
  private state: 'new' | 'started' | 'stopped' = 'new';
  private tls: TlsMaterial;

  constructor(opts: TransportOptions) {
    if (!Number.isSafeInteger(opts.id) || opts.id <= 0) throw new RangeError(`node id must be a positive integer, got ${opts.id}`);
    if (opts.advertiseAddress !== undefined && !PEER_ADDRESS.test(opts.advertiseAddress)) throw new RangeError(`advertised address must be host:port, got ${JSON.stringify(opts.advertiseAddress)}`);
    this.id = opts.id;
    this.opts = opts;
    this.limits = resolveLimits(opts.limits);
    checkOwnTlsMaterial(opts.id, opts.tls);
    this.tls = opts.tls;
    this.server = new PeerServer({ id: opts.id, listen: opts.listen, tls: opts.tls, handler: opts.handler, limits: this.limits, logger: opts.logger, stats: this.counters });
    for (const [id, address] of opts.peers) this.addPeer(id, address);
  }

  /** Starts serving; resolves with the bound port. */
  async start(): Promise<number> {
    if (this.state !== 'new') throw new TransportError('STOPPED', `cannot start a transport that is ${this.state}`);
    const port = await this.server.start();
    this.state = 'started';
    return port;
  }

  /** Stops serving and closes every peer channel. Queued messages are dropped. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    await this.server.stop();
  }

  /** A copy of the counters. */
  stats(): Readonly<TransportStats> {
    return { ...this.counters };
  }

  /** The connectivity of the channel to a peer (health reporting, tests); null for an unknown peer. */
  peerState(id: NodeId): 'idle' | 'connecting' | 'ready' | 'transientFailure' | 'shutdown' | null {
    const peer = this.peers.get(id);
    if (peer === undefined) return null;
    switch (peer.client.state()) {
      case grpc.connectivityState.IDLE:
        return 'idle';
      case grpc.connectivityState.CONNECTING:
        return 'connecting';
      case grpc.connectivityState.READY:
        return 'ready';
      case grpc.connectivityState.TRANSIENT_FAILURE:
        return 'transientFailure';
      default:
        return 'shutdown';
    }
  }

  queueLength(id: NodeId): number {
    return this.peers.get(id)?.queue.length ?? 0;
  }

  // ---- membership ------------------------------------------------------------------------------

  addPeer(id: NodeId, address: string): void {
    if (!Number.isSafeInteger(id) || id <= 0) throw new RangeError(`peer id must be a positive integer, got ${id}`);
    if (id === this.id) throw new RangeError(`node ${id} cannot be its own peer`);
    if (this.peers.has(id)) throw new RangeError(`peer ${id} already exists (use updatePeer)`);
    if (this.state === 'stopped') throw new TransportError('STOPPED', 'transport stopped');
    if (!PEER_ADDRESS.test(address)) throw new RangeError(`peer address must be host:port, got ${JSON.stringify(address)}`);
    const client = new PeerClient({ selfId: this.id, peerId: id, address, tls: this.tls, limits: this.limits, logger: this.opts.logger, stats: this.counters, ...(this.opts.advertiseAddress !== undefined ? { advertiseAddress: this.opts.advertiseAddress } : {}) });
    this.peers.set(id, { id, address, client, queue: new MessageQueue(), stream: null, unacked: [], proven: false, blocked: false, deadlineTimer: null, sendingSnapshot: false, healthy: true, removed: false });
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (peer === undefined) return;
    peer.removed = true;
    peer.queue.clear();
    this.dropStream(peer);
    peer.client.close();
    this.peers.delete(id);
  }

  /** Points a peer at a new address (a new channel; queued messages are dropped with the old one). */
  updatePeer(id: NodeId, address: string): void {
    const peer = this.peers.get(id);
    if (peer !== undefined && peer.address === address) return;
    this.removePeer(id);
    this.addPeer(id, address);
  }

  /**
   * Rotates this node's TLS material (a renewed certificate, or a CA bundle during CA rotation).
   * Checked like at start-up. The server uses it for new connections; every peer channel is
   * re-created so outgoing connections present the new certificate (queued messages are dropped).
   */
  updateTls(material: TlsMaterial): void {
    checkOwnTlsMaterial(this.id, material);
    this.tls = material;
    this.server.updateTls(material);
    for (const [id, peer] of [...this.peers]) {
      this.removePeer(id);
      this.addPeer(id, peer.address);
    }
    this.opts.logger.info({ id: this.id }, 'TLS material updated');
  }

  // ---- raft messages -------------------------------------------------------------------------

  /**
   * Queues raft messages for their destinations and returns at once. Call only after the Ready's
   * hard state and entries are durable (types.ts, Ready). MsgSnap goes out on its own stream and
   * its outcome is reported through handler.onSnapshotStatus.
   */
  send(messages: readonly Message[]): void {
    if (this.state === 'stopped') return;
    const touched = new Set<Peer>();
    for (const m of messages) {
      // The core only addresses messages from this node to others; anything else is a driver
      // bug, and sending it would get the whole batch refused by the peer.
      if (m.from !== this.id || m.to === this.id) {
        throw new Error(`transport invariant broken: node ${this.id} asked to send a ${m.type} from ${m.from} to ${m.to}`);
      }
      if (m.type === 'snap') {
        this.sendSnapMessage(m);
        continue;
      }
      const peer = this.peers.get(m.to);
      if (peer === undefined) {
        this.counters.droppedUnknownPeer++;
        this.opts.logger.warn({ to: m.to, type: m.type }, 'dropped a message for a node with no known address');
        continue;
      }
      const bytes = estimateMessageBytes(m);
      if (bytes > this.limits.maxBatchBytes) {
        // Raft's maxSizePerMsg must be configured below maxBatchBytes; this is a config error.
        this.counters.droppedOversize++;
        this.opts.logger.error({ to: m.to, type: m.type, bytes, maxBatchBytes: this.limits.maxBatchBytes }, 'dropped a message larger than maxBatchBytes');
        continue;
      }
      if (peer.queue.length >= this.limits.maxQueuedMessagesPerPeer) {
        this.counters.droppedQueueFull++;
        continue;
      }
      peer.queue.push(m);
      touched.add(peer);
    }
    for (const peer of touched) this.pump(peer);
  }

  /** Takes the next batch off a peer's queue: at most maxMessagesPerBatch and about maxBatchBytes. */
  private nextBatch(peer: Peer): Message[] {
    const batch: Message[] = [];
    let bytes = ENVELOPE_MARGIN_BYTES;
    while (batch.length < this.limits.maxMessagesPerBatch) {
      const m = peer.queue.peek();
      if (m === undefined) break;
      const size = estimateMessageBytes(m);
      if (batch.length > 0 && bytes + size > this.limits.maxBatchBytes + ENVELOPE_MARGIN_BYTES) break;
      bytes += size;
      batch.push(m);
      peer.queue.shift();
    }
    return batch;
  }

  /**
   * Writes queued batches to the peer's stream, which keeps them in order. Up to
   * maxBatchesInFlightPerPeer may await their Ack (pipelining, Raft dissertation §10.2.2: the
   * leader does not wait a round trip per append), one while the stream is unproven, and none
   * while its buffer is full (HTTP/2 flow control: a slow peer slows us instead of growing a buffer).
   */
  private pump(peer: Peer): void {
    if (peer.removed || this.state === 'stopped') return;
    while (peer.queue.length > 0 && !peer.blocked) {
      if (peer.unacked.length >= (peer.proven ? this.limits.maxBatchesInFlightPerPeer : 1)) return;
      const stream = peer.stream ?? this.openStream(peer);
      const batch = this.nextBatch(peer);
      peer.unacked.push({ atNs: process.hrtime.bigint(), messages: batch.length });
      if (peer.deadlineTimer === null) this.armDeadline(peer, this.limits.sendTimeoutMs);
      if (!stream.write(batch)) peer.blocked = true;
    }
  }

  private openStream(peer: Peer): PeerStream {
    const stream: PeerStream = peer.client.openStream({
      onAck: (messages, batches) => {
        if (peer.stream !== stream) return;
        this.onAck(peer, messages, batches);
      },
      onDrain: () => {
        if (peer.stream !== stream) return;
        peer.blocked = false;
        this.pump(peer);
      },
      onError: (e) => {
        if (peer.stream !== stream) return;
        this.onStreamFailure(peer, e);
      },
    });
    peer.stream = stream;
    peer.proven = false;
    peer.blocked = false;
    return stream;
  }

  private onAck(peer: Peer, messages: number, batches: number): void {
    if (batches <= 0 || batches > peer.unacked.length) {
      // The peer acknowledged what we never sent on this stream: a bug on one side. Start over.
      this.onStreamFailure(peer, new TransportError('PEER_FAILED', `node ${peer.id} acknowledged ${batches} batches, ${peer.unacked.length} were in flight`, { grpcStatus: grpc.status.INTERNAL }));
      return;
    }
    const acked = peer.unacked.splice(0, batches);
    const newest = acked[acked.length - 1]!;
    this.counters.sentBatches += batches;
    this.counters.sentMessages += messages;
    // The round trip of the newest batch this Ack covers: network + TLS + HTTP/2 framing + the
    // peer's event-loop delay (its handler only queues the messages for its driver).
    this.opts.observer?.peerRtt(peer.id, Number(process.hrtime.bigint() - newest.atNs) / 1e9);
    peer.proven = true;
    if (!peer.healthy) this.opts.logger.info({ peer: peer.id }, 'peer reachable again');
    peer.healthy = true;
    this.pump(peer);
  }

  /** The oldest unacknowledged batch must be acknowledged within sendTimeoutMs, or the stream is given up. */
  private armDeadline(peer: Peer, ms: number): void {
    peer.deadlineTimer = setTimeout(() => {
      peer.deadlineTimer = null;
      const oldest = peer.unacked[0];
      if (oldest === undefined || peer.stream === null) return;
      const leftMs = this.limits.sendTimeoutMs - Number(process.hrtime.bigint() - oldest.atNs) / 1e6;
      if (leftMs > 0) {
        this.armDeadline(peer, Math.ceil(leftMs));
        return;
      }
      const e = new TransportError('PEER_FAILED', `Stream to node ${peer.id}: DEADLINE_EXCEEDED: no Ack within ${this.limits.sendTimeoutMs} ms`, { grpcStatus: grpc.status.DEADLINE_EXCEEDED });
      peer.stream.cancel(e);
    }, ms);
  }

  /** The stream failed: its unacknowledged batches are lost (raft retransmits), the next send opens a new one. */
  private onStreamFailure(peer: Peer, e: unknown): void {
    this.counters.failedBatches += peer.unacked.length;
    this.dropStream(peer);
    this.opts.observer?.peerSendFailed(peer.id);
    this.onPeerFailure(peer, e, 'send');
    this.pump(peer);
  }

  private dropStream(peer: Peer): void {
    const stream = peer.stream;
    peer.stream = null;
    peer.unacked = [];
    peer.proven = false;
    peer.blocked = false;
    if (peer.deadlineTimer !== null) clearTimeout(peer.deadlineTimer);
    peer.deadlineTimer = null;
    stream?.cancel();
  }

  private onPeerFailure(peer: Peer, e: unknown, what: string): void {
    if (peer.removed || this.state === 'stopped') return;
    const status = e instanceof TransportError ? e.grpcStatus : null;
    const log = { peer: peer.id, address: peer.address, err: e instanceof Error ? e.message : String(e) };
    if (peer.healthy) this.opts.logger.warn(log, `${what} to peer failed`);
    else this.opts.logger.debug(log, `${what} to peer failed`);
    peer.healthy = false;
    if (status !== null && UNREACHABLE_STATUSES.has(status)) {
      this.counters.unreachableReports++;
      this.opts.handler.onUnreachable(peer.id);
    }
  }

  // ---- snapshots -------------------------------------------------------------------------------

  private sendSnapMessage(m: MsgSnap): void {
    const data = m.snapshot.data;
    async function* single(): AsyncGenerator<Uint8Array> {
      yield data;
    }
    this.sendSnapshot(m.to, { term: m.term, metadata: m.snapshot.metadata }, single()).then(
      () => this.opts.handler.onSnapshotStatus(m.to, 'finished'),
      () => this.opts.handler.onSnapshotStatus(m.to, 'failure'),
    );
  }

  /**
   * Streams a snapshot to `to` (one at a time per peer). Resolves once the receiver has stored it
   * whole; rejects with TransportError otherwise.
   */
  async sendSnapshot(to: NodeId, header: { term: number; metadata: SnapshotMetadata }, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const peer = this.peers.get(to);
    if (peer === undefined) throw new TransportError('UNKNOWN_PEER', `no address for node ${to}`);
    if (this.state !== 'started') throw new TransportError('STOPPED', 'transport not started');
    if (peer.sendingSnapshot) throw new TransportError('LIMIT_EXCEEDED', `a snapshot to node ${to} is already being sent`);
    peer.sendingSnapshot = true;
    try {
      const bytes = await peer.client.sendSnapshot(header, chunks);
      this.counters.sentSnapshots++;
      this.opts.logger.info({ to, index: header.metadata.index, term: header.metadata.term, bytes }, 'sent snapshot');
    } catch (e) {
      this.counters.failedSnapshotSends++;
      this.onPeerFailure(peer, e, 'snapshot');
      throw e;
    } finally {
      peer.sendingSnapshot = false;
    }
  }

  // ---- forwarding -------------------------------------------------------------------------------

  /**
   * Forwards a client write to `to` (the leader as this node knows it). Never throws: transport
   * failures come back as UNAVAILABLE or TIMEOUT. A TIMEOUT or UNAVAILABLE after the request left
   * is ambiguous (the write may still commit); the caller retries with the same (sessionId, seq),
   * which the state machine deduplicates (Raft dissertation §6.3).
   */
  async forwardPropose(to: NodeId, req: ProposeRequest): Promise<ProposeResult> {
    const peer = this.peers.get(to);
    if (peer === undefined) return { ok: false, error: { code: 'UNAVAILABLE', leaderHint: 0, message: `no address for node ${to}` } };
    if (req.command.length > this.limits.maxCommandBytes) {
      return { ok: false, error: { code: 'INTERNAL', leaderHint: 0, message: `command of ${req.command.length} bytes exceeds maxCommandBytes ${this.limits.maxCommandBytes}` } };
    }
    const timeoutMs = Math.max(1, Math.min(req.timeoutMs, this.limits.maxForwardTimeoutMs));
    return peer.client.forward({ ...req, timeoutMs });
  }
}
