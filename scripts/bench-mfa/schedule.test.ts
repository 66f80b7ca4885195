import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../test/sim/rng.ts';
import { StepQueue, byClient, cycle, poissonOffsets, stepsOverlapping, usersArrivals } from './schedule.ts';
import type { StepUser } from './schedule.ts';

const item = (name: string, user: StepUser) => ({ name, user });

/**
 * The seed of the randomized tests below: fixed (so a statistical bound is checked on the same
 * sample every run, and cannot fail by chance on a run of its own), printed, and replaced by
 * SEED=<whole number> to explore or replay others.
 */
const SEED = ((): number => {
  const raw = process.env.SEED;
  if (raw === undefined) return 20_261_207;
  if (!/^[0-9]{1,9}$/.test(raw)) throw new Error(`SEED must be a whole number below 10^9, got ${JSON.stringify(raw)}`);
  return Number(raw);
})();

test('StepQueue hands out interactions in order and marks their user used at the step', () => {
  const a = { lastStep: null };
  const b = { lastStep: 5 };
  const q = new StepQueue([item('a', a), item('b', b)]);
  assert.equal(q.remaining, 2);
  assert.equal(q.take(6)?.name, 'a');
  assert.equal(a.lastStep, 6);
  assert.equal(q.take(6)?.name, 'b');
  assert.equal(b.lastStep, 6);
  assert.equal(q.take(7), null);
  assert.equal(q.remaining, 0);
});

test('StepQueue never gives a user twice in one step (replay), and keeps the skipped ones for the next step, oldest first', () => {
  const u1 = { lastStep: null };
  const u2 = { lastStep: null };
  // Two interactions of u1 (two sign-ins of the same user), then one of u2.
  const q = new StepQueue([item('u1-a', u1), item('u1-b', u1), item('u2', u2)]);
  assert.equal(q.take(10)?.name, 'u1-a');
  // u1 verified at step 10: its second sign-in is skipped, u2 is next.
  assert.equal(q.take(10)?.name, 'u2');
  assert.equal(q.take(10), null, 'nothing left for step 10');
  assert.equal(q.remaining, 1, 'u1-b is kept');
  assert.equal(q.take(11)?.name, 'u1-b');
  assert.equal(u1.lastStep, 11);
  assert.equal(q.remaining, 0);
});

test('StepQueue: a user whose last step is in the future of the asked step (enrolled later) waits', () => {
  const u = { lastStep: 20 };
  const q = new StepQueue([item('x', u)]);
  assert.equal(q.take(20), null);
  assert.equal(q.take(19), null);
  assert.equal(q.take(21)?.name, 'x');
});

test('StepQueue over many users: every step gives each user at most once, and all are used', (t) => {
  const seed = SEED;
  t.diagnostic(`seed ${seed} (SEED=${seed} to repeat)`);
  let x = seed;
  const rnd = (n: number) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
  const users = Array.from({ length: 50 }, () => ({ lastStep: rnd(3) === 0 ? 100 : null }));
  const items = Array.from({ length: 200 }, (_, i) => item(String(i), users[rnd(users.length)]!));
  const q = new StepQueue(items);
  let given = 0;
  for (let step = 100; step < 400 && q.remaining > 0; step++) {
    const seen = new Set<StepUser>();
    for (let t = q.take(step); t !== null; t = q.take(step)) {
      assert.ok(!seen.has(t.user), `seed ${seed}: a user twice in step ${step}`);
      seen.add(t.user);
      given++;
    }
  }
  assert.equal(given, items.length, `seed ${seed}`);
});

test('byClient keeps one key on one client, in order', () => {
  const items = [0, 1, 2, 3, 4, 5, 6].map((k, i) => ({ k: k % 3, i }));
  const qs = byClient(items, (t) => t.k, 2);
  assert.deepEqual(
    qs.map((q) => q.map((t) => t.i)),
    [
      [0, 2, 3, 5, 6],
      [1, 4],
    ],
  );
  assert.throws(() => byClient(items, (t) => t.k, 0), RangeError);
  assert.throws(() => byClient(items, () => -1, 2), RangeError);
});

test('cycle reuses indexes in rounds', () => {
  assert.deepEqual(cycle(3, 7), [0, 1, 2, 0, 1, 2, 0]);
  assert.deepEqual(cycle(3, 2, 2), [2, 0]);
  assert.throws(() => cycle(0, 1), RangeError);
});

/** A seeded uniform source; the seed is reported so a failure replays (SEED=…). */
function uniform(t: TestContext, seed: number): () => number {
  t.diagnostic(`seed ${seed} (SEED=${seed} to repeat)`);
  const r = new Rng(seed);
  return () => r.float();
}

test('users model: each user sends exactly once in every step inside the window, at a uniform moment of it', (t) => {
  const seed = SEED;
  const period = 30_000;
  // A window of exactly three whole steps: every user sends three times, once per step.
  const start = 1_700_000_010_000 - (1_700_000_010_000 % period);
  const a = usersArrivals(100, start, 3 * period, period, uniform(t, seed));
  assert.equal(a.length, 300);
  for (let i = 1; i < a.length; i++) assert.ok(a[i]!.atMs >= a[i - 1]!.atMs, 'sorted by time');
  for (let user = 0; user < 100; user++) {
    const steps = a.filter((x) => x.user === user).map((x) => Math.floor(x.atMs / period));
    assert.deepEqual(steps, [0, 1, 2].map((k) => start / period + k), `user ${user}: once per step`);
  }
  // Uniform within the step: the mean offset into the step is near the middle (300 samples: ±3 σ ≈ ±1.5 s).
  const mean = a.reduce((s, x) => s + (x.atMs % period), 0) / a.length;
  assert.ok(Math.abs(mean - period / 2) < 1_500, `mean offset ${mean}`);
  // A window that starts mid-step keeps only arrivals inside it: never before start, never at or after the end.
  const mid = usersArrivals(50, start + 10_000, 45_000, period, uniform(t, seed + 1));
  assert.ok(mid.every((x) => x.atMs >= start + 10_000 && x.atMs < start + 55_000));
  for (let user = 0; user < 50; user++) assert.ok(mid.filter((x) => x.user === user).length <= stepsOverlapping(45_000, period));
  assert.throws(() => usersArrivals(0, start, 1, period, () => 0.5), /users/);
});

test('poisson arrivals: sorted, inside the window, about rate x duration of them', (t) => {
  const seed = SEED;
  const o = poissonOffsets(200, 10_000, uniform(t, seed));
  for (let i = 1; i < o.length; i++) assert.ok(o[i]! >= o[i - 1]!);
  assert.ok(o.every((t) => t >= 0 && t < 10_000));
  // 2000 expected; a Poisson count has σ = √2000 ≈ 45: ±5 σ.
  assert.ok(Math.abs(o.length - 2000) < 225, `${o.length} arrivals`);
  assert.throws(() => poissonOffsets(0, 10, () => 0.5), /positive/);
  assert.equal(stepsOverlapping(60_000, 30_000), 3);
  assert.equal(stepsOverlapping(62_000, 30_000), 4);
});
