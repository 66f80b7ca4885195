// canonicalRecordJson (the fast path every node runs for every record it applies) must be exactly
// canonicalJson (RFC 8785) of the record's members, for every record shape, errors included.
// Seeded; a failure prints its seed (SEED=n replays it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, canonicalRecordJson } from '../../../src/state/audit.ts';
import { mulberry32 as rng } from './helpers.ts';

const STRINGS = ['', 'a', 'ü', '€', '😀', '"q"', 'back\\slash', 'nl\n', '\u0000', '\u001f', '\u2028', 'tab\t', '\ud800', 'ﬀ', 'Z', '1'];
const NUMBERS = [0, -0, 1, -1, 2 ** 53 - 1, 2 ** 53, 1.5, NaN, Infinity, 1e21];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function value(r: () => number): unknown {
  const x = r();
  if (x < 0.35) return pick(r, STRINGS) + pick(r, STRINGS);
  if (x < 0.6) return pick(r, NUMBERS);
  if (x < 0.7) return r() < 0.5;
  if (x < 0.8) return null;
  if (x < 0.85) return undefined;
  if (x < 0.9) return [1, 'a'];
  if (x < 0.95) return { nested: 1 };
  return 12345;
}

function record(r: () => number): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) details[pick(r, ['b', 'a', 'Z', 'jti', 'é', 'a1', 'A', '10', '9'])] = value(r);
  const maybe = (v: () => unknown): unknown => (r() < 0.85 ? v() : value(r));
  return {
    seq: maybe(() => Math.floor(r() * 1e6) + 1),
    ts: maybe(() => 1_700_000_000_000 + Math.floor(r() * 1e9)),
    type: maybe(() => pick(r, ['token.issued', 'login.failed'])),
    sub: maybe(() => (r() < 0.5 ? null : pick(r, STRINGS))),
    clientId: maybe(() => (r() < 0.5 ? null : 'demo')),
    ip: maybe(() => (r() < 0.5 ? null : '::1')),
    details: r() < 0.9 ? details : value(r),
    prev: maybe(() => 'f'.repeat(64)),
  };
}

const outcome = (f: () => string): string => {
  try {
    return `ok ${f()}`;
  } catch (e) {
    return `throws ${(e as Error).name}`;
  }
};

test('canonicalRecordJson is canonicalJson of the record, for any shape', () => {
  const seed = process.env.SEED ? Number(process.env.SEED) : 1123;
  const r = rng(seed);
  let fast = 0;
  for (let i = 0; i < 5000; i++) {
    const rec = record(r);
    const { seq, ts, type, sub, clientId, ip, details, prev } = rec;
    const want = outcome(() => canonicalJson({ seq, ts, type, sub, clientId, ip, details, prev }));
    const got = outcome(() => canonicalRecordJson(rec as never));
    if (got !== want) assert.fail(`seed ${seed} case ${i} (replay: SEED=${seed}): ${JSON.stringify(rec)}\n got  ${got}\n want ${want}`);
    if (want.startsWith('ok')) fast++;
  }
  assert.ok(fast > 1000, `only ${fast} encodable records: the generator is too strict`);
});
