// The client half of the peer transport: one gRPC channel to one peer, over mutual TLS, with the
// server's certificate checked to name the node we mean to call. Holds no queue; Transport does.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Message, NodeId, SnapshotMetadata } from '../raft/types.ts';
import { decodeForwardError, encodeMessage, encodeSnapshotHeader, u64 } from './codec.ts';
import { TransportError } from './errors.ts';
import type { TransportLimits } from './limits.ts';
import type {
  WireAck,
  WireMessageBatch,
  WireProposeRequest,
  WireProposeResponse,
  WireReadIndexRequest,
  WireReadIndexResponse,
  WireSnapshotAck,
  WireSnapshotChunk,
} from './proto.ts';
import { raftServiceDefinition } from './proto.ts';
import type { TransportStats } from './stats.ts';
import { channelCredentials } from './tls.ts';
import type { ForwardError, ProposeRequest, ProposeResult, ReadIndexRequest, ReadIndexResult, TlsMaterial, TransportLogger } from './types.ts';

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
  readonly observer?: TransportObserver;
}

/** Metrics hooks of the transport (src/ops/metrics.ts); called synchronously, must not throw. */
export interface TransportObserver {
  /** A batch of raft messages was acknowledged by `peer` `seconds` after the Send call began. */
  peerRtt(peer: NodeId, seconds: number): void;
  /** A Send call to `peer` failed. */
  peerSendFailed(peer: NodeId): void;
}

function methodDef(name: 'Send' | 'Snapshot' | 'Propose' | 'ReadIndex'): grpc.MethodDefinition<unknown, unknown> {
  const m = raftServiceDefinition[name];
  if (m === undefined) throw new Error(`Raft.${name} missing`);
  return m;
}
const SEND = methodDef('Send');
const SNAPSHOT = methodDef('Snapshot');
const PROPOSE = methodDef('Propose');
const READ_INDEX = methodDef('ReadIndex');

/** Channel options: message size limits, keepalive (notice a dead peer), reconnect backoff. */
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

export class PeerClient {
  readonly peerId: NodeId;
  readonly address: string;
  private readonly opts: PeerClientOptions;
  private readonly client: grpc.Client;

  constructor(opts: PeerClientOptions) {
    this.opts = opts;
    this.peerId = opts.peerId;
    this.address = opts.address;
    const creds = channelCredentials(opts.tls, opts.peerId, (reason, presented) => {
      opts.stats.refusedServerIdentity++;
      opts.logger.warn({ peer: opts.peerId, address: opts.address, presentedNode: presented, reason }, 'refused a peer server: its certificate names another node');
    });
    this.client = new grpc.Client(opts.address, creds, {
      ...channelOptions(opts.limits),
      // The TLS server name (SNI). grpc-js would send the address's host, often an IP, which
      // RFC 6066 §3 forbids in SNI. Our checkServerIdentity ignores the name either way.
      'grpc.ssl_target_name_override': `node-${opts.peerId}.raftauth`,
    });
  }

  close(): void {
    this.client.close();
  }

  /** The channel's connectivity state (for tests and health reporting). */
  state(): grpc.connectivityState {
    return this.client.getChannel().getConnectivityState(false);
  }

  private unary<Req, Res>(method: grpc.MethodDefinition<unknown, unknown>, req: Req, timeoutMs: number): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.client.makeUnaryRequest(
        method.path,
        method.requestSerialize as (r: Req) => Buffer,
        method.responseDeserialize as (b: Buffer) => Res,
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          if (err !== null || res === undefined) reject(peerFailed(`${method.path} to node ${this.peerId}`, err ?? new Error('empty response')));
          else resolve(res);
        },
      );
    });
  }

  /** Sends one batch as is. Exposed for tests that need to send what Transport never would. */
  sendWireBatch(batch: WireMessageBatch): Promise<WireAck> {
    return this.unary<WireMessageBatch, WireAck>(SEND, batch, this.opts.limits.sendTimeoutMs);
  }

  /** Sends raft messages (none of them MsgSnap) as one batch; resolves with the count accepted. */
  async sendBatch(msgs: readonly Message[]): Promise<number> {
    const wire = { from: this.opts.selfId, to: this.peerId, messages: msgs.map(encodeMessage) };
    // The round trip of the Send call: the peer's handler only queues the batch for its driver, so
    // this is network + TLS + gRPC framing + the peer's event-loop delay (peer RTT metric).
    const startNs = process.hrtime.bigint();
    let ack: WireAck;
    try {
      ack = await this.sendWireBatch(wire);
    } catch (e) {
      this.opts.observer?.peerSendFailed(this.peerId);
      throw e;
    }
    this.opts.observer?.peerRtt(this.peerId, Number(process.hrtime.bigint() - startNs) / 1e9);
    return ack.accepted;
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

  async propose(req: ProposeRequest): Promise<ProposeResult> {
    const wire: WireProposeRequest = { from: this.opts.selfId, sessionId: req.sessionId, seq: req.seq, command: req.command, timeoutMs: req.timeoutMs };
    try {
      const res = await this.unary<WireProposeRequest, WireProposeResponse>(PROPOSE, wire, req.timeoutMs);
      if (res.outcome === 'result' && res.result instanceof Uint8Array) return { ok: true, result: new Uint8Array(res.result.buffer, res.result.byteOffset, res.result.byteLength) };
      return { ok: false, error: decodeForwardError(res.error) };
    } catch (e) {
      return { ok: false, error: forwardErrorOf(e) };
    }
  }

  async readIndex(req: ReadIndexRequest): Promise<ReadIndexResult> {
    const wire: WireReadIndexRequest = { from: this.opts.selfId, timeoutMs: req.timeoutMs };
    try {
      const res = await this.unary<WireReadIndexRequest, WireReadIndexResponse>(READ_INDEX, wire, req.timeoutMs);
      if (res.outcome === 'index') return { ok: true, index: u64(res.index, 'index') };
      return { ok: false, error: decodeForwardError(res.error) };
    } catch (e) {
      return { ok: false, error: forwardErrorOf(e) };
    }
  }
}
