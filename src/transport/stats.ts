// Counters of the peer transport, for metrics and for tests that check a drop really happened.
// Plain mutable numbers owned by one Transport; read them through Transport.stats() (a copy).

export interface TransportStats {
  sentBatches: number;
  sentMessages: number;
  /** Batches whose Send call failed; their messages are lost (raft retransmits). */
  failedBatches: number;
  /** Messages dropped because the peer's outbound queue was full. */
  droppedQueueFull: number;
  /** Messages dropped because one message alone exceeds maxBatchBytes. */
  droppedOversize: number;
  /** Messages dropped because no address is known for the destination. */
  droppedUnknownPeer: number;
  receivedBatches: number;
  receivedMessages: number;
  /** Batches refused for exceeding maxMessagesPerBatch. */
  refusedBatches: number;
  /** TLS handshakes refused (no client certificate, or one from another CA). */
  refusedHandshakes: number;
  /** Requests refused because the certificate names another node than the request claims. */
  refusedIdentity: number;
  /** Servers we refused because their certificate named another node than the one we called. */
  refusedServerIdentity: number;
  sentSnapshots: number;
  failedSnapshotSends: number;
  receivedSnapshots: number;
  failedSnapshotReceives: number;
  unreachableReports: number;
  /** Inbound TCP connections accepted by the peer listener (before their TLS handshake). */
  acceptedConnections: number;
  /** Peer channels replaced because their connection attempt was stuck while the peer answered a probe. */
  channelResets: number;
}

export function newStats(): TransportStats {
  return {
    sentBatches: 0,
    sentMessages: 0,
    failedBatches: 0,
    droppedQueueFull: 0,
    droppedOversize: 0,
    droppedUnknownPeer: 0,
    receivedBatches: 0,
    receivedMessages: 0,
    refusedBatches: 0,
    refusedHandshakes: 0,
    refusedIdentity: 0,
    refusedServerIdentity: 0,
    sentSnapshots: 0,
    failedSnapshotSends: 0,
    receivedSnapshots: 0,
    failedSnapshotReceives: 0,
    unreachableReports: 0,
    channelResets: 0,
    acceptedConnections: 0,
  };
}
