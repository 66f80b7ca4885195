// A latency histogram in the manner of HdrHistogram: fixed memory, about 0.1 % relative precision,
// so a benchmark can record millions of samples without keeping them and still report p99 exactly
// enough to compare two systems.
//
// Values are recorded in whole microseconds. Below SUB_BUCKETS µs every value has its own counter;
// above, each power-of-two range [2^k, 2^(k+1)) is split into SUB_BUCKETS/2 equal counters, so the
// width of a counter is at most 1/1024 of the values it holds. Values above maxMicros are clamped
// into the last counter and counted in `clamped` (reported, never silently lost).

/** Counters per range: 2048 = 11 bits = 3 significant decimal digits (HdrHistogram's "3"). */
const SUB_BUCKET_BITS = 11;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
const HALF = SUB_BUCKETS >> 1;

export interface LatencySummary {
  readonly count: number;
  readonly minMs: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** Samples above the histogram's range, counted at its top. */
  readonly clamped: number;
}

export class LatencyHistogram {
  private readonly counts: Float64Array;
  private readonly maxMicros: number;
  private total = 0;
  private sumMicros = 0;
  private min = Infinity;
  private max = 0;
  private clampedCount = 0;

  /** @param maxMs largest latency kept at full precision (default 120 s: longer than any request deadline). */
  constructor(maxMs = 120_000) {
    if (!(maxMs >= 1 && maxMs <= 3_600_000)) throw new RangeError(`maxMs must be in [1, 3600000], got ${maxMs}`);
    this.maxMicros = Math.ceil(maxMs * 1000);
    this.counts = new Float64Array(LatencyHistogram.indexOf(this.maxMicros) + 1);
  }

  /** Counter index of a value in µs (see the header comment). Exported for the tests. */
  static indexOf(micros: number): number {
    if (micros < SUB_BUCKETS) return micros;
    // k = floor(log2(micros)) >= SUB_BUCKET_BITS; shift so the value keeps SUB_BUCKET_BITS bits.
    const shift = 31 - Math.clz32(micros) - (SUB_BUCKET_BITS - 1);
    return SUB_BUCKETS + (shift - 1) * HALF + ((micros >>> shift) - HALF);
  }

  /** Smallest value (µs) that falls in counter `index`. */
  static lowestOf(index: number): number {
    if (index < SUB_BUCKETS) return index;
    const shift = Math.floor((index - SUB_BUCKETS) / HALF) + 1;
    const sub = ((index - SUB_BUCKETS) % HALF) + HALF;
    return sub * 2 ** shift;
  }

  /** Largest value (µs) that falls in counter `index`. */
  static highestOf(index: number): number {
    return LatencyHistogram.lowestOf(index + 1) - 1;
  }

  recordMs(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`latency must be a finite number >= 0, got ${ms}`);
    let micros = Math.round(ms * 1000);
    if (micros > this.maxMicros) {
      micros = this.maxMicros;
      this.clampedCount++;
    }
    this.counts[LatencyHistogram.indexOf(micros)]!++;
    this.total++;
    this.sumMicros += micros;
    if (micros < this.min) this.min = micros;
    if (micros > this.max) this.max = micros;
  }

  get count(): number {
    return this.total;
  }

  /**
   * The value at quantile q (0 < q <= 1): the highest value of the counter holding the
   * ceil(q·count)-th smallest sample, capped by the true maximum (HdrHistogram reports the same
   * "highest equivalent value"), in ms. 0 when empty.
   */
  quantileMs(q: number): number {
    if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(LatencyHistogram.highestOf(i), this.max) / 1000;
    }
    return this.max / 1000;
  }

  summary(): LatencySummary {
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return {
      count: this.total,
      minMs: this.total === 0 ? 0 : r3(this.min / 1000),
      meanMs: this.total === 0 ? 0 : r3(this.sumMicros / this.total / 1000),
      p50Ms: r3(this.quantileMs(0.5)),
      p90Ms: r3(this.quantileMs(0.9)),
      p99Ms: r3(this.quantileMs(0.99)),
      p999Ms: r3(this.quantileMs(0.999)),
      maxMs: r3(this.max / 1000),
      clamped: this.clampedCount,
    };
  }
}
