// The simulation's environment settings: RAFTAUTH_SIM_SEEDS_PER_MIX=0 or =abc used to run no seed
// and pass; such values are refused now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SEEDS_PER_MIX, intFromEnv } from './env.ts';

test('intFromEnv: unset gives the default; whole numbers in range are taken', () => {
  assert.equal(intFromEnv({}, 'X', 100, 1, MAX_SEEDS_PER_MIX), 100);
  assert.equal(intFromEnv({ X: '1' }, 'X', 100, 1, MAX_SEEDS_PER_MIX), 1);
  assert.equal(intFromEnv({ X: String(MAX_SEEDS_PER_MIX) }, 'X', 100, 1, MAX_SEEDS_PER_MIX), MAX_SEEDS_PER_MIX);
});

test('intFromEnv: zero, out of range, not a number, empty, signed, fractional or padded values are refused, naming the variable', () => {
  for (const raw of ['0', String(MAX_SEEDS_PER_MIX + 1), 'abc', '', ' 5', '5 ', '-3', '+3', '2.5', '1e3', 'NaN', 'Infinity', '0x10']) {
    assert.throws(() => intFromEnv({ RAFTAUTH_SIM_SEEDS_PER_MIX: raw }, 'RAFTAUTH_SIM_SEEDS_PER_MIX', 100, 1, MAX_SEEDS_PER_MIX), (e: Error) => e.message === `RAFTAUTH_SIM_SEEDS_PER_MIX must be a whole number from 1 to ${MAX_SEEDS_PER_MIX}, got ${JSON.stringify(raw)}`, raw);
  }
});
