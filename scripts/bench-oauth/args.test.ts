import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOAuthBenchArgs, UsageError } from './args.ts';

test('defaults: 10 s levels at 1, 16, 64, every system, one worker', () => {
  const a = parseOAuthBenchArgs([]);
  assert.equal(a.seconds, 10);
  assert.equal(a.warmupSeconds, 2);
  assert.deepEqual(a.concurrency, [1, 16, 64]);
  assert.deepEqual(a.only, ['raftauth', 'oidc', 'ceiling', 'etcd']);
  assert.equal(a.workers, 1);
  assert.equal(a.rounds, 5);
  assert.equal(a.out, null);
});

test('flags are read, and --only keeps the canonical order', () => {
  const a = parseOAuthBenchArgs(['--seconds', '2.5', '--concurrency', '4, 8', '--only', 'etcd,raftauth', '--workers', '2', '--out', 'r.json', '--keep-temp']);
  assert.equal(a.seconds, 2.5);
  assert.deepEqual(a.concurrency, [4, 8]);
  assert.deepEqual(a.only, ['raftauth', 'etcd']);
  assert.equal(a.workers, 2);
  assert.equal(a.out, 'r.json');
  assert.equal(a.keepTemp, true);
});

test('bad values are usage errors naming the flag; --help is an empty one', () => {
  for (const [argv, re] of [
    [['--seconds', '0'], /--seconds/],
    [['--seconds', 'x'], /--seconds/],
    [['--concurrency', '1,1'], /repeat/],
    [['--concurrency', '1,'], /--concurrency/],
    [['--concurrency', '2000'], /--concurrency/],
    [['--workers', '1.5'], /integer/],
    [['--rounds', '0'], /--rounds/],
    [['--only', 'raftauth,nginx'], /unknown system/],
    [['--only', 'oidc,oidc'], /repeat/],
    [['--nope'], /nope/],
  ] as const) {
    assert.throws(() => parseOAuthBenchArgs(argv), (e: unknown) => e instanceof UsageError && re.test(e.message), argv.join(' '));
  }
  assert.throws(() => parseOAuthBenchArgs(['--help']), (e: unknown) => e instanceof UsageError && e.message === '');
});
