// Which prepared interaction a virtual client sends next. Pure (unit-tested in schedule.test.ts).
//
// TOTP: the replicated state accepts a user's code only for a time step later than the last one
// it accepted for that user (src/state/mfa.ts totp.accept, RFC 6238 §5.2), so one user verifies
// at most once per 30 s step. StepQueue hands out interactions in order, skipping (and keeping for
// later) those whose user already verified in the current step; "100 concurrent users" is then
// 100 different users' verifications in flight at once.
//
// WebAuthn: a credential's signature counter must grow (W3C WebAuthn Level 3 §7.2 step 22), and
// the soft authenticator counts at signing time, so one credential's assertions must reach the
// server in the order they were signed: every interaction of a user goes to the same virtual
// client (one request in flight), byClient.

/** A TOTP user's replay state as the benchmark tracks it (the last step a code was sent for). */
export interface StepUser {
  lastStep: number | null;
}

export class StepQueue<T extends { readonly user: StepUser }> {
  private readonly items: readonly T[];
  private next = 0;
  /** Skipped because their user had verified in the step they were looked at; in that order. */
  private readonly deferred: T[] = [];
  private deferredHead = 0;

  constructor(items: readonly T[]) {
    this.items = items;
  }

  /** Interactions not handed out yet. */
  get remaining(): number {
    return this.items.length - this.next + (this.deferred.length - this.deferredHead);
  }

  /**
   * The first interaction whose user may verify at `step` (no code sent yet for `step` or later),
   * marked as used at `step`; null when none is left for this step (the queue may still hold
   * interactions for later steps: `remaining`).
   */
  take(step: number): T | null {
    const usable = (t: T): boolean => t.user.lastStep === null || t.user.lastStep < step;
    const pick = (t: T): T => {
      t.user.lastStep = step;
      return t;
    };
    // Deferred ones were skipped in earlier calls: they are the oldest, so they go first.
    if (this.deferredHead < this.deferred.length && usable(this.deferred[this.deferredHead]!)) return pick(this.deferred[this.deferredHead++]!);
    while (this.next < this.items.length) {
      const t = this.items[this.next++]!;
      if (usable(t)) return pick(t);
      this.deferred.push(t);
    }
    return null;
  }
}

/** Items split into `clients` queues: item i goes to queue key(i) mod clients, order kept. */
export function byClient<T>(items: readonly T[], key: (t: T) => number, clients: number): T[][] {
  if (!Number.isSafeInteger(clients) || clients < 1) throw new RangeError('clients must be a positive integer');
  const out = Array.from({ length: clients }, (): T[] => []);
  for (const t of items) {
    const k = key(t);
    if (!Number.isSafeInteger(k) || k < 0) throw new RangeError(`key must be a non-negative integer (got ${k})`);
    out[k % clients]!.push(t);
  }
  return out;
}

/** Indexes 0..n-1 in rounds: `count` of them, cycling (users reused once every n). */
export function cycle(n: number, count: number, start = 0): number[] {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError('n must be a positive integer');
  return Array.from({ length: count }, (_, i) => (start + i) % n);
}

// ---------------------------------------------------------------------------------------------
// Open-loop arrivals (the users model and the rate sweep): when each verification is sent, fixed
// before the run, independent of the answers (a slow answer does not delay the next send).

/** A uniform float in [0, 1) (the benchmark passes a seeded test/sim/rng.ts Rng's float). */
export type Uniform = () => number;

export interface UserArrival {
  /** Send time, epoch milliseconds. */
  readonly atMs: number;
  /** Index of the user (0..users-1). */
  readonly user: number;
}

/**
 * The users model: `users` users, each sending one verification at a uniformly random moment of
 * every `periodMs` step (RFC 6238 X = 30 s; one code per step is all replay protection lets a user
 * verify) that overlaps [startMs, startMs + durationMs); arrivals outside that window are dropped.
 * Sorted by time. Steps are aligned to the epoch (T = floor(t / X)), as the TOTP steps are.
 */
export function usersArrivals(users: number, startMs: number, durationMs: number, periodMs: number, u: Uniform): UserArrival[] {
  if (!Number.isSafeInteger(users) || users < 1) throw new RangeError('users must be a positive integer');
  if (!(durationMs > 0) || !(periodMs > 0)) throw new RangeError('durationMs and periodMs must be positive');
  const end = startMs + durationMs;
  const out: UserArrival[] = [];
  for (let step = Math.floor(startMs / periodMs); step * periodMs < end; step++) {
    for (let user = 0; user < users; user++) {
      const atMs = step * periodMs + u() * periodMs;
      if (atMs >= startMs && atMs < end) out.push({ atMs, user });
    }
  }
  return out.sort((a, b) => a.atMs - b.atMs || a.user - b.user);
}

/** Send offsets (ms from the start, sorted) of a Poisson process of `ratePerSec` over durationMs: exponential gaps. */
export function poissonOffsets(ratePerSec: number, durationMs: number, u: Uniform): number[] {
  if (!(ratePerSec > 0) || !(durationMs > 0)) throw new RangeError('ratePerSec and durationMs must be positive');
  const meanGapMs = 1000 / ratePerSec;
  const out: number[] = [];
  // 1 - u() is in (0, 1]: the log is finite.
  for (let t = -Math.log(1 - u()) * meanGapMs; t < durationMs; t += -Math.log(1 - u()) * meanGapMs) out.push(t);
  return out;
}

/** How many sign-ins one user needs in the users model: one per step overlapping a window of durationMs (wherever it starts). */
export function stepsOverlapping(durationMs: number, periodMs: number): number {
  return Math.ceil(durationMs / periodMs) + 1;
}
