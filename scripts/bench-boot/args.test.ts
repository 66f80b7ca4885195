import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { UsageError, parseBootArgs, summarize } from './args.ts';

test('defaults: 5 runs from dist and the binary, one worker', () => {
  assert.deepEqual(parseBootArgs([]), { runs: 5, from: ['dist', 'binary'], workers: 1, dir: tmpdir(), keepTemp: false, out: null });
});

test('options are taken; --from keeps the order given and drops repeats', () => {
  const a = parseBootArgs(['--runs', '1', '--from', 'tsx, dist,tsx', '--workers', '2', '--dir', '/var/tmp', '--keep-temp', '--out', 'x.json']);
  assert.deepEqual(a, { runs: 1, from: ['tsx', 'dist'], workers: 2, dir: '/var/tmp', keepTemp: true, out: 'x.json' });
});

test('bad values are usage errors naming the option', () => {
  const bad = (argv: string[], re: RegExp): void => assert.throws(() => parseBootArgs(argv), (e: unknown) => e instanceof UsageError && re.test(e.message), JSON.stringify(argv));
  bad(['--runs', '0'], /--runs must be an integer from 1 to 50/);
  bad(['--runs', '51'], /--runs/);
  bad(['--runs', '2.5'], /--runs/);
  bad(['--workers', '0'], /--workers must be an integer from 1 to 16/);
  bad(['--from', 'docker'], /--from: unknown way of running "docker"/);
  bad(['--from', ''], /--from: unknown way of running ""/);
  bad(['--nope'], /nope/);
  bad(['extra'], /extra/);
  assert.throws(() => parseBootArgs(['--help']), (e: unknown) => e instanceof UsageError && e.message === '');
});

test('summarize: median of odd and even counts, min, max, samples in order; nothing for no samples', () => {
  assert.deepEqual(summarize([30, 10, 20]), { median: 20, min: 10, max: 30, samples: [30, 10, 20] });
  assert.deepEqual(summarize([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, samples: [4, 1, 3, 2] });
  assert.deepEqual(summarize([7]), { median: 7, min: 7, max: 7, samples: [7] });
  assert.equal(summarize([]), null);
});
