// The node's /metrics, assembled in the primary (one of startServer's collaborators, process.ts).
//
// The node's metrics live in the primary, the HTTP metrics in whichever process serves HTTP. A
// scrape (a worker's /metrics asks over IPC `metrics`; with no workers the primary's own app asks
// directly) asks every worker serving HTTP for its HTTP and process metrics (IPC `metrics.collect`,
// answered by `metrics.report`), leaves out a worker that has not answered within the collect
// timeout or that exits meanwhile, and merges the reports with the node's and the primary's own
// (src/ops/metrics.ts; each process's default metrics carry a `process` label, so they stay apart
// in the merge). At most maxCollections scrapes are assembled at once; one more is refused, so a
// scraper cannot pile up collections.
import { NodeError } from '../node/api.ts';
import { isMetricsJson, metricsText } from '../ops/metrics.ts';
import type { MetricsJson } from '../ops/metrics.ts';
import type { Logger } from './log.ts';

/** A worker that can be asked for its metrics. */
export interface MetricsWorker {
  readonly id: number;
  /** Sends `metrics.collect` with this request id; throws when the worker cannot be reached. */
  requestMetrics(requestId: number): void;
}

/** Something that reports metrics of its own (ProcessMetrics, HttpMetrics). */
export interface MetricsSource {
  json(): Promise<MetricsJson>;
}

export interface MetricsAggregatorOptions {
  /** The node's own metrics; absent: none. */
  readonly nodeMetrics?: () => Promise<unknown>;
  /** The primary's own sources, in the order they are merged (process metrics, HTTP metrics when it serves HTTP). */
  readonly local: readonly MetricsSource[];
  /** The workers serving HTTP now. */
  readonly workers: () => readonly MetricsWorker[];
  readonly log: Logger;
  readonly collectTimeoutMs: number;
  readonly maxCollections: number;
}

export class MetricsAggregator {
  private readonly o: MetricsAggregatorOptions;
  private nextCollectId = 1;
  private collections = 0;
  /** Outstanding metrics.collect requests: (worker id, request id) → resolver. */
  private readonly waiters = new Map<string, (m: MetricsJson | null) => void>();

  constructor(o: MetricsAggregatorOptions) {
    this.o = o;
  }

  /** The merged metrics in Prometheus text format. Refused UNAVAILABLE past maxCollections scrapes at once. */
  async text(): Promise<string> {
    if (this.collections >= this.o.maxCollections) throw new NodeError('UNAVAILABLE', `${this.collections} metrics scrapes in progress, the limit`);
    this.collections++;
    try {
      const own = this.o.nodeMetrics ? await this.o.nodeMetrics() : [];
      if (!isMetricsJson(own)) throw new Error('the node returned malformed metrics');
      const primary = [own];
      for (const s of this.o.local) primary.push(await s.json());
      const reports = await Promise.all(this.o.workers().map((w) => this.collectFrom(w)));
      return await metricsText([...primary, ...reports.filter((r): r is MetricsJson => r !== null)]);
    } finally {
      this.collections--;
    }
  }

  /** A worker's `metrics.report`. A late one (its scrape went on without it) is dropped; a malformed one counts as no answer. */
  report(workerId: number, requestId: number, metrics: unknown): void {
    const waiter = this.waiters.get(`${workerId}:${requestId}`);
    if (!waiter) return; // too late: the scrape went on without it
    if (isMetricsJson(metrics)) waiter(metrics);
    else {
      this.o.log.error({ worker: workerId }, 'malformed metrics report from a worker');
      waiter(null);
    }
  }

  /** The worker exited: a scrape waiting for its metrics goes on without them at once. */
  workerExited(workerId: number): void {
    for (const [key, waiter] of [...this.waiters]) if (key.startsWith(`${workerId}:`)) waiter(null);
  }

  private collectFrom(worker: MetricsWorker): Promise<MetricsJson | null> {
    const id = this.nextCollectId++;
    const key = `${worker.id}:${id}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        this.o.log.warn({ worker: worker.id, timeoutMs: this.o.collectTimeoutMs }, 'worker did not report its metrics in time; left out of this scrape');
        resolve(null);
      }, this.o.collectTimeoutMs);
      this.waiters.set(key, (m) => {
        clearTimeout(timer);
        this.waiters.delete(key);
        resolve(m);
      });
      try {
        worker.requestMetrics(id);
      } catch {
        this.waiters.get(key)?.(null);
      }
    });
  }
}
