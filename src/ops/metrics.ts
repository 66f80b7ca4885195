// Prometheus metrics (prom-client) of a raftauth node.
//
// Three registries, because the metrics live in two kinds of process (DESIGN "Process model"):
//  - NodeMetrics, in the primary (src/node/metrics.ts: the node's own, re-exported here): raft,
//    proposals, fsync latency, snapshots and peer round-trip time.
//  - HttpMetrics, wherever HTTP is served (each worker, or the primary with http.workers: 0):
//    requests by route, method and status, and their latency.
//  - ProcessMetrics, one per process (the primary, each worker): prom-client's default process
//    and Node.js metrics (CPU, memory, file descriptors, event-loop lag, heap, GC), labelled
//    `process="primary"` or `process="worker-<id>"`; the primary's also has raftauth_build_info.
// A scrape of /metrics on any worker asks the primary (IPC), which collects every worker's
// HttpMetrics as JSON and merges them with its own (prom-client's AggregatorRegistry.aggregate:
// counters and histograms are summed, so the scrape shows the whole node whichever worker
// answered it). See src/server/process.ts.
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { MetricsJson } from '../node/metrics.ts';

export {
  ENTRY_COMMANDS_BUCKETS,
  FSYNC_BUCKETS_SECONDS,
  NodeMetrics,
  PROPOSAL_BUCKETS_SECONDS,
  ROLES,
  RTT_BUCKETS_SECONDS,
  SNAPSHOT_SIZE_BUCKETS_BYTES,
} from '../node/metrics.ts';
export type { MetricsJson, NodeGaugeSource, ProposalOutcome, SnapshotEvent } from '../node/metrics.ts';

/** The content type of the Prometheus text format (0.0.4) that /metrics answers. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** HTTP request latency: 1 ms to the longest deadline worth distinguishing (10 s). */
export const HTTP_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

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
