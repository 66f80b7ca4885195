// Prometheus metrics (prom-client) of a raftauth node.
//
// Three registries, because the metrics live in two kinds of process (DESIGN "Process model"):
//  - NodeMetrics, in the primary: raft (term, role, leader changes, commit/applied index, apply
//    lag), proposals and their latency, the fsync latency of the store's group commits, snapshots
//    (counts and sizes) and the peer round-trip time of the transport. One registry per node (not
//    prom-client's global one), so the in-process test clusters keep three nodes apart.
//  - HttpMetrics, wherever HTTP is served (each worker, or the primary with http.workers: 0):
//    requests by route, method and status, and their latency.
//  - ProcessMetrics, one per process (the primary, each worker): prom-client's default process
//    and Node.js metrics (CPU, memory, file descriptors, event-loop lag, heap, GC), labelled
//    `process="primary"` or `process="worker-<id>"`; the primary's also has raftauth_build_info.
// A scrape of /metrics on any worker asks the primary (IPC), which collects every worker's
// HttpMetrics as JSON and merges them with its own (prom-client's AggregatorRegistry.aggregate:
// counters and histograms are summed, so the scrape shows the whole node whichever worker
// answered it). See src/server/process.ts.
//
// Gauges that mirror node state (term, indexes) are read at scrape time through `collect`
// callbacks, so nothing is updated on the hot path for them.
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Role } from '../raft/types.ts';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** The content type of the Prometheus text format (0.0.4) that /metrics answers. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** fsync of a group commit: 0.1 ms (a write-back cache) to 1 s (a disk in trouble). */
export const FSYNC_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Proposal round trip, from the client's call to the entry being applied: 0.5 ms to 10 s (deadline-bound retries). */
export const PROPOSAL_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Peer RTT on loopback or a LAN (0.1 ms) up to a WAN or an overloaded peer (1 s). */
export const RTT_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** HTTP request latency: 1 ms to the longest deadline worth distinguishing (10 s). */
export const HTTP_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
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
    this.snapshots = new Counter({ name: 'raftauth_snapshots_total', help: 'Snapshots by event: created, installed, sent, received, send_failed.', labelNames: ['event'], registers });
    this.snapshotBytes = new Histogram({
      name: 'raftauth_snapshot_size_bytes',
      help: 'Size of snapshots created, installed, sent and received.',
      labelNames: ['event'],
      buckets: SNAPSHOT_SIZE_BUCKETS_BYTES,
      registers,
    });
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

/**
 * One process's own metrics: prom-client's defaults (collectDefaultMetrics: process_cpu_*,
 * process_resident_memory_bytes, process_open_fds, process_start_time_seconds,
 * nodejs_eventloop_lag_*, nodejs_heap_*, nodejs_gc_duration_seconds, …) with a `process` label,
 * and in the primary `raftauth_build_info{version}` (always 1: the version is the label).
 *
 * The label is what lets /metrics merge the processes of a node (metricsText): every process
 * reports the same family names, and prom-client's cluster aggregation would otherwise sum them,
 * average them or, for process_start_time_seconds, drop them. With one `process` value per
 * process no two processes share a series, and json() marks every family `sum`, which over a
 * single series passes it through unchanged.
 *
 * Get one through ProcessMetrics.of (the primary in process.ts, each worker in worker.ts): the
 * defaults hold an event-loop monitor and a GC observer for as long as the process runs, so a
 * process that starts a server several times (tests) reuses its instance instead of adding more.
 */
export class ProcessMetrics {
  private static readonly instances = new Map<string, ProcessMetrics>();
  readonly registry = new Registry();

  /** This process's instance for (node, process label, version), made at the first call. */
  static of(nodeId: number, processLabel: string, opts: { readonly version?: string } = {}): ProcessMetrics {
    const key = JSON.stringify([nodeId, processLabel, opts.version ?? null]);
    let m = ProcessMetrics.instances.get(key);
    if (!m) ProcessMetrics.instances.set(key, (m = new ProcessMetrics(nodeId, processLabel, opts)));
    return m;
  }

  private constructor(nodeId: number, processLabel: string, opts: { readonly version?: string }) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: String(nodeId) });
    collectDefaultMetrics({ register: this.registry, labels: { process: processLabel } });
    const version = opts.version;
    if (version !== undefined) {
      new Gauge({ name: 'raftauth_build_info', help: 'The raftauth version this node runs (package.json): always 1, the version is the label.', labelNames: ['version'], registers, collect() { this.set({ version }, 1); } });
    }
  }

  async json(): Promise<MetricsJson> {
    const families = (await this.registry.getMetricsAsJSON()) as MetricsJson;
    return families.map((m) => ({ ...m, aggregator: 'sum' }));
  }
}

/** Label for requests no route matched: one series for them all, so a scanner cannot explode the label set. */
export const UNMATCHED_ROUTE = 'unmatched';

/** The HTTP side: one per serving process. */
export class HttpMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly seconds: Histogram<'route' | 'method' | 'status'>;

  constructor(nodeId: number) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: String(nodeId) });
    this.requests = new Counter({ name: 'raftauth_http_requests_total', help: 'HTTP requests by route, method and status.', labelNames: ['route', 'method', 'status'], registers });
    this.seconds = new Histogram({
      name: 'raftauth_http_request_duration_seconds',
      help: 'HTTP request latency by route, method and status (from the request to the response sent).',
      labelNames: ['route', 'method', 'status'],
      buckets: HTTP_BUCKETS_SECONDS,
      registers,
    });
  }

  /** `route` is the route pattern (`/v1/kv/:key`), never the raw URL: bounded cardinality. */
  request(route: string, method: string, status: number, seconds: number): void {
    const labels = { route, method, status: String(status) };
    this.requests.inc(labels);
    this.seconds.observe(labels, seconds);
  }

  json(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON() as Promise<MetricsJson>;
  }
}

/**
 * Merge metric sets from several processes of one node into Prometheus text: counters and
 * histograms are summed series by series (prom-client's cluster aggregation); gauges too, which
 * is right here because each gauge family lives in exactly one process (the primary).
 */
export async function metricsText(parts: readonly MetricsJson[]): Promise<string> {
  const nonEmpty = parts.filter((p) => p.length > 0);
  if (nonEmpty.length === 0) return '';
  return AggregatorRegistry.aggregate(nonEmpty as MetricObjectWithValues<MetricValue<string>>[][]).metrics();
}

/** Shallow check of a metric set received over IPC (the aggregator trusts its input's shape). */
export function isMetricsJson(v: unknown): v is MetricsJson {
  return (
    Array.isArray(v) &&
    v.every((m) => typeof m === 'object' && m !== null && typeof (m as { name?: unknown }).name === 'string' && typeof (m as { type?: unknown }).type === 'string' && Array.isArray((m as { values?: unknown }).values))
  );
}
