// The client half of the peer transport: one gRPC channel to one peer, over mutual TLS, with the
// server's certificate checked to name the node we mean to call. Holds no queue; Transport does.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { Message, NodeId, SnapshotMetadata } from '../raft/types.ts';
import { encodeSnapshotHeader, u64 } from './codec.ts';
import { TransportError } from './errors.ts';
import type { TransportLimits } from './limits.ts';
import { ENVELOPE_MARGIN_BYTES } from './limits.ts';
import type { WireAck, WireSnapshotAck, WireSnapshotChunk } from './proto.ts';
import { raftFrameServiceDefinition } from './proto.ts';
import { decodeOutcomesFrame, encodeForwardFrame, encodeRaftFrame, frameData } from './frames.ts';
import type { ForwardItem } from './frames.ts';
import type { TransportStats } from './stats.ts';
import { channelCredentials, probeTlsOptions } from './tls.ts';
import type { ForwardError, ProposeRequest, ProposeResult, TlsMaterial, TransportLogger } from './types.ts';

export interface PeerClientOptions {
  /** The id this client claims (it must be the one its certificate names, or the peer refuses). */
  readonly selfId: NodeId;
  readonly peerId: NodeId;
  /** host:port */
  readonly address: string;
  readonly tls: TlsMaterial;
  readonly limits: TransportLimits;
  readonly logger: TransportLogger;
  readonly stats: TransportStats;
  /**
   * This node's own raft address (host:port), sent as RAFT_ADDRESS_METADATA when a Stream opens so
   * that a peer with no address for us (a joiner before its snapshot) can answer. Optional.
   */
  readonly advertiseAddress?: string;
}

/**
 * The gRPC metadata key of a Stream call that carries the caller's raft address (host:port). The
 * receiver trusts it only from the peer the TLS certificate authenticates, and only to reach that
 * peer while it knows no address for it (src/node/driver.ts learnPeerAddress).
 */
export const RAFT_ADDRESS_METADATA = 'raftauth-raft-address';

/** Metrics hooks of the transport (src/node/metrics.ts); called synchronously, must not throw. */
export interface TransportObserver {
  /** A batch of raft messages was acknowledged by `peer` `seconds` after it was written to the stream. */
  peerRtt(peer: NodeId, seconds: number): void;
  /** A batch to `peer` failed (its stream failed or was given up). */
  peerSendFailed(peer: NodeId): void;
}

function methodDef(name: 'Stream' | 'Snapshot' | 'ProposeStream'): grpc.MethodDefinition<unknown, unknown> {
  const m = raftFrameServiceDefinition[name];
  if (m === undefined) throw new Error(`Raft.${name} missing`);
  return m;
}
const STREAM = methodDef('Stream');
const PROPOSE_STREAM = methodDef('ProposeStream');
const SNAPSHOT = methodDef('Snapshot');

/**
 * Channel options: message size limits, keepalive (notice a connection whose packets vanish),
 * reconnect backoff (limits.ts says why each value).
 */
export function channelOptions(limits: TransportLimits): grpc.ChannelOptions {
  return {
    'grpc.max_send_message_length': limits.maxMessageBytes,
    'grpc.max_receive_message_length': limits.maxMessageBytes,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.initial_reconnect_backoff_ms': limits.initialReconnectBackoffMs,
    'grpc.max_reconnect_backoff_ms': limits.maxReconnectBackoffMs,
    // Raft tolerates loss and retransmits by itself; a transparent retry could duplicate a
    // forwarded proposal or reorder batches.
    'grpc.enable_retries': 0,
    // Each peer client owns its connection: a shared subchannel pool could hand a connection made
    // with one identity check to a client that expects another node.
    'grpc.use_local_subchannel_pool': 1,
  };
}

function peerFailed(what: string, e: unknown): TransportError {
  const se = e as Partial<grpc.ServiceError>;
  const status = typeof se.code === 'number' ? se.code : grpc.status.UNKNOWN;
  return new TransportError('PEER_FAILED', `${what}: ${grpc.status[status] ?? status}: ${se.details ?? (e as Error).message}`, { cause: e, grpcStatus: status });
}

function forwardErrorOf(e: unknown): ForwardError {
  const status = e instanceof TransportError ? e.grpcStatus : null;
  const message = e instanceof Error ? e.message : String(e);
  if (status === grpc.status.DEADLINE_EXCEEDED) return { code: 'TIMEOUT', leaderHint: 0, message };
  if (status === grpc.status.UNAVAILABLE || status === grpc.status.CANCELLED) return { code: 'UNAVAILABLE', leaderHint: 0, message };
  return { code: 'INTERNAL', leaderHint: 0, message };
}

/** What a PeerStream reports; each callback runs only while the stream is alive. */
export interface PeerStreamEvents {
  /** The peer handed `batches` more batches (`messages` messages), in the order written, to its node. */
  onAck(messages: number, batches: number): void;
  /** Writing may go on after write() returned false. */
  onDrain(): void;
  /** The stream failed or the peer ended it; called at most once, and nothing follows it. */
  onError(e: TransportError): void;
}

/**
 * One long-lived Stream call to a peer (src/transport/raft.proto, rpc Stream): batches go out in order as
 * DATA frames on one HTTP/2 stream, and the peer's Acks come back on it. The owner (Transport)
 * keeps the per-batch bookkeeping: the window, the deadline, the counters.
 */
export class PeerStream {
  private readonly selfId: NodeId;
  private readonly peerId: NodeId;
  private readonly events: PeerStreamEvents;
  /** Called once when the stream dies (failed or cancelled), before any event about it. */
  private readonly onGone: (s: PeerStream) => void;
  private dead = false;
  private readonly call: grpc.ClientDuplexStream<Buffer, WireAck>;

  constructor(
    client: grpc.Client,
    selfId: NodeId,
    peerId: NodeId,
    events: PeerStreamEvents,
    onGone: (s: PeerStream) => void = () => undefined,
    advertiseAddress?: string,
  ) {
    this.selfId = selfId;
    this.peerId = peerId;
    this.events = events;
    this.onGone = onGone;
    const metadata = new grpc.Metadata();
    if (advertiseAddress !== undefined) metadata.set(RAFT_ADDRESS_METADATA, advertiseAddress);
    this.call = client.makeBidiStreamRequest(
      STREAM.path,
      STREAM.requestSerialize as (b: Buffer) => Buffer,
      STREAM.responseDeserialize as (b: Buffer) => WireAck,
      metadata,
      {},
    );
    this.call.on('data', (ack: WireAck) => {
      if (!this.dead) this.events.onAck(ack.accepted, ack.batches);
    });
    this.call.on('drain', () => {
      if (!this.dead) this.events.onDrain();
    });
    this.call.on('error', (e: unknown) => this.fail(peerFailed(`Stream to node ${this.peerId}`, e)));
    // The server never ends a healthy stream by itself; an OK end means it went away cleanly.
    this.call.on('status', (st: grpc.StatusObject) => {
      if (st.code === grpc.status.OK) this.fail(new TransportError('PEER_FAILED', `Stream to node ${this.peerId} ended by the peer`, { grpcStatus: grpc.status.UNAVAILABLE }));
    });
  }

  /** Writes one batch (none of it MsgSnap). False: the stream's buffer is full, wait for onDrain. */
  write(msgs: readonly Message[]): boolean {
    return this.call.write(encodeRaftFrame(this.selfId, this.peerId, msgs));
  }

  /** Gives the stream up (no event follows); `why`, when given, is reported as its failure. */
  cancel(why?: TransportError): void {
    if (why !== undefined) this.fail(why);
    if (!this.dead) this.onGone(this);
    this.dead = true;
    this.call.cancel();
  }

  private fail(e: TransportError): void {
    if (this.dead) return;
    this.dead = true;
    this.onGone(this);
    this.events.onError(e);
  }
}

/** The forwarding stream to one peer and the writes waiting on it, by request id. */
interface ForwardStream {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly waiting: Map<number, (r: ProposeResult) => void>;
  /** Writes forwarded during this turn of the event loop, sent as one Frame at its end. */
  pending: ForwardItem[];
  /** Command bytes in `pending`: a frame leaves early once they reach limits.maxBatchBytes. */
  pendingBytes: number;
  flushScheduled: boolean;
}

/** The TLS server name (SNI) we send to node `id`. */
function serverName(id: NodeId): string {
  return `node-${id}.raftauth`;
}

/** host and port of a "host:port" peer address (an IPv6 host in brackets). */
function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(address.slice(colon + 1)) };
}

export class PeerClient {
  readonly peerId: NodeId;
  readonly address: string;
  private readonly opts: PeerClientOptions;
  private readonly creds: grpc.ChannelCredentials;
  /** The channel; replaced (resetChannel) when a connection attempt is stuck. */
  private client: grpc.Client;
  /** Raft streams open on `client`, so a channel reset can fail them at once. */
  private readonly streams = new Set<PeerStream>();
  private forwardStream: ForwardStream | null = null;
  private nextForwardId = 1;
  private closed = false;
  /** Fires connectTimeoutMs into a connection attempt, and between probes. */
  private connectTimer: NodeJS.Timeout | null = null;
  /** The reachability probe in flight (a plain TLS handshake), if any. */
  private probe: TLSSocket | null = null;
  /** How long an attempt may stay CONNECTING before the peer is probed (limits.connectTimeoutMs, doubled per fruitless reset). */
  private connectAllowanceMs: number;

  constructor(opts: PeerClientOptions) {
    this.opts = opts;
    this.peerId = opts.peerId;
    this.address = opts.address;
    this.creds = channelCredentials(opts.tls, opts.peerId, (reason, presented) => {
      opts.stats.refusedServerIdentity++;
      opts.logger.warn({ peer: opts.peerId, address: opts.address, presentedNode: presented, reason }, 'refused a peer server: its certificate names another node');
    });
    this.connectAllowanceMs = opts.limits.connectTimeoutMs;
    this.client = this.newChannel();
    this.watchChannel(this.client);
  }

  private newChannel(): grpc.Client {
    const client = new grpc.Client(this.address, this.creds, {
      ...channelOptions(this.opts.limits),
      // The TLS server name (SNI). grpc-js would send the address's host, often an IP, which
      // RFC 6066 §3 forbids in SNI. Our checkServerIdentity ignores the name either way.
      'grpc.ssl_target_name_override': serverName(this.peerId),
    });
    return client;
  }

  close(): void {
    this.closed = true;
    this.stopConnectWatch();
    this.failForwards(this.forwardStream, { code: 'UNAVAILABLE', leaderHint: 0, message: `the channel to node ${this.peerId} was closed` });
    this.client.close();
  }

  // ---- stuck connection attempts -------------------------------------------------------------
  //
  // grpc-js gives a connection attempt no deadline. An attempt made while the peer's packets are
  // dropped waits on the kernel's SYN retransmissions (1, 3, 7, 15… s after it began; on Linux
  // 6.x the first four come a second apart, then they double), so after a partition heals the
  // channel could stay unconnected for seconds more. A channel CONNECTING for longer than
  // connectTimeoutMs is therefore watched: the peer is probed with TLS handshakes of our own (each
  // abandoned after the allowance, so none waits on a retransmission), and as soon as one
  // completes while the channel still has not, the channel is replaced by a new one, whose attempt
  // starts at once. The abandoned attempt's socket ends with its next SYN (answered, then closed
  // by grpc-js) or when the kernel gives up on it. An attempt that is merely slow (a loaded peer
  // still in the TLS handshake) is abandoned too, so each reset doubles the allowance, up to
  // maxConnectTimeoutMs, until a connection becomes ready.

  private watchChannel(client: grpc.Client): void {
    const channel = client.getChannel();
    const check = (): void => {
      if (this.closed || this.client !== client) return;
      const state = channel.getConnectivityState(false);
      if (state === grpc.connectivityState.READY) this.connectAllowanceMs = this.opts.limits.connectTimeoutMs;
      if (state !== grpc.connectivityState.CONNECTING) this.stopConnectWatch();
      else if (this.connectTimer === null && this.probe === null) this.scheduleProbe(client, this.connectAllowanceMs);
      if (state !== grpc.connectivityState.SHUTDOWN) channel.watchConnectivityState(state, Infinity, check);
    };
    check();
  }

  private stopConnectWatch(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.probe?.destroy();
    this.probe = null;
  }

  private stuck(client: grpc.Client): boolean {
    return !this.closed && this.client === client && client.getChannel().getConnectivityState(false) === grpc.connectivityState.CONNECTING;
  }

  private scheduleProbe(client: grpc.Client, ms: number): void {
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      if (this.stuck(client)) this.startProbe(client);
    }, ms);
  }

  /**
   * One probe: a TLS handshake made like the channel's (so the peer's server takes it for what it
   * is, a peer that connected and left, and logs no refused handshake), bounded by the allowance.
   */
  private startProbe(client: grpc.Client): void {
    const allowanceMs = this.connectAllowanceMs;
    const startedMs = performance.now();
    const socket = tlsConnect({ ...splitAddress(this.address), ...probeTlsOptions(this.opts.tls, this.peerId, serverName(this.peerId)) });
    this.probe = socket;
    const timer = setTimeout(() => done(false), allowanceMs);
    const done = (connected: boolean): void => {
      if (this.probe !== socket) return;
      this.probe = null;
      clearTimeout(timer);
      if (connected) {
        // end(), not destroy(): our last handshake flight and close_notify still go out, so the
        // server sees a finished handshake. A peer that does not close in turn is cut off.
        socket.end();
        setTimeout(() => socket.destroy(), allowanceMs).unref();
      } else {
        socket.destroy();
      }
      if (!this.stuck(client)) return;
      if (connected) {
        this.resetChannel();
        return;
      }
      // Unreachable still: probe again, no more often than once per allowance.
      this.scheduleProbe(client, Math.max(0, allowanceMs - (performance.now() - startedMs)));
    };
    socket.once('secureConnect', () => done(true));
    socket.on('error', () => done(false));
  }

  /** Replaces the channel: everything on the old one fails UNAVAILABLE (raft retransmits, forwards are retried). */
  private resetChannel(): void {
    this.stopConnectWatch();
    const old = this.client;
    this.client = this.newChannel();
    this.watchChannel(this.client);
    this.opts.stats.channelResets++;
    this.opts.logger.info({ peer: this.peerId, address: this.address, allowanceMs: this.connectAllowanceMs }, 'peer reachable but the connection attempt is stuck: new channel');
    this.connectAllowanceMs = Math.min(this.connectAllowanceMs * 2, this.opts.limits.maxConnectTimeoutMs);
    const why = new TransportError('PEER_FAILED', `Stream to node ${this.peerId}: UNAVAILABLE: connection attempt abandoned`, { grpcStatus: grpc.status.UNAVAILABLE });
    for (const s of [...this.streams]) s.cancel(why);
    this.failForwards(this.forwardStream, { code: 'UNAVAILABLE', leaderHint: 0, message: `the connection attempt to node ${this.peerId} was abandoned` });
    old.close();
  }

  /** The channel's connectivity state (for tests and health reporting). */
  state(): grpc.connectivityState {
    return this.client.getChannel().getConnectivityState(false);
  }

  /** Opens a Stream call to the peer (the path every raft message but MsgSnap takes). */
  openStream(events: PeerStreamEvents): PeerStream {
    const stream = new PeerStream(this.client, this.opts.selfId, this.peerId, events, (s) => this.streams.delete(s), this.opts.advertiseAddress);
    this.streams.add(stream);
    return stream;
  }

  /**
   * Streams a snapshot: header, data in chunks of at most maxSnapshotChunkBytes, trailer with
   * length and SHA-256. Honours HTTP/2 flow control (waits for 'drain'), so a slow receiver slows
   * the sender instead of growing a buffer. Resolves with the bytes the receiver acknowledged.
   */
  async sendSnapshot(header: { term: number; metadata: SnapshotMetadata }, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    const { limits } = this.opts;
    let call!: grpc.ClientWritableStream<WireSnapshotChunk>;
    const response = new Promise<WireSnapshotAck>((resolve, reject) => {
      call = this.client.makeClientStreamRequest(
        SNAPSHOT.path,
        SNAPSHOT.requestSerialize as (c: WireSnapshotChunk) => Buffer,
        SNAPSHOT.responseDeserialize as (b: Buffer) => WireSnapshotAck,
        new grpc.Metadata(),
        { deadline: Date.now() + limits.snapshotTimeoutMs },
        (err, res) => {
          if (err !== null || res === undefined) reject(peerFailed(`snapshot to node ${this.peerId}`, err ?? new Error('empty response')));
          else resolve(res);
        },
      );
    });
    let done = false;
    const ended = response.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    const write = async (c: WireSnapshotChunk): Promise<void> => {
      if (done) return;
      if (!call.write(c)) await Promise.race([once(call, 'drain'), ended]);
    };
    let total = 0;
    const hash = createHash('sha256');
    try {
      await write({ header: encodeSnapshotHeader({ from: this.opts.selfId, to: this.peerId, term: header.term, metadata: header.metadata }) });
      for await (const chunk of chunks) {
        for (let off = 0; off < chunk.length && !done; off += limits.maxSnapshotChunkBytes) {
          const piece = chunk.subarray(off, off + limits.maxSnapshotChunkBytes);
          total += piece.length;
          if (total > limits.maxSnapshotBytes) throw new TransportError('LIMIT_EXCEEDED', `snapshot exceeds maxSnapshotBytes ${limits.maxSnapshotBytes}`);
          hash.update(piece);
          await write({ data: piece });
        }
        if (done) break;
      }
      await write({ trailer: { totalBytes: total, sha256: hash.digest() } });
      call.end();
    } catch (e) {
      call.cancel();
      await ended;
      throw e;
    }
    const ack = await response;
    const received = u64(ack.receivedBytes, 'receivedBytes');
    if (received !== total) throw new TransportError('PEER_FAILED', `node ${this.peerId} acknowledged ${received} snapshot bytes, ${total} were sent`);
    return received;
  }

  /**
   * Forwards a write on the peer's ProposeStream (opened on demand). Never throws: a stream that
   * fails answers every write waiting on it UNAVAILABLE, and a write not answered within its
   * timeout is answered TIMEOUT here (the leader's late answer is then ignored). Both are ambiguous
   * for the caller, who retries with the same (session, seq).
   */
  forward(req: ProposeRequest): Promise<ProposeResult> {
    const stream = this.forwardStream ?? this.openForwardStream();
    const id = this.nextForwardId++;
    return new Promise<ProposeResult>((resolve) => {
      const timer = setTimeout(() => {
        if (stream.waiting.delete(id)) resolve({ ok: false, error: { code: 'TIMEOUT', leaderHint: 0, message: `no answer from node ${this.peerId} within ${req.timeoutMs} ms` } });
      }, req.timeoutMs);
      stream.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      // Every write forwarded during this turn of the event loop leaves in one Frame at its end
      // (one DATA frame, one TLS record, one write system call for all of them); no timer adds
      // latency, and a full frame leaves at once.
      const limits = this.opts.limits;
      if (stream.pendingBytes + req.command.length + limits.maxSessionIdChars * 4 + ENVELOPE_MARGIN_BYTES > limits.maxBatchBytes) this.flushForwards(stream);
      stream.pending.push({ id, timeoutMs: req.timeoutMs, sessionId: req.sessionId, seq: req.seq, command: req.command });
      stream.pendingBytes += req.command.length + 64 + req.sessionId.length * 4;
      if (stream.pending.length >= limits.maxForwardsPerFrame) this.flushForwards(stream);
      else if (!stream.flushScheduled) {
        stream.flushScheduled = true;
        setImmediate(() => this.flushForwards(stream));
      }
    });
  }

  private flushForwards(stream: ForwardStream): void {
    stream.flushScheduled = false;
    if (stream.pending.length === 0 || this.forwardStream !== stream) return;
    const items = stream.pending;
    stream.pending = [];
    stream.pendingBytes = 0;
    stream.call.write(encodeForwardFrame(this.opts.selfId, items));
  }

  private openForwardStream(): ForwardStream {
    const call = this.client.makeBidiStreamRequest(
      PROPOSE_STREAM.path,
      PROPOSE_STREAM.requestSerialize as (r: Buffer) => Buffer,
      PROPOSE_STREAM.responseDeserialize as (b: Buffer) => Buffer,
      new grpc.Metadata(),
      {},
    );
    const stream: ForwardStream = { call, waiting: new Map(), pending: [], pendingBytes: 0, flushScheduled: false };
    this.forwardStream = stream;
    call.on('data', (frame: Buffer) => {
      let outcomes;
      try {
        outcomes = decodeOutcomesFrame(frameData(frame), this.opts.limits.maxMessageBytes);
      } catch (e) {
        // The leader sent what we cannot read: give the stream up (its writes are ambiguous).
        this.failForwards(stream, { code: 'INTERNAL', leaderHint: 0, message: `ProposeStream from node ${this.peerId}: ${(e as Error).message}` });
        return;
      }
      for (const o of outcomes) {
        const answer = stream.waiting.get(o.id);
        if (answer === undefined) continue; // timed out here already
        stream.waiting.delete(o.id);
        answer(o.ok ? { ok: true, result: o.result } : { ok: false, error: o.error });
      }
    });
    call.on('error', (e: unknown) => this.failForwards(stream, forwardErrorOf(peerFailed(`ProposeStream to node ${this.peerId}`, e))));
    call.on('status', (st: grpc.StatusObject) => {
      if (st.code === grpc.status.OK) this.failForwards(stream, { code: 'UNAVAILABLE', leaderHint: 0, message: `ProposeStream to node ${this.peerId} ended by the peer` });
    });
    return stream;
  }

  /** The stream is gone: everything waiting on it is answered `error`; the next forward opens a new one. */
  private failForwards(stream: ForwardStream | null, error: ForwardError): void {
    if (stream === null) return;
    if (this.forwardStream === stream) this.forwardStream = null;
    const waiting = [...stream.waiting.values()];
    stream.waiting.clear();
    stream.pending = [];
    stream.pendingBytes = 0;
    for (const answer of waiting) answer({ ok: false, error });
    stream.call.cancel();
  }
}
