// Every limit of the peer transport, with its unit in its name (TIGER_STYLE: put a limit on
// everything). Defaults are sized for a 3–5 node cluster on a LAN; the node config may override
// any of them, and validateLimits refuses a combination that cannot work.

export interface TransportLimits {
  /** gRPC max send AND receive message size, on server and client. Larger messages are refused. */
  readonly maxMessageBytes: number;
  /** Target upper bound of one encoded MessageBatch (estimated conservatively, see codec.ts). */
  readonly maxBatchBytes: number;
  /** Messages in one batch, enforced by the sender (splits) and the receiver (refuses). */
  readonly maxMessagesPerBatch: number;
  /** Outbound queue length per peer, in messages. When full, new messages are dropped and counted. */
  readonly maxQueuedMessagesPerPeer: number;
  /** Size of one snapshot data chunk on the wire. */
  readonly maxSnapshotChunkBytes: number;
  /** Total snapshot data accepted in one stream, sent or received. */
  readonly maxSnapshotBytes: number;
  /** Snapshot streams a server accepts at once (each holds a sink open). */
  readonly maxConcurrentSnapshotReceives: number;
  /**
   * Batches written to a peer's stream that may await its Ack at once (the pipelining window);
   * HTTP/2 flow control may stop writing earlier.
   */
  readonly maxBatchesInFlightPerPeer: number;
  /** A batch not acknowledged within this gives its stream up and reports the peer unreachable. */
  readonly sendTimeoutMs: number;
  /** Deadline of a whole snapshot stream. */
  readonly snapshotTimeoutMs: number;
  /** Upper bound on the timeout a forwarded Propose/ReadIndex may ask for. */
  readonly maxForwardTimeoutMs: number;
  /**
   * Forwarded writes one ProposeStream may have waiting for their outcome on the server; more are
   * answered PROPOSAL_DROPPED at once (not proposed, so the sender may retry).
   */
  readonly maxForwardsInFlightPerStream: number;
  /**
   * Forwarded writes one ProposeStream Frame may carry (writes forwarded in the same turn share a
   * frame); a frame also leaves once its commands reach maxBatchBytes.
   */
  readonly maxForwardsPerFrame: number;
  /** Bytes of a proposal's opaque command. */
  readonly maxCommandBytes: number;
  /** Length of a session id string. */
  readonly maxSessionIdChars: number;
  /** A TLS handshake not finished in this time is abandoned (a stalled client holds no slot for long). */
  readonly handshakeTimeoutMs: number;
  /** Inbound connections the server holds at once; peers need one each. */
  readonly maxInboundConnections: number;
  /**
   * HTTP/2 keepalive: a PING every keepaliveTimeMs on every peer connection, idle or not, both
   * ways; one not answered within keepaliveTimeoutMs closes the connection (its calls fail
   * UNAVAILABLE, the peer is reported unreachable, the next call reconnects). This is what notices
   * a connection whose packets are silently dropped (a partition, a host gone without a RST): TCP
   * itself only retransmits, with a timeout that doubles on every loss, so without it a healed
   * link stayed unused for seconds (docs/transport.md, "Noticing a dead connection").
   */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /**
   * Reconnect backoff of the gRPC channel after a failed attempt (exponential ×1.6, jittered ±20%
   * by grpc-js). The cap decides how soon a peer that was down (killed, restarting) is dialed
   * again once it listens: up to 1.2 × maxReconnectBackoffMs after. A node restarted in a
   * running cluster serves only once the leader has reached it, so the cap is kept to a fraction
   * of the election timeout (reconnectBackoffFor; test/unit/transport/reconnect.test.ts): with a
   * 1 s cap a restart waited up to 1.2 s for the leader's next attempt. The cost of a low cap is
   * a connection attempt to a down peer every cap ms, a refused TCP connect each
   * (docs/transport.md).
   */
  readonly initialReconnectBackoffMs: number;
  readonly maxReconnectBackoffMs: number;
  /**
   * A connection attempt still unfinished after this is suspected to wait on a lost SYN (grpc-js
   * has no connect timeout, and the kernel retransmits a SYN after 1, 3, 7, 15… s; Linux 6.x
   * retries the first four a second apart). The peer is then probed with TLS handshakes of our
   * own, each abandoned after this long; once one completes, the channel is replaced so the next
   * attempt starts at once instead of at the next retransmission.
   * Each replacement that does not connect within the allowance doubles it, up to
   * maxConnectTimeoutMs (a peer too loaded to finish a TLS handshake in time still gets connected);
   * a connection that becomes ready restores it.
   */
  readonly connectTimeoutMs: number;
  readonly maxConnectTimeoutMs: number;
}

const MIB = 1024 * 1024;

export const DEFAULT_LIMITS: TransportLimits = {
  maxMessageBytes: 16 * MIB,
  maxBatchBytes: 4 * MIB,
  maxMessagesPerBatch: 1024,
  maxQueuedMessagesPerPeer: 4096,
  maxSnapshotChunkBytes: 1 * MIB,
  maxSnapshotBytes: 1024 * MIB,
  maxConcurrentSnapshotReceives: 2,
  maxBatchesInFlightPerPeer: 64,
  sendTimeoutMs: 5_000,
  snapshotTimeoutMs: 10 * 60_000,
  maxForwardTimeoutMs: 30_000,
  maxForwardsInFlightPerStream: 10_000,
  maxForwardsPerFrame: 512,
  maxCommandBytes: 1 * MIB,
  maxSessionIdChars: 128,
  handshakeTimeoutMs: 10_000,
  maxInboundConnections: 64,
  keepaliveTimeMs: 1_000,
  keepaliveTimeoutMs: 1_000,
  initialReconnectBackoffMs: 100,
  // A quarter of the default election timeout (raft.tickMs 100 × electionTick 10).
  maxReconnectBackoffMs: 250,
  connectTimeoutMs: 500,
  maxConnectTimeoutMs: 8_000,
};

/**
 * The reconnect backoff may reach at most this fraction of the election timeout: a restarted
 * peer is then dialed again within 1.2 × electionTimeout / RECONNECT_BACKOFF_ELECTION_DIVISOR of
 * listening (0.3 of it), which leaves most of an election timeout for the leader's heartbeat to
 * reach it before its own election timer (at least one election timeout after its start) fires.
 */
export const RECONNECT_BACKOFF_ELECTION_DIVISOR = 4;

/**
 * The reconnect backoff for a node whose election timeout is `electionTimeoutMs` (raft.tickMs ×
 * raft.electionTick): the defaults, capped at electionTimeoutMs / RECONNECT_BACKOFF_ELECTION_DIVISOR
 * (at least 1 ms), the initial backoff no larger than the cap.
 */
export function reconnectBackoffFor(electionTimeoutMs: number): Pick<TransportLimits, 'initialReconnectBackoffMs' | 'maxReconnectBackoffMs'> {
  if (!Number.isSafeInteger(electionTimeoutMs) || electionTimeoutMs <= 0) throw new RangeError(`election timeout must be a positive integer of ms, got ${String(electionTimeoutMs)}`);
  const maxReconnectBackoffMs = Math.max(1, Math.min(DEFAULT_LIMITS.maxReconnectBackoffMs, Math.floor(electionTimeoutMs / RECONNECT_BACKOFF_ELECTION_DIVISOR)));
  return { initialReconnectBackoffMs: Math.min(DEFAULT_LIMITS.initialReconnectBackoffMs, maxReconnectBackoffMs), maxReconnectBackoffMs };
}

/**
 * Room left in a gRPC message beyond a batch's or chunk's payload: the batch header, a snapshot
 * chunk's oneof tag and length. Batches and chunks must fit in maxMessageBytes with this margin.
 */
export const ENVELOPE_MARGIN_BYTES = 1024;

export function resolveLimits(overrides: Partial<TransportLimits> | undefined): TransportLimits {
  const limits: TransportLimits = { ...DEFAULT_LIMITS, ...overrides };
  validateLimits(limits);
  return limits;
}

export function validateLimits(l: TransportLimits): void {
  for (const [name, value] of Object.entries(l)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`transport limit ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  if (l.maxBatchBytes + ENVELOPE_MARGIN_BYTES > l.maxMessageBytes) {
    throw new RangeError(`maxBatchBytes (${l.maxBatchBytes}) + ${ENVELOPE_MARGIN_BYTES} must not exceed maxMessageBytes (${l.maxMessageBytes})`);
  }
  if (l.maxSnapshotChunkBytes + ENVELOPE_MARGIN_BYTES > l.maxMessageBytes) {
    throw new RangeError(`maxSnapshotChunkBytes (${l.maxSnapshotChunkBytes}) + ${ENVELOPE_MARGIN_BYTES} must not exceed maxMessageBytes (${l.maxMessageBytes})`);
  }
  if (l.maxCommandBytes + ENVELOPE_MARGIN_BYTES + l.maxSessionIdChars * 4 > l.maxMessageBytes) {
    throw new RangeError(`maxCommandBytes (${l.maxCommandBytes}) does not fit in maxMessageBytes (${l.maxMessageBytes})`);
  }
  if (l.maxForwardsPerFrame > l.maxForwardsInFlightPerStream) {
    throw new RangeError('maxForwardsPerFrame must not exceed maxForwardsInFlightPerStream');
  }
  if (l.maxCommandBytes + ENVELOPE_MARGIN_BYTES + l.maxSessionIdChars * 4 > l.maxBatchBytes) {
    throw new RangeError(`maxCommandBytes (${l.maxCommandBytes}) with its session id does not fit in maxBatchBytes (${l.maxBatchBytes}): one forwarded write must fit in a frame`);
  }
  if (l.maxMessagesPerBatch > l.maxQueuedMessagesPerPeer) {
    throw new RangeError('maxMessagesPerBatch must not exceed maxQueuedMessagesPerPeer');
  }
  if (l.initialReconnectBackoffMs > l.maxReconnectBackoffMs) {
    throw new RangeError('initialReconnectBackoffMs must not exceed maxReconnectBackoffMs');
  }
  if (l.connectTimeoutMs > l.maxConnectTimeoutMs) {
    throw new RangeError('connectTimeoutMs must not exceed maxConnectTimeoutMs');
  }
}
