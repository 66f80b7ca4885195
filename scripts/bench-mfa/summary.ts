// The summary of `npm run bench:mfa` and the issue's target (issue 6 "Benchmark": TOTP p99 under
// 20 ms at 100 concurrent users), judged on the users model. Pure (unit-tested in summary.test.ts).
//
// Three measurements (scripts/bench-mfa/README.md):
// - users: N users, each verifying once at a random moment of every 30 s step — the most TOTP
//   replay protection lets a user verify — sent open loop, latency from the scheduled time. This
//   is what "100 concurrent users" means for TOTP, and where the target is judged.
// - sweep: open-loop Poisson arrivals at fixed rates; the highest rate whose p99 stays under the
//   SLO is the capacity at the SLO.
// - capacity: a closed loop with C requests always in flight: requests/s at saturation. Its
//   latency is queueing by construction (Little's law: latency = C / throughput), so at C = 100 a
//   p99 under 20 ms would need more than 5,000 replicated verifications/s; it measures capacity,
//   not the target.
import type { LoadResult } from '../bench-oauth/load.ts';
import type { Factor } from './args.ts';
import type { OpenLoopResult } from './open-loop.ts';

/** Issue 6: "TOTP p99 under 20 ms at 100 concurrent users". */
export const TARGET_USERS = 100;
export const TARGET_TOTP_P99_MS = 20;

/** A closed-loop (capacity) level. */
export interface MfaLevel extends LoadResult {
  readonly factor: Factor;
  /** Refusals by reason (src/oauth/mfa.ts messages): replayed code, invalid, throttled, … */
  readonly refusals: Record<string, number>;
  /** Sign-ins prepared (password step done) for the level, and how long that took. */
  readonly prepared: number;
  readonly prepareSeconds: number;
}

/** An open-loop TOTP run: the users model, or one rate of the sweep. */
export interface OpenRun extends OpenLoopResult {
  readonly refusals: Record<string, number>;
  readonly prepared: number;
  readonly prepareSeconds: number;
}

export interface UsersRun extends OpenRun {
  readonly users: number;
}

export interface SweepRun extends OpenRun {
  /** The Poisson arrival rate asked for. */
  readonly targetRatePerSec: number;
}

export interface FactorSummary {
  readonly concurrency: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly ok: number;
  readonly ranDryAtS: number | null;
}

export interface UsersSummary {
  readonly users: number;
  readonly measuredSeconds: number;
  readonly scheduled: number;
  readonly ok: number;
  readonly ratePerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly maxInFlight: number;
  readonly maxSendLagMs: number;
}

export interface SweepPoint {
  readonly targetRatePerSec: number;
  readonly offeredPerSec: number;
  readonly okPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  /** Successes, no error, p99 under the SLO. */
  readonly underSlo: boolean;
}

export interface MfaSummary {
  readonly users: UsersSummary | null;
  readonly sweep: { readonly levels: readonly SweepPoint[]; readonly capacityAtSloPerSec: number | null } | null;
  /** Closed loop, at TARGET_USERS in flight if measured, else the highest level. */
  readonly capacity: { readonly concurrency: number; readonly totp: FactorSummary | null; readonly webauthn: FactorSummary | null } | null;
  /** Judged on the users model only. */
  readonly targets: { readonly totpP99Under20ms: boolean };
  /** How the target was judged, and why not met when it is not. */
  readonly targetNotes: readonly string[];
}

function factorAt(levels: readonly MfaLevel[], factor: Factor, c: number): FactorSummary | null {
  const l = levels.find((x) => x.factor === factor && x.concurrency === c);
  if (l === undefined) return null;
  return { concurrency: c, reqPerSec: l.requestsPerSec, p50Ms: l.latency.p50Ms, p99Ms: l.latency.p99Ms, errors: l.errorCount, ok: l.ok, ranDryAtS: l.ranDryAtS };
}

function underSlo(r: OpenLoopResult): boolean {
  return r.ok > 0 && r.errorCount === 0 && r.latency.p99Ms < TARGET_TOTP_P99_MS;
}

/**
 * The target is met only by the users model with exactly TARGET_USERS users, successes, no failed
 * request (a refusal, a timeout, an arrival with no prepared sign-in left), and p99 below
 * TARGET_TOTP_P99_MS. The sweep's capacity at the SLO is the highest rate such that it and every
 * lower rate swept stayed under the SLO ("stays under": a rate that passes above one that failed
 * is noise, not capacity).
 */
export function summarize(m: { users: UsersRun | null; sweep: readonly SweepRun[] | null; capacity: readonly MfaLevel[] | null }, concurrencies: readonly number[]): MfaSummary {
  const notes: string[] = [];
  let met = false;
  const u = m.users;
  if (u === null) notes.push('the users model was not measured: the target is not judged (false)');
  else {
    notes.push(
      `judged on the users model: ${u.users} users, each verifying once at a random moment of every 30 s step (the most TOTP replay protection allows), open loop, latency from the scheduled send time`,
    );
    if (u.users !== TARGET_USERS) notes.push(`the users model ran with ${u.users} users, not ${TARGET_USERS}: the target is not judged (false)`);
    else if (u.ok === 0) notes.push('no TOTP verification succeeded');
    else if (u.errorCount > 0) notes.push(`${u.errorCount} verifications failed: the target is not met whatever the latency`);
    else met = u.latency.p99Ms < TARGET_TOTP_P99_MS;
  }
  const users: UsersSummary | null =
    u === null
      ? null
      : {
          users: u.users,
          measuredSeconds: u.measuredSeconds,
          scheduled: u.scheduled,
          ok: u.ok,
          ratePerSec: u.ratePerSec,
          p50Ms: u.latency.p50Ms,
          p99Ms: u.latency.p99Ms,
          maxMs: u.latency.maxMs,
          errors: u.errorCount,
          maxInFlight: u.maxInFlight,
          maxSendLagMs: u.maxSendLagMs,
        };
  let sweep: MfaSummary['sweep'] = null;
  if (m.sweep !== null) {
    const levels = [...m.sweep]
      .sort((a, b) => a.targetRatePerSec - b.targetRatePerSec)
      .map(
        (r): SweepPoint => ({
          targetRatePerSec: r.targetRatePerSec,
          offeredPerSec: r.offeredPerSec,
          okPerSec: r.ratePerSec,
          p50Ms: r.latency.p50Ms,
          p99Ms: r.latency.p99Ms,
          maxMs: r.latency.maxMs,
          errors: r.errorCount,
          underSlo: underSlo(r),
        }),
      );
    let best: number | null = null;
    for (const l of levels) {
      if (!l.underSlo) break;
      best = l.targetRatePerSec;
    }
    sweep = { levels, capacityAtSloPerSec: best };
  }
  let capacity: MfaSummary['capacity'] = null;
  if (m.capacity !== null && concurrencies.length > 0) {
    const c = concurrencies.includes(TARGET_USERS) ? TARGET_USERS : Math.max(...concurrencies);
    capacity = { concurrency: c, totp: factorAt(m.capacity, 'totp', c), webauthn: factorAt(m.capacity, 'webauthn', c) };
    if (capacity.totp !== null) {
      notes.push(
        `the closed loop at ${c} requests always in flight measures capacity (${capacity.totp.reqPerSec} verifications/s), not the target: its latency is queueing by construction (Little's law: p99 < ${TARGET_TOTP_P99_MS} ms with ${c} in flight needs more than ${Math.round((c * 1000) / TARGET_TOTP_P99_MS)} verifications/s)`,
      );
    }
  }
  return { users, sweep, capacity, targets: { totpP99Under20ms: met }, targetNotes: notes };
}

/** A few lines for stderr. */
export function humanTable(s: MfaSummary): string {
  let out = 'bench:mfa\n';
  const u = s.users;
  out += u === null ? '  users     not measured\n' : `  users     ${u.users} users (open loop): ${u.ratePerSec} verifications/s, p50 ${u.p50Ms} ms, p99 ${u.p99Ms} ms, max ${u.maxMs} ms, ${u.errors} errors\n`;
  if (s.sweep === null) out += '  sweep     not measured\n';
  else {
    for (const l of s.sweep.levels) out += `  sweep     ${l.targetRatePerSec}/s: ${l.okPerSec} ok/s, p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, ${l.errors} errors${l.underSlo ? '' : ' (over the SLO)'}\n`;
    out += `  sweep     highest rate with p99 < ${TARGET_TOTP_P99_MS} ms: ${s.sweep.capacityAtSloPerSec === null ? 'none' : `${s.sweep.capacityAtSloPerSec}/s`}\n`;
  }
  const row = (name: string, f: FactorSummary | null | undefined): string =>
    f == null ? `  ${name.padEnd(9)} not measured\n` : `  ${name.padEnd(9)} capacity c${f.concurrency} (closed loop): ${f.reqPerSec} verifications/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, ${f.errors} errors${f.ranDryAtS !== null ? `, ran dry at ${f.ranDryAtS} s` : ''}\n`;
  out += row('totp', s.capacity?.totp) + row('webauthn', s.capacity?.webauthn);
  out += `  target: TOTP p99 < ${TARGET_TOTP_P99_MS} ms at ${TARGET_USERS} concurrent users (users model): ${s.targets.totpP99Under20ms ? 'MET' : 'NOT MET'}\n`;
  for (const n of s.targetNotes) out += `    - ${n}\n`;
  return out;
}
