// The mfa domain's device.lookup (RFC 8628 §5.1): a user code typed on the device page is looked
// up and, when it names no pending request, counted against the user and the address, with the
// backoff and lockout of the other credentials, in one command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand, unpackValue } from '../../../src/state/command.ts';
import { AUDIT_KEYSPACE } from '../../../src/state/audit.ts';
import type { AuditRecord } from '../../../src/state/audit-ops.ts';
import { THROTTLE } from '../../../src/state/mfa-ops.ts';
import { backoffMs } from '../../../src/state/mfa.ts';
import { T0, domainHarness } from './helpers.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

const SUB = 'u-device';
const IP = '203.0.113.9';
const hash = (c: string): string => c.repeat(43).slice(0, 43);

let index = 1_000_000;

function harness() {
  const h = domainHarness('mfa');
  /** A tokens command on the same machine (device requests live in the tokens domain). */
  const runTokens = (op: string, args: unknown, ts = T0) => {
    const i = ++index;
    const b = h.sm.applyEntries(prepareEntries([{ term: 1, index: i, type: 'normal', data: encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts, domain: 'tokens', op, args }) }]));
    h.st.commit(b);
    return b.results.get(i)![0]!;
  };
  const audit = (): AuditRecord[] => h.st.keys(AUDIT_KEYSPACE).map((k) => unpackValue<AuditRecord>(h.st.get(AUDIT_KEYSPACE, k)!));
  const lookup = (code: string, ts = T0, sub = SUB, ip: string | null = IP) => h.run('device.lookup', { sub, userCodeHash: hash(code), meta: { ip } }, ts);
  return { ...h, runTokens, audit, lookup };
}

function createDevice(h: ReturnType<typeof harness>, code: string, exp = T0 + 600_000): void {
  const r = h.runTokens('device.create', { hash: hash('d' + code), userCodeHash: hash(code), exp, intervalMs: 5000, sealed: new Uint8Array([1]) });
  assert.ok(r.ok, JSON.stringify(r));
}

function value(r: ReturnType<ReturnType<typeof harness>['lookup']>): Record<string, unknown> {
  assert.ok(r.ok, JSON.stringify(r));
  return r.value as Record<string, unknown>;
}

test('device.lookup: a pending code is found and nothing is written; unknown, used and expired codes are counted misses', () => {
  const h = harness();
  createDevice(h, 'P');
  const before = h.st.snapshot();
  const hit = value(h.lookup('P'));
  assert.equal(hit.ok, true);
  assert.equal((hit.device as { status: string }).status, 'pending');
  assert.deepEqual(h.st.snapshot(), before, 'a hit writes nothing (no counter, no audit)');

  assert.deepEqual(value(h.lookup('X')), { ok: false, reason: 'unknown' });
  createDevice(h, 'E', T0 + 1000);
  assert.deepEqual(value(h.lookup('E', T0 + 1000)), { ok: false, reason: 'expired' });
  createDevice(h, 'U');
  assert.ok(h.runTokens('device.decide', { userCodeHash: hash('U'), approve: false, approval: null }).ok);
  assert.deepEqual(value(h.lookup('U', T0 + 1000)), { ok: false, reason: 'used' });

  const f = h.read('factors', { sub: SUB }) as { lock: { failures: number } };
  assert.equal(f.lock.failures, 3);
  const failed = h.audit().filter((r) => r.type === 'mfa.failed');
  assert.deepEqual(
    failed.map((r) => [r.sub, r.ip, r.details.factor, r.details.reason, r.details.failures]),
    [
      [SUB, IP, 'device_code', 'unknown', 1],
      [SUB, IP, 'device_code', 'expired', 2],
      [SUB, IP, 'device_code', 'used', 3],
    ],
  );
});

test('device.lookup: backoff after the free misses, doubling; a throttled lookup looks nothing up and changes nothing', () => {
  const h = harness();
  createDevice(h, 'P');
  let ts = T0;
  for (let i = 1; i <= THROTTLE.freeFailures; i++) assert.deepEqual(value(h.lookup('X', ts)), { ok: false, reason: 'unknown' });
  // The miss that starts the backoff says until when.
  assert.deepEqual(value(h.lookup('X', ts)), { ok: false, reason: 'unknown', retryAt: ts + backoffMs(1) });
  // Throttled: even the right code is not looked up, and nothing at all is written.
  const before = h.st.snapshot();
  assert.deepEqual(value(h.lookup('P', ts + 1)), { ok: false, reason: 'throttled', retryAt: ts + backoffMs(1) });
  assert.deepEqual(h.st.snapshot(), before, 'a throttled attempt changes nothing');
  // After the backoff: the right code is found, and finding it resets nothing.
  ts += backoffMs(1);
  assert.equal(value(h.lookup('P', ts)).ok, true);
  assert.deepEqual(value(h.lookup('X', ts)), { ok: false, reason: 'unknown', retryAt: ts + backoffMs(2) });
  assert.equal((h.read('factors', { sub: SUB }) as { lock: { failures: number } }).lock.failures, THROTTLE.freeFailures + 2);
});

test('device.lookup: lockAfterFailures misses lock the user (user.locked, factor device_code) until lockMs passes', () => {
  const h = harness();
  let ts = T0;
  let last: Record<string, unknown> = {};
  for (let i = 1; i <= THROTTLE.lockAfterFailures; i++) {
    last = value(h.lookup('X', ts));
    ts += THROTTLE.maxBackoffMs; // past any backoff: only the count matters
  }
  assert.equal(last.reason, 'locked');
  const lockedUntil = last.retryAt as number;
  const locked = h.audit().filter((r) => r.type === 'user.locked');
  assert.equal(locked.length, 1);
  assert.equal(locked[0]!.details.factor, 'device_code');
  // The lock holds every kind: the same user cannot sign in with a password meanwhile.
  assert.equal(value(h.lookup('X', ts)).reason, 'locked');
  assert.equal((value(h.run('throttle.check', { sub: SUB, kind: 'password', meta: { ip: null } }, ts)) as { reason?: string }).reason, 'locked');
  assert.deepEqual(value(h.lookup('X', lockedUntil)), { ok: false, reason: 'unknown' }, 'after lockMs counting starts over');
});

test('device.lookup: misses count per address across users; a found code does not reset the address', () => {
  const h = harness();
  createDevice(h, 'P');
  const ts = T0;
  // ipFreeFailures misses spread over users (each user stays under its own backoff).
  for (let i = 0; i < THROTTLE.ipFreeFailures; i++) value(h.lookup('X', ts, `user-${i}`));
  assert.equal(value(h.lookup('P', ts, 'user-hit')).ok, true);
  const r = value(h.lookup('X', ts, 'fresh-user'));
  assert.equal(r.retryAt, ts + backoffMs(1), 'the address is backed off after ipFreeFailures misses, despite the hit in between');
  assert.deepEqual(value(h.lookup('P', ts + 1, 'another-user')), { ok: false, reason: 'throttled', retryAt: ts + backoffMs(1) });
  // Another address is not held back.
  assert.equal(value(h.lookup('P', ts + 1, 'another-user', '198.51.100.1')).ok, true);
});

test('device.lookup: malformed arguments are refused and change nothing', () => {
  const h = harness();
  h.refused('device.lookup', { sub: SUB, userCodeHash: 'not a hash!', meta: { ip: IP } }, 'INVALID_ARGUMENT');
  h.refused('device.lookup', { sub: '', userCodeHash: hash('X'), meta: { ip: IP } }, 'INVALID_ARGUMENT');
  h.refused('device.lookup', { sub: null, userCodeHash: hash('X'), meta: { ip: IP } }, 'INVALID_ARGUMENT');
  h.refused('device.lookup', { sub: SUB, userCodeHash: hash('X'), meta: { ip: IP, extra: 1 } }, 'INVALID_ARGUMENT');
  h.refused('throttle.fail', { sub: SUB, kind: 'device', meta: { ip: IP } }, 'INVALID_ARGUMENT', /kind/);
});
