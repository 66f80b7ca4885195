// The node's Prometheus metrics (prom-client), in the primary: raft (term, role, leader changes,
// commit/applied index, apply lag), proposals and their latency, the fsync latency of the store's
// group commits, snapshots (counts and sizes) and the peer round-trip time of the transport. One
// registry per node (not prom-client's global one), so the in-process test clusters keep three
// nodes apart. They are the node's own (docs/architecture.md "Layers": the node imports nothing
// above it); src/ops/metrics.ts has the serving side's and merges them for /metrics.
//
// Gauges that mirror node state (term, indexes) are read at scrape time through `collect`
// callbacks, so nothing is updated on the hot path for them.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Role } from '../raft/types.ts';

/** A registry's metrics as prom-client JSON (what crosses IPC to be merged). */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** fsync of a group commit: 0.1 ms (a write-back cache) to 1 s (a disk in trouble). */
export const FSYNC_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Proposal round trip, from the client's call to the entry being applied: 0.5 ms to 10 s (deadline-bound retries). */
export const PROPOSAL_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Peer RTT on loopback or a LAN (0.1 ms) up to a WAN or an overloaded peer (1 s). */
export const RTT_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Snapshot sizes: 4 KiB to 4 GiB in powers of 4. */
export const SNAPSHOT_SIZE_BUCKETS_BYTES = Array.from({ length: 11 }, (_, i) => 4096 * 4 ** i);
/** Commands per proposed entry: 1 at low load, up to MAX_COMMANDS_PER_ENTRY (1,024) under load. */
export const ENTRY_COMMANDS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Every role of the core, once (a Record, so adding a role to the core fails to compile here until it is listed). */
const ROLE_SET: Record<Role, true> = { follower: true, preCandidate: true, candidate: true, leader: true };
/** Roles the role gauge knows; one series each, 1 for the current one. */
export const ROLES = Object.keys(ROLE_SET) as Role[];

/** What the node gauges read at scrape time. */
export interface NodeGaugeSource {
  term(): number;
  role(): string;
  leader(): number;
  commit(): number;
  applied(): number;
  /** What the log's entries after its head cost (the compaction policy's measure), if known. */
  logBytes?(): number;
}

export type ProposalOutcome = 'ok' | 'rejected' | 'unavailable' | 'timeout' | 'invalid' | 'stopping' | 'error';
export type SnapshotEvent = 'created' | 'installed' | 'sent' | 'received' | 'send_failed';

export class NodeMetrics {
  readonly nodeId: number;
  readonly registry = new Registry();
  private readonly leaderChanges: Counter;
  private readonly proposals: Counter<'outcome'>;
  private readonly proposalSeconds: Histogram<'outcome'>;
  private readonly fsyncSeconds: Histogram;
  private readonly unsyncedBatchSeconds: Histogram;
  private readonly snapshots: Counter<'event'>;
  private readonly snapshotBytes: Histogram<'event'>;
  private readonly compactionSeconds: Histogram;
  private readonly peerRttSeconds: Histogram<'peer'>;
  private readonly entryCommands: Histogram;
  private readonly peerSendFailures: Counter<'peer'>;

  constructor(nodeId: number, source: NodeGaugeSource) {
    this.nodeId = nodeId;
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: String(nodeId) });
    new Gauge({ name: 'raftauth_raft_term', help: 'Current Raft term of this node.', registers, collect() { this.set(source.term()); } });
    new Gauge({
      name: 'raftauth_raft_role',
      help: 'Raft role of this node: 1 for the current role, 0 for the others.',
      labelNames: ['role'],
      registers,
      collect() {
        const r = source.role();
        for (const role of ROLES) this.set({ role }, r === role ? 1 : 0);
      },
    });
    new Gauge({ name: 'raftauth_raft_leader', help: 'Id of the leader this node knows (0: none).', registers, collect() { this.set(source.leader()); } });
    new Gauge({ name: 'raftauth_raft_commit_index', help: 'Highest log index known to be committed.', registers, collect() { this.set(source.commit()); } });
    new Gauge({ name: 'raftauth_raft_applied_index', help: 'Highest log index applied to the state machine.', registers, collect() { this.set(source.applied()); } });
    new Gauge({
      name: 'raftauth_raft_apply_lag_entries',
      help: 'Committed entries not yet applied (commit index - applied index).',
      registers,
      collect() { this.set(Math.max(0, source.commit() - source.applied())); },
    });
    this.leaderChanges = new Counter({ name: 'raftauth_raft_leader_changes_total', help: 'Times the leader this node knows changed (including to none).', registers });
    this.proposals = new Counter({ name: 'raftauth_proposals_total', help: 'Writes proposed through this node, by outcome.', labelNames: ['outcome'], registers });
    this.proposalSeconds = new Histogram({
      name: 'raftauth_proposal_duration_seconds',
      help: 'Time from a write reaching this node to its outcome (applied, or the error), by outcome.',
      labelNames: ['outcome'],
      buckets: PROPOSAL_BUCKETS_SECONDS,
      registers,
    });
    this.fsyncSeconds = new Histogram({
      name: 'raftauth_storage_fsync_duration_seconds',
      help: 'Duration of each fsynced LevelDB batch (one per group commit).',
      buckets: FSYNC_BUCKETS_SECONDS,
      registers,
    });
    this.unsyncedBatchSeconds = new Histogram({
      name: 'raftauth_storage_unsynced_batch_duration_seconds',
      help: 'Duration of each LevelDB batch written without fsync (commit-index-only Readys).',
      buckets: FSYNC_BUCKETS_SECONDS,
      registers,
    });
    this.snapshots = new Counter({ name: 'raftauth_snapshots_total', help: 'Whole-state snapshots by event: created (a state file written for a follower or a backup), installed, sent, received, send_failed.', labelNames: ['event'], registers });
    this.snapshotBytes = new Histogram({
      name: 'raftauth_snapshot_size_bytes',
      help: 'Size of snapshots created, installed, sent and received.',
      labelNames: ['event'],
      buckets: SNAPSHOT_SIZE_BUCKETS_BYTES,
      registers,
    });
    this.compactionSeconds = new Histogram({
      name: 'raftauth_log_compaction_duration_seconds',
      help: 'Time to record a log compaction (one small batch; no state is copied).',
      buckets: FSYNC_BUCKETS_SECONDS,
      registers,
    });
    const logBytes = source.logBytes;
    if (logBytes !== undefined) {
      new Gauge({ name: 'raftauth_log_bytes', help: 'What the raft log after its head costs: entry data plus 128 bytes each (compacted past storage compactLogBytes).', registers, collect() { this.set(logBytes()); } });
    }
    this.peerRttSeconds = new Histogram({
      name: 'raftauth_peer_rtt_seconds',
      help: 'Round trip of a raft message batch to a peer (gRPC Send call to its acknowledgement).',
      labelNames: ['peer'],
      buckets: RTT_BUCKETS_SECONDS,
      registers,
    });
    this.entryCommands = new Histogram({
      name: 'raftauth_proposed_entry_commands',
      help: 'Commands in each log entry this node proposed as leader (every command proposed during one pass of the raft driver shares an entry).',
      buckets: ENTRY_COMMANDS_BUCKETS,
      registers,
    });
    this.peerSendFailures = new Counter({ name: 'raftauth_peer_send_failures_total', help: 'Raft message batches whose Send call to a peer failed.', labelNames: ['peer'], registers });
  }

  leaderChanged(): void {
    this.leaderChanges.inc();
  }

  proposal(outcome: ProposalOutcome, seconds: number): void {
    this.proposals.inc({ outcome });
    this.proposalSeconds.observe({ outcome }, seconds);
  }

  proposedEntry(commands: number): void {
    this.entryCommands.observe(commands);
  }

  storageBatch(seconds: number, synced: boolean): void {
    (synced ? this.fsyncSeconds : this.unsyncedBatchSeconds).observe(seconds);
  }

  snapshot(event: SnapshotEvent, bytes: number | null): void {
    this.snapshots.inc({ event });
    if (bytes !== null) this.snapshotBytes.observe({ event }, bytes);
  }

  compacted(seconds: number): void {
    this.compactionSeconds.observe(seconds);
  }

  peerRtt(peer: number, seconds: number): void {
    this.peerRttSeconds.observe({ peer: String(peer) }, seconds);
  }

  peerSendFailed(peer: number): void {
    this.peerSendFailures.inc({ peer: String(peer) });
  }

  json(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON() as Promise<MetricsJson>;
  }
}
