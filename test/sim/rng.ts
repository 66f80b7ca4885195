// The simulator's only source of randomness: sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG),
// seeded through splitmix32. A run is a pure function of (seed, options), so every draw in the
// simulation path goes through an instance of this class — never Math.random.

/** splitmix32: spreads a small integer seed over the whole 32-bit state space. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`Rng seed must be a safe integer, got ${seed}`);
    // Fold the high bits in so seeds above 2^32 still give distinct streams.
    const st = { s: (seed | 0) ^ Math.floor(seed / 0x100000000) };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = 1;
    // The first outputs of sfc32 are correlated with the seed; discard them (author's advice).
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 0x100000000;
  }

  /** An integer in [0, bound). Rejection sampling keeps it unbiased. */
  int(bound: number): number {
    if (!Number.isInteger(bound) || bound <= 0 || bound > 0x100000000) throw new Error(`Rng.int: bad bound ${bound}`);
    const limit = 0x100000000 - (0x100000000 % bound);
    for (;;) {
      const x = this.u32();
      if (x < limit) return x % bound;
    }
  }

  /** An integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    if (hi < lo) throw new Error(`Rng.range: empty range [${lo}, ${hi}]`);
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.float() < p;
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('Rng.pick: empty array');
    return xs[this.int(xs.length)]!;
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffle<T>(xs: readonly T[]): T[] {
    const out = xs.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
    return out;
  }

  /**
   * An independent stream derived from this one. Giving each subsystem its own stream keeps, say,
   * the core's election-timeout draws from shifting the network's draws when one changes.
   */
  fork(): Rng {
    return new Rng(this.u32() * 0x200000 + (this.u32() & 0x1fffff));
  }
}
