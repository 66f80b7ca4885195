// bench:scale's command line: defaults, the short form, and bad input refused with a message that
// names the option and what it accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, UsageError, parseScaleArgs } from './args.ts';

const refuses = (argv: string[], re: RegExp): void => {
  assert.throws(() => parseScaleArgs(argv), (e: unknown) => e instanceof UsageError && re.test(e.message), `${argv.join(' ')} refused with ${re}`);
};

test('defaults are the issue\'s sizes and 30 s at 64 in flight', () => {
  const a = parseScaleArgs([]);
  assert.deepEqual(a.sizes, [10_000, 100_000, 1_000_000]);
  assert.equal(a.measureSeconds, 30);
  assert.equal(a.concurrency, 64);
  assert.equal(a.behindEntries, 50_000);
  assert.equal(a.behindConcurrency, 8);
  assert.equal(a.sweepRecords, 100_000);
  assert.deepEqual(a.skip, []);
  assert.equal(a.out, null);
  assert.deepEqual({ ...a, dir: '' }, { ...DEFAULTS, dir: '' });
});

test('the short form of a quick run parses', () => {
  const a = parseScaleArgs(['--sizes', '2000,5000', '--measure-seconds', '5', '--behind', '2000', '--sweep-records', '1000', '--skip', 'learner,sweep', '--out', '/tmp/x.json', '--keep-temp']);
  assert.deepEqual(a.sizes, [2000, 5000]);
  assert.equal(a.measureSeconds, 5);
  assert.equal(a.behindEntries, 2000);
  assert.equal(a.sweepRecords, 1000);
  assert.deepEqual(a.skip, ['learner', 'sweep']);
  assert.equal(a.out, '/tmp/x.json');
  assert.equal(a.keepTemp, true);
});

test('bad sizes are refused clearly', () => {
  refuses(['--sizes'], /--sizes needs/);
  refuses(['--sizes', ''], /--sizes needs/);
  refuses(['--sizes', '5000,2000'], /strictly ascending/);
  refuses(['--sizes', '2000,2000'], /strictly ascending/);
  refuses(['--sizes', '1e6'], /whole number/);
  refuses(['--sizes', '-5'], /whole number.*"-5"/);
  refuses(['--sizes', '2000,abc'], /whole number.*"abc"/);
  refuses(['--sizes', '10'], /from 100 to 50000000, got 10/);
  refuses(['--sizes', '1,2,3,4,5,6,7,8,9,10,11'.split(',').map((x) => String(Number(x) * 1000)).join(',')], /at most 10 sizes/);
});

test('other bad values are refused with the option and its range', () => {
  refuses(['--measure-seconds', '0'], /--measure-seconds must be from 1 to 3600, got 0/);
  refuses(['--measure-seconds', '2.5'], /--measure-seconds must be a whole number/);
  refuses(['--concurrency', '100000'], /--concurrency must be from 1 to 1024/);
  refuses(['--behind', '10'], /--behind must be from 100/);
  refuses(['--behind-concurrency', '0'], /--behind-concurrency must be from 1 to 4096, got 0/);
  refuses(['--skip', 'snapshots'], /unknown phase "snapshots"; the phases are learner, follower, sweep/);
  refuses(['--phase-timeout-seconds', '5'], /from 10 to 86400/);
  refuses(['--out'], /--out needs a file name/);
  refuses(['--sizez', '1000'], /unknown option "--sizez"/);
  assert.throws(() => parseScaleArgs(['--help']), (e: unknown) => e instanceof UsageError && e.message === '');
});
