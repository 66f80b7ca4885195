// The primary's metrics aggregator (src/server/metrics-aggregator.ts): a scrape merges the node's,
// the primary's and every worker's metrics; a worker that does not answer in time, exits, cannot be
// reached or reports garbage is left out without holding the scrape; scrapes at once are bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { NodeError } from '../../../src/node/api.ts';
import { HttpMetrics } from '../../../src/ops/metrics.ts';
import { MetricsAggregator } from '../../../src/server/metrics-aggregator.ts';
import type { MetricsWorker } from '../../../src/server/metrics-aggregator.ts';
import type { Logger } from '../../../src/server/log.ts';

/** A pino logger whose lines land in `lines`. */
function capture(): { log: Logger; lines: { level: number; msg: string; worker?: number }[] } {
  const lines: { level: number; msg: string; worker?: number }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { log, lines };
}

/** HTTP metrics with `n` requests counted on one series: each source gets a distinct power of two, so the sum says who was merged. */
function httpWith(n: number): HttpMetrics {
  const m = new HttpMetrics(1);
  for (let i = 0; i < n; i++) m.request('/t', 'GET', 200, 0.001);
  return m;
}

/** The merged value of the test series. */
function requests(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('raftauth_http_requests_total{') && l.includes('route="/t"'));
  assert.ok(line, `no test series in:\n${text}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

type Behaviour = 'answer' | 'silent' | 'throw' | 'garbage';

class FakeWorker implements MetricsWorker {
  readonly id: number;
  behaviour: Behaviour;
  readonly metrics: HttpMetrics;
  readonly requests: number[] = [];
  agg!: MetricsAggregator;
  private onRequest: (() => void) | null = null;

  constructor(id: number, behaviour: Behaviour, metrics: HttpMetrics) {
    this.id = id;
    this.behaviour = behaviour;
    this.metrics = metrics;
  }

  requestMetrics(requestId: number): void {
    if (this.behaviour === 'throw') throw new Error('not connected');
    this.requests.push(requestId);
    this.onRequest?.();
    // Answers asynchronously, as a worker over IPC does.
    if (this.behaviour === 'answer') void this.metrics.json().then((j) => this.agg.report(this.id, requestId, j));
    if (this.behaviour === 'garbage') setImmediate(() => this.agg.report(this.id, requestId, [{ nope: true }]));
  }

  /** Resolves once this worker has been asked (again). */
  asked(): Promise<void> {
    return new Promise((resolve) => (this.onRequest = resolve));
  }
}

function setup(behaviours: Behaviour[], opts: { collectTimeoutMs?: number; maxCollections?: number; nodeMetrics?: () => Promise<unknown> } = {}) {
  const { log, lines } = capture();
  const workers = behaviours.map((b, i) => new FakeWorker(i + 1, b, httpWith(4 << i)));
  const agg = new MetricsAggregator({
    nodeMetrics: opts.nodeMetrics ?? (() => httpWith(1).json()),
    local: [httpWith(2)],
    workers: () => workers,
    log,
    collectTimeoutMs: opts.collectTimeoutMs ?? 60_000,
    maxCollections: opts.maxCollections ?? 8,
  });
  for (const w of workers) w.agg = agg;
  return { agg, workers, lines };
}

test('a scrape merges the node\'s, the primary\'s and every worker\'s metrics', async () => {
  const { agg, workers } = setup(['answer', 'answer']);
  assert.equal(requests(await agg.text()), 1 + 2 + 4 + 8);
  assert.deepEqual(workers.map((w) => w.requests.length), [1, 1]);
  // Each scrape asks again: new counts show up.
  workers[1]!.metrics.request('/t', 'GET', 200, 0.001);
  assert.equal(requests(await agg.text()), 1 + 2 + 4 + 9);
});

test('a worker that exits while a scrape waits for it is left out at once', { timeout: 10_000 }, async () => {
  const { agg, workers } = setup(['answer', 'silent']);
  const asked = workers[1]!.asked();
  const scrape = agg.text();
  await asked;
  agg.workerExited(2);
  assert.equal(requests(await scrape), 1 + 2 + 4, 'the scrape did not wait the 60 s collect timeout');
});

test('a worker that does not answer within the collect timeout is left out, and logged', async () => {
  const { agg, lines } = setup(['answer', 'silent'], { collectTimeoutMs: 50 });
  assert.equal(requests(await agg.text()), 1 + 2 + 4);
  assert.ok(lines.some((l) => l.level === 40 && l.worker === 2 && /did not report its metrics in time/.test(l.msg)));
  // Its answer arriving later is dropped: nothing waits for it any more.
  const late = await httpWith(100).json();
  agg.report(2, 2, late);
  assert.equal(requests(await agg.text()), 1 + 2 + 4);
});

test('a worker that cannot be reached, or reports garbage, is left out', { timeout: 10_000 }, async () => {
  const { agg, workers, lines } = setup(['throw', 'garbage', 'answer']);
  assert.equal(requests(await agg.text()), 1 + 2 + 16);
  assert.equal(workers[0]!.requests.length, 0);
  assert.ok(lines.some((l) => l.level === 50 && l.worker === 2 && /malformed metrics report/.test(l.msg)));
});

test('scrapes at once are bounded: one more is refused UNAVAILABLE, and the bound frees up', { timeout: 10_000 }, async () => {
  const { agg, workers } = setup(['silent'], { maxCollections: 1 });
  const asked = workers[0]!.asked();
  const first = agg.text();
  await asked;
  await assert.rejects(agg.text(), (e: unknown) => e instanceof NodeError && e.code === 'UNAVAILABLE');
  agg.report(1, workers[0]!.requests[0]!, await workers[0]!.metrics.json());
  assert.equal(requests(await first), 1 + 2 + 4);
  workers[0]!.behaviour = 'answer';
  assert.equal(requests(await agg.text()), 1 + 2 + 4, 'the finished scrape gave its place back');
});

test('malformed node metrics fail the scrape, and do not hold a place', async () => {
  let good = false;
  const { agg } = setup([], { maxCollections: 1, nodeMetrics: async () => (good ? httpWith(1).json() : { not: 'metrics' }) });
  await assert.rejects(agg.text(), /the node returned malformed metrics/);
  good = true;
  assert.equal(requests(await agg.text()), 1 + 2);
});
