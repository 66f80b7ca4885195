// Tests of the benchmark's latency histogram: counter boundaries, precision against exact
// quantiles on seeded random data (the seed is printed; BENCH_TEST_SEED=<n> replays it), clamping.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram } from './histogram.ts';

/** mulberry32: a small seeded PRNG, so a failing case replays from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = process.env.BENCH_TEST_SEED !== undefined ? Number(process.env.BENCH_TEST_SEED) : Date.now() % 1_000_000;

test('every value falls in the counter whose bounds hold it, and counters are at most 1/1024 wide', () => {
  const probe = [0, 1, 2047, 2048, 2049, 4095, 4096, 4097, 65_535, 65_536, 1_000_000, 119_999_999, 120_000_000];
  const r = rng(SEED);
  for (let i = 0; i < 20_000; i++) probe.push(Math.floor(r() ** 4 * 120_000_000));
  for (const v of probe) {
    const i = LatencyHistogram.indexOf(v);
    const lo = LatencyHistogram.lowestOf(i);
    const hi = LatencyHistogram.highestOf(i);
    assert.ok(lo <= v && v <= hi, `seed ${SEED}: ${v} not in counter ${i} [${lo}, ${hi}]`);
    assert.ok(hi - lo + 1 <= Math.max(1, lo / 1024), `seed ${SEED}: counter ${i} [${lo}, ${hi}] is wider than 1/1024 of its values`);
  }
  // Counters are contiguous: the next counter starts right after this one ends.
  for (let i = 0; i < 40_000; i++) assert.equal(LatencyHistogram.lowestOf(i + 1), LatencyHistogram.highestOf(i) + 1);
});

test('quantiles match exact sorted quantiles within the counter precision', () => {
  console.log(`histogram quantile test seed ${SEED} (replay: BENCH_TEST_SEED=${SEED})`);
  const r = rng(SEED);
  const h = new LatencyHistogram();
  const xs: number[] = [];
  for (let i = 0; i < 50_000; i++) {
    // A long-tailed mix like real latencies: mostly ~2 ms, a tail to seconds.
    const ms = r() < 0.97 ? 1 + r() * 3 : 10 + r() ** 3 * 3_000;
    const rounded = Math.round(ms * 1000) / 1000;
    xs.push(rounded);
    h.recordMs(rounded);
  }
  xs.sort((a, b) => a - b);
  for (const q of [0.01, 0.5, 0.9, 0.99, 0.999, 1]) {
    const exact = xs[Math.max(1, Math.ceil(q * xs.length)) - 1]!;
    const got = h.quantileMs(q);
    assert.ok(got >= exact && got <= exact * (1 + 1 / 1024) + 0.001, `seed ${SEED}: q${q} exact ${exact} ms, histogram ${got} ms`);
  }
  const s = h.summary();
  assert.equal(s.count, xs.length);
  assert.equal(s.minMs, xs[0]);
  assert.equal(s.maxMs, xs[xs.length - 1]);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(Math.abs(s.meanMs - mean) < 0.001, `mean ${s.meanMs} vs ${mean}`);
});

test('values above the range are clamped and counted; bad input is refused; empty is all zero', () => {
  const h = new LatencyHistogram(10);
  assert.deepEqual(h.summary(), { count: 0, minMs: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, clamped: 0 });
  h.recordMs(5);
  h.recordMs(50);
  const s = h.summary();
  assert.equal(s.count, 2);
  assert.equal(s.clamped, 1);
  assert.equal(s.maxMs, 10);
  assert.throws(() => h.recordMs(-1), RangeError);
  assert.throws(() => h.recordMs(Number.NaN), RangeError);
  assert.throws(() => h.quantileMs(0), RangeError);
  assert.throws(() => new LatencyHistogram(0), RangeError);
});
