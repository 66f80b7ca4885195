// Types at the boundary between the transport and the node's actors (the raft driver, the
// proposal router, the read service). The transport knows nothing of what a command means.
import type { Message, NodeId, SnapshotMetadata } from '../raft/types.ts';

/** The MsgSnap of a snapshot stream, without its data (which arrives as chunks). */
export interface SnapshotHeader {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly metadata: SnapshotMetadata;
}

export type ForwardErrorCode = 'NOT_LEADER' | 'TIMEOUT' | 'PROPOSAL_DROPPED' | 'UNAVAILABLE' | 'INTERNAL';

export interface ForwardError {
  readonly code: ForwardErrorCode;
  /** For NOT_LEADER: the leader the receiver knows of, or 0 (NONE). */
  readonly leaderHint: NodeId;
  readonly message: string;
}

/** A client write forwarded by a follower to the leader. */
export interface ProposeRequest {
  readonly sessionId: string;
  readonly seq: number;
  /** Opaque, encoded state-machine command. */
  readonly command: Uint8Array;
  /** How long the caller still waits, in ms (relative: two nodes' clocks are not comparable). */
  readonly timeoutMs: number;
}

/** What the leader's handler sees: the request, its authenticated sender and a local deadline. */
export interface IncomingProposeRequest extends ProposeRequest {
  readonly from: NodeId;
  /** Local wall-clock deadline (Date.now() at arrival + timeoutMs). */
  readonly deadlineMs: number;
}

export type ProposeResult = { readonly ok: true; readonly result: Uint8Array } | { readonly ok: false; readonly error: ForwardError };

/**
 * The node side of the transport. Called for authenticated requests only: `from` is the node id
 * named by the peer's certificate (and claimed by the request).
 */
export interface TransportHandler {
  /** Raft messages from a peer, in the order the peer sent them. */
  onMessages(from: NodeId, messages: readonly Message[]): void | Promise<void>;
  /**
   * An incoming snapshot. The handler writes `chunks` to its sink (the storage layer's snapshot
   * receiver) and, once the iteration has completed, steps the MsgSnap (snapMessage() builds it).
   * The iteration throws if the stream breaks, exceeds its limits or fails its length/SHA-256
   * check, so a completed iteration means the data is whole. The promise's settlement is the
   * sender's answer: resolve = received, reject = failed (the sender's leader reports failure).
   */
  onSnapshot(header: SnapshotHeader, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  onPropose(req: IncomingProposeRequest): Promise<ProposeResult>;
  /**
   * A peer's own raft address, as it announced it when it opened a stream to us (the
   * RAFT_ADDRESS_METADATA of src/transport/peer-client.ts). `from` is the node its certificate
   * names; the address is its claim, well-formed (host:port) but not checked further. Optional.
   */
  onPeerAddress?(from: NodeId, address: string): void;
  /** A peer could not be reached; the raft driver calls rawNode.reportUnreachable(id). */
  onUnreachable(id: NodeId): void;
  /** Outcome of a MsgSnap handed to send(); the raft driver calls rawNode.reportSnapshot(id, status). */
  onSnapshotStatus(id: NodeId, status: 'finished' | 'failure'): void;
}

/** Structured logger; pino's Logger satisfies it. */
export interface TransportLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface TlsMaterial {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ListenAddress {
  /** Only loopback or a specific interface address; never a wildcard in tests. */
  readonly host: string;
  /** 0 = ephemeral (the bound port is returned by start()). */
  readonly port: number;
}
