import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMfaBenchArgs, UsageError } from './args.ts';

test('defaults: 100 concurrent, 3000 TOTP users, 200 WebAuthn users, scrypt ln 10, both factors', () => {
  const a = parseMfaBenchArgs([]);
  assert.deepEqual(a.concurrency, [100]);
  assert.equal(a.users, 3000);
  assert.equal(a.webauthnUsers, 200);
  assert.equal(a.scryptLn, 10);
  assert.deepEqual(a.only, ['totp', 'webauthn']);
  assert.equal(a.seconds, 10);
  assert.equal(a.warmupSeconds, 2);
  assert.equal(a.out, null);
  assert.deepEqual(a.models, ['users', 'sweep', 'capacity']);
  assert.equal(a.openUsers, 100);
  assert.equal(a.usersSeconds, 60);
  assert.deepEqual(a.rates, [10, 25, 50, 100, 200]);
  assert.ok(Number.isSafeInteger(a.seed) && a.seed >= 0);
});

test('models: users, sweep and capacity flags', () => {
  const a = parseMfaBenchArgs(['--models', 'capacity, users', '--open-users', '40', '--users-seconds', '90', '--rates', '50,5,50', '--seed', '42', '--users', '40', '--concurrency', '10']);
  assert.deepEqual(a.models, ['users', 'capacity'], 'fixed order');
  assert.equal(a.openUsers, 40);
  assert.equal(a.usersSeconds, 90);
  assert.deepEqual(a.rates, [5, 50]);
  assert.equal(a.seed, 42);
  const bad = (argv: string[], re: RegExp) => assert.throws(() => parseMfaBenchArgs(argv), (e: unknown) => e instanceof UsageError && re.test(e.message));
  bad(['--models', 'closed'], /unknown model "closed"/);
  bad(['--rates', '0'], /--rates must be an integer from 1 to 5000/);
  bad(['--open-users', '200', '--users', '150', '--concurrency', '100'], /--users \(150\) must be at least --open-users \(200\)/);
  bad(['--seed', '-1'], /--seed/);
  // Without the capacity model, the closed-loop levels do not bound the users.
  assert.equal(parseMfaBenchArgs(['--models', 'users', '--users', '100', '--concurrency', '300', '--webauthn-users', '10']).users, 100);
});

test('flags: levels sorted and deduplicated, factors in their fixed order', () => {
  const a = parseMfaBenchArgs(['--concurrency', '100,10, 10', '--only', 'webauthn,totp', '--seconds', '3', '--warmup', '0', '--users', '500', '--out', '/tmp/x.json']);
  assert.deepEqual(a.concurrency, [10, 100]);
  assert.deepEqual(a.only, ['totp', 'webauthn']);
  assert.equal(a.seconds, 3);
  assert.equal(a.warmupSeconds, 0);
  assert.equal(a.users, 500);
  assert.equal(a.out, '/tmp/x.json');
});

test('bad flags are usage errors naming the flag; --help is an empty one', () => {
  const bad = (argv: string[], re: RegExp) => assert.throws(() => parseMfaBenchArgs(argv), (e: unknown) => e instanceof UsageError && re.test(e.message));
  bad(['--seconds', '0'], /--seconds must be an integer from 1 to 600/);
  bad(['--seconds', '1.5'], /--seconds/);
  bad(['--concurrency', '10,x'], /--concurrency/);
  bad(['--scrypt-ln', '9'], /--scrypt-ln must be an integer from 10 to 20/);
  bad(['--only', 'sms'], /unknown factor "sms"/);
  bad(['--nope'], /nope/);
  // One WebAuthn user per virtual client at least (counters in order), one TOTP user too.
  bad(['--concurrency', '300', '--webauthn-users', '200'], /--webauthn-users \(200\) must be at least the highest concurrency \(300\)/);
  bad(['--concurrency', '300', '--users', '200', '--only', 'totp'], /--users \(200\)/);
  assert.equal(parseMfaBenchArgs(['--concurrency', '300', '--webauthn-users', '10', '--only', 'totp']).webauthnUsers, 10, 'WebAuthn users do not matter without WebAuthn');
  assert.throws(() => parseMfaBenchArgs(['--help']), (e: unknown) => e instanceof UsageError && e.message === '');
});
