// The load of every OAuth measurement: N closed-loop virtual clients, one request in flight each,
// the k-th request of client c sent to endpoint (c + k) mod endpoints (keep-alive agents from
// scripts/bench/client.ts, the same client as bench:replication). One attempt per request, no
// retry: any answer but 200 is an error, counted by status and OAuth error code. A warm-up, then a
// measured window: requests that complete inside it are counted (successes into the latency
// histogram). A source may run dry (minted authorization codes): the window then ends there.
import { LatencyHistogram } from '../bench/histogram.ts';
import type { LatencySummary } from '../bench/histogram.ts';
import { AttemptError } from '../bench/client.ts';
import type { Answer, HttpCall, Pool } from '../bench/client.ts';

/** What one virtual client sends next, and what it makes of the answer. */
export interface RequestSource {
  /** The next request of client `c`, or null when it has nothing left to send (it stops). */
  next(c: number): HttpCall | null;
  /** Called with every HTTP answer of client `c` (success or not), before its next request. */
  answered?(c: number, call: HttpCall, a: Answer): void;
  /** Called when an attempt got no HTTP answer (network error, timeout). */
  failed?(c: number, call: HttpCall, code: string): void;
}

export interface LoadResult {
  readonly concurrency: number;
  /** Length of the measured window in seconds (shorter than asked when the source ran dry). */
  readonly measuredSeconds: number;
  /** Successful (200) requests completed inside the window. */
  readonly ok: number;
  readonly requestsPerSec: number;
  /** Latency of the successful requests. */
  readonly latency: LatencySummary;
  /** Failed requests inside the window, by `HTTP <status> <error>` or network error code. */
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  /** Seconds into the window when the source ran dry (every client stopped), or null. */
  readonly ranDryAtS: number | null;
  /** Requests completed during the warm-up (not measured), and the failed ones among them by kind. */
  readonly warmup: { readonly ok: number; readonly errors: Record<string, number> };
}

/** `HTTP <status> <error>` from an answer: the RFC 6749 §5.2 `error` member when the body is JSON. */
export function errorKey(a: Answer): string {
  let code = '';
  try {
    const o = JSON.parse(a.body) as Record<string, unknown>;
    if (typeof o.error === 'string') code = o.error.slice(0, 60);
  } catch {
    // not JSON: the status alone
  }
  return `HTTP ${a.status}${code ? ` ${code}` : ''}`;
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * What one or more runs of a level add up to: a level may be measured in several slices (rounds
 * interleaved with other systems), whose counts, seconds and latencies are summed here.
 */
export class LoadAccumulator {
  readonly hist = new LatencyHistogram();
  readonly errors: Record<string, number> = {};
  errorCount = 0;
  /** Measured seconds so far. */
  seconds = 0;
  slices = 0;
  warmupOk = 0;
  readonly warmupErrors: Record<string, number> = {};
  /** Measured seconds (over all slices) when the source ran dry, or null. */
  ranDryAtS: number | null = null;

  result(concurrency: number): LoadResult {
    const latency = this.hist.summary();
    return {
      concurrency,
      measuredSeconds: round2(this.seconds),
      ok: latency.count,
      requestsPerSec: this.seconds > 0 ? round1(latency.count / this.seconds) : 0,
      latency,
      errors: this.errors,
      errorCount: this.errorCount,
      ranDryAtS: this.ranDryAtS === null ? null : round2(this.ranDryAtS),
      warmup: { ok: this.warmupOk, errors: this.warmupErrors },
    };
  }
}

/**
 * Run `concurrency` clients for warmupMs + measureMs, adding into `acc` (a fresh one by default);
 * returns the accumulated result. `attemptTimeoutMs` bounds one request (past it the request
 * counts as an error, ATTEMPT_TIMEOUT).
 */
export async function runLoad(pool: Pool, source: RequestSource, concurrency: number, warmupMs: number, measureMs: number, attemptTimeoutMs: number, acc = new LoadAccumulator()): Promise<LoadResult> {
  const n = pool.endpoints.length;
  const t0 = performance.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + measureMs;
  let running = concurrency;
  let dryAt: number | null = null;
  const client = async (c: number): Promise<void> => {
    for (let k = 0; performance.now() < windowEnd; k++) {
      const call = source.next(c);
      if (call === null) break;
      const start = performance.now();
      let ok = false;
      let what = '';
      try {
        const a = await pool.attempt((c + k) % n, call, attemptTimeoutMs);
        source.answered?.(c, call, a);
        ok = a.status === 200;
        if (!ok) what = errorKey(a);
      } catch (e) {
        if (!(e instanceof AttemptError)) throw e;
        source.failed?.(c, call, e.code);
        what = e.code;
      }
      const end = performance.now();
      if (end < windowStart) {
        if (ok) acc.warmupOk++;
        else acc.warmupErrors[what] = (acc.warmupErrors[what] ?? 0) + 1;
        continue;
      }
      if (end > windowEnd) continue;
      if (ok) acc.hist.recordMs(end - start);
      else {
        acc.errors[what] = (acc.errors[what] ?? 0) + 1;
        acc.errorCount++;
      }
    }
    if (--running === 0 && performance.now() < windowEnd) dryAt = performance.now();
  };
  await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  // Ran dry before the window even started: nothing was measured.
  const endOfWindow = dryAt === null ? windowEnd : Math.max(windowStart, dryAt);
  const seconds = Math.max(0, endOfWindow - windowStart) / 1000;
  if (dryAt !== null && acc.ranDryAtS === null) acc.ranDryAtS = acc.seconds + seconds;
  acc.seconds += seconds;
  if (measureMs > 0) acc.slices++;
  return acc.result(concurrency);
}
