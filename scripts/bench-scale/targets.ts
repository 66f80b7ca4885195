// Issue 15's targets, judged at the largest size against the smallest from the measured numbers
// only: a target whose measurement is missing (a phase skipped or failed, a single size) is
// `met: null` with the reason, never true.

/** What the targets read of one size's report. */
export interface SizeFacts {
  readonly records: number;
  readonly sustained: {
    readonly writesPerSec: number;
    readonly p99Ms: number;
    readonly termChanges: number;
    readonly leaderChanges: number;
    readonly timeouts: number;
  } | null;
  /** Seconds for a new learner to apply the leader's commit index; null when not measured. */
  readonly learnerCatchUpSeconds: number | null;
  /** Largest RSS of any node process (primary or HTTP worker) seen during the size's phases, MB. */
  readonly maxProcessRssMb: number | null;
}

export interface Target {
  readonly target: string;
  readonly measured: number | string | null;
  readonly limit: number | string;
  /** null: not measured (see `why`). */
  readonly met: boolean | null;
  readonly why?: string;
}

export const LEARNER_LIMIT_S = 60;
export const RSS_LIMIT_MB = 300;
export const P99_RATIO_LIMIT = 1.5;
export const THROUGHPUT_RATIO_LIMIT = 0.9;

function ratio(a: number, b: number): number {
  return Math.round((a / b) * 1000) / 1000;
}

/** The targets at the last (largest) size, the ratios against the first (smallest). */
export function computeTargets(sizes: readonly SizeFacts[]): { largest: number | null; smallest: number | null; targets: Target[] } {
  if (sizes.length === 0) return { largest: null, smallest: null, targets: [] };
  const small = sizes[0]!;
  const large = sizes[sizes.length - 1]!;
  const compared = sizes.length > 1;
  const t: Target[] = [];
  const s = large.sustained;
  if (s === null) {
    t.push({ target: 'zero leader changes under sustained writes', measured: null, limit: 0, met: null, why: 'no sustained-write measurement at the largest size' });
    t.push({ target: 'zero timeouts under sustained writes', measured: null, limit: 0, met: null, why: 'no sustained-write measurement at the largest size' });
  } else {
    const changes = Math.max(s.termChanges, s.leaderChanges);
    t.push({ target: 'zero leader changes under sustained writes', measured: changes, limit: 0, met: changes === 0 });
    t.push({ target: 'zero timeouts under sustained writes', measured: s.timeouts, limit: 0, met: s.timeouts === 0 });
  }
  const ss = small.sustained;
  if (!compared) {
    t.push({ target: `p99 <= ${P99_RATIO_LIMIT}x its value at the smallest size`, measured: null, limit: P99_RATIO_LIMIT, met: null, why: 'one size only: nothing to compare with' });
    t.push({ target: `throughput >= ${THROUGHPUT_RATIO_LIMIT}x its value at the smallest size`, measured: null, limit: THROUGHPUT_RATIO_LIMIT, met: null, why: 'one size only: nothing to compare with' });
  } else if (s === null || ss === null || ss.p99Ms <= 0 || ss.writesPerSec <= 0) {
    const why = 'a sustained-write measurement is missing or empty at the smallest or the largest size';
    t.push({ target: `p99 <= ${P99_RATIO_LIMIT}x its value at the smallest size`, measured: null, limit: P99_RATIO_LIMIT, met: null, why });
    t.push({ target: `throughput >= ${THROUGHPUT_RATIO_LIMIT}x its value at the smallest size`, measured: null, limit: THROUGHPUT_RATIO_LIMIT, met: null, why });
  } else {
    const p = ratio(s.p99Ms, ss.p99Ms);
    const w = ratio(s.writesPerSec, ss.writesPerSec);
    t.push({ target: `p99 <= ${P99_RATIO_LIMIT}x its value at the smallest size`, measured: p, limit: P99_RATIO_LIMIT, met: p <= P99_RATIO_LIMIT });
    t.push({ target: `throughput >= ${THROUGHPUT_RATIO_LIMIT}x its value at the smallest size`, measured: w, limit: THROUGHPUT_RATIO_LIMIT, met: w >= THROUGHPUT_RATIO_LIMIT });
  }
  if (large.learnerCatchUpSeconds === null) t.push({ target: `a new learner catches up within ${LEARNER_LIMIT_S} s`, measured: null, limit: LEARNER_LIMIT_S, met: null, why: 'the learner phase did not run or did not finish at the largest size' });
  else t.push({ target: `a new learner catches up within ${LEARNER_LIMIT_S} s`, measured: large.learnerCatchUpSeconds, limit: LEARNER_LIMIT_S, met: large.learnerCatchUpSeconds <= LEARNER_LIMIT_S });
  if (large.maxProcessRssMb === null) t.push({ target: `RSS of each node process <= ${RSS_LIMIT_MB} MB`, measured: null, limit: RSS_LIMIT_MB, met: null, why: 'no RSS sample (no /proc?)' });
  else t.push({ target: `RSS of each node process <= ${RSS_LIMIT_MB} MB`, measured: large.maxProcessRssMb, limit: RSS_LIMIT_MB, met: large.maxProcessRssMb <= RSS_LIMIT_MB });
  return { largest: large.records, smallest: compared ? small.records : null, targets: t };
}
