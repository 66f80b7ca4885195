// The open-loop runner of `npm run bench:mfa` (the users model and the rate sweep): every request
// is sent at its scheduled time whatever happened to the ones before it — a slow answer does not
// slow the arrivals, as real users do not wait for each other — and its latency is measured from
// the *scheduled* send time, so a late sender (a busy event loop, a full socket pool) counts
// against the system instead of hiding its queueing (coordinated omission, Gil Tene's
// "How NOT to measure latency"). Unit-tested with a virtual clock in open-loop.test.ts.
import { setTimeout as sleepMs } from 'node:timers/promises';
import { LatencyHistogram } from '../bench/histogram.ts';
import type { LatencySummary } from '../bench/histogram.ts';
import { AttemptError } from '../bench/client.ts';
import type { Answer, HttpCall, Pool } from '../bench/client.ts';
import { errorKey } from '../bench-oauth/load.ts';

/** What an arrival with nothing to send counts as (the prepared sign-ins ran out): an error. */
export const NO_PREPARED = 'NO_PREPARED_SIGN_IN';

export interface OpenLoopClock {
  /** Monotonic milliseconds (performance.now()). */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const REAL_CLOCK: OpenLoopClock = { now: () => performance.now(), sleep: (ms) => sleepMs(ms) };

export interface OpenLoopOptions {
  /** Arrivals scheduled before this offset are sent but not measured. */
  readonly warmupMs: number;
  /** Arrivals scheduled in [warmupMs, warmupMs + measureMs) are measured. */
  readonly measureMs: number;
  /** Deadline of one request; past it, an error (ATTEMPT_TIMEOUT). */
  readonly timeoutMs: number;
  readonly clock?: OpenLoopClock;
}

export interface OpenLoopResult {
  /** Arrivals scheduled inside the measured window. */
  readonly scheduled: number;
  readonly measuredSeconds: number;
  /** scheduled / measuredSeconds: the rate asked of the system. */
  readonly offeredPerSec: number;
  /** Successful (200) answers of measured arrivals. */
  readonly ok: number;
  /** ok / measuredSeconds. */
  readonly ratePerSec: number;
  /** Latency of the successful measured requests, from their scheduled send time. */
  readonly latency: LatencySummary;
  /** Failed measured arrivals by `HTTP <status> <error>`, network error code, or NO_PREPARED. */
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  /** Most requests in flight at once (an open loop has no bound: it grows when the system falls behind). */
  readonly maxInFlight: number;
  /** How late the sender was at worst (actual send minus scheduled): large values mean the client, not the server, was saturated. */
  readonly maxSendLagMs: number;
  readonly warmup: { readonly sent: number; readonly ok: number; readonly errors: Record<string, number> };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * Send request i at `offsets[i]` ms after the start (sorted ascending), to endpoint i mod the
 * pool's endpoints; `call(i)` builds it at send time (null: nothing left to send, counted as
 * NO_PREPARED). Resolves when every request has been answered or timed out.
 */
export async function runOpenLoop(
  pool: Pick<Pool, 'attempt' | 'endpoints'>,
  offsets: readonly number[],
  call: (i: number) => HttpCall | null,
  o: OpenLoopOptions,
  answered?: (i: number, a: Answer) => void,
): Promise<OpenLoopResult> {
  for (let i = 1; i < offsets.length; i++) if (!(offsets[i]! >= offsets[i - 1]!)) throw new RangeError('offsets must be sorted');
  const clock = o.clock ?? REAL_CLOCK;
  const hist = new LatencyHistogram();
  const errors: Record<string, number> = {};
  const warmupErrors: Record<string, number> = {};
  let errorCount = 0;
  let warmupSent = 0;
  let warmupOk = 0;
  let scheduled = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let maxSendLagMs = 0;
  const windowEnd = o.warmupMs + o.measureMs;
  const t0 = clock.now();
  const pending: Promise<void>[] = [];

  const outcome = (measured: boolean, ok: boolean, what: string, latencyMs: number): void => {
    if (!measured) {
      if (ok) warmupOk++;
      else warmupErrors[what] = (warmupErrors[what] ?? 0) + 1;
      return;
    }
    if (ok) hist.recordMs(latencyMs);
    else {
      errors[what] = (errors[what] ?? 0) + 1;
      errorCount++;
    }
  };

  const send = async (i: number, at: number, measured: boolean, c: HttpCall): Promise<void> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let ok = false;
    let what = '';
    try {
      const a = await pool.attempt(i % pool.endpoints.length, c, o.timeoutMs);
      answered?.(i, a);
      ok = a.status === 200;
      if (!ok) what = errorKey(a);
    } catch (e) {
      if (!(e instanceof AttemptError)) throw e;
      what = e.code;
    }
    inFlight--;
    outcome(measured, ok, what, clock.now() - at);
  };

  for (let i = 0; i < offsets.length; i++) {
    const off = offsets[i]!;
    if (off >= windowEnd) break;
    const at = t0 + off;
    const wait = at - clock.now();
    if (wait > 0) await clock.sleep(wait);
    maxSendLagMs = Math.max(maxSendLagMs, clock.now() - at);
    const measured = off >= o.warmupMs;
    if (measured) scheduled++;
    else warmupSent++;
    const c = call(i);
    if (c === null) {
      outcome(measured, false, NO_PREPARED, 0);
      continue;
    }
    pending.push(send(i, at, measured, c));
  }
  await Promise.all(pending);
  const seconds = o.measureMs / 1000;
  const latency = hist.summary();
  return {
    scheduled,
    measuredSeconds: round2(seconds),
    offeredPerSec: seconds > 0 ? round2(scheduled / seconds) : 0,
    ok: latency.count,
    ratePerSec: seconds > 0 ? round2(latency.count / seconds) : 0,
    latency,
    errors,
    errorCount,
    maxInFlight,
    maxSendLagMs: round2(maxSendLagMs),
    warmup: { sent: warmupSent, ok: warmupOk, errors: warmupErrors },
  };
}
