import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packValue, unpackValue } from '../../../src/state/command.ts';
import { T0, domainHarness } from './helpers.ts';
import { MAX_SIGNING_KEYS, RING_KEY, SIGNING_KEYS_KEYSPACE } from '../../../src/state/keys.ts';
import type { SigningKeyRecord, SigningKeyRing } from '../../../src/state/oauth-ops.ts';

const DAY = 24 * 3_600_000;

function harness() {
  const h = domainHarness('keys');
  const ring = (): SigningKeyRing | null => {
    const r = h.sm.read('keys', 'ring', {});
    if (!r.ok) assert.fail(r.message);
    return r.value as SigningKeyRing | null;
  };
  return { st: h.st, run: h.run, refused: h.refused, ring };
}

function key(kid: string, state: SigningKeyRecord['state'], over: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  return {
    kid,
    alg: 'ES256',
    publicJwk: { kty: 'EC', crv: 'P-256', x: 'eA', y: 'eQ', kid, alg: 'ES256', use: 'sig' },
    sealedPrivate: new Uint8Array(64).fill(kid.length),
    state,
    createdAt: T0,
    activatedAt: state === 'next' ? null : T0,
    publishUntil: state === 'retired' ? T0 + DAY : null,
    ...over,
  };
}

/** Binary fields come back from msgpack as Buffers: compare contents. */
function plain(r: SigningKeyRing | null): unknown {
  return r === null ? null : { ...r, keys: r.keys.map((k) => ({ ...k, sealedPrivate: new Uint8Array(k.sealedPrivate) })) };
}

test('init creates the ring (stored as exactly packValue(SigningKeyRing)) and is idempotent', () => {
  const h = harness();
  assert.equal(h.ring(), null);
  const active = key('k1', 'active');
  const next = key('k2', 'next');
  assert.deepEqual(h.run('init', { active, next }), { ok: true, value: { created: true, version: 1 } });
  const expected: SigningKeyRing = { version: 1, keys: [active, next] };
  assert.deepEqual(h.st.get(SIGNING_KEYS_KEYSPACE, RING_KEY), packValue(expected));
  assert.deepEqual(plain(h.ring()), expected);
  // A second leader's init: nothing changes.
  const before = h.st.snapshot();
  assert.deepEqual(h.run('init', { active: key('k3', 'active'), next: key('k4', 'next') }), { ok: true, value: { created: false, version: 1 } });
  assert.deepEqual(h.st.snapshot(), before);
});

test('rotate: next becomes active, active retires until ts + retainMs, the new next is added, version + 1', () => {
  const h = harness();
  h.run('init', { active: key('k1', 'active'), next: key('k2', 'next') });
  const t1 = T0 + 30 * DAY;
  assert.deepEqual(h.run('rotate', { expectVersion: 1, next: key('k3', 'next', { createdAt: t1 }), retainMs: DAY }, t1), { ok: true, value: { version: 2 } });
  const r1 = h.ring()!;
  assert.equal(r1.version, 2);
  assert.deepEqual(
    r1.keys.map((k) => [k.kid, k.state, k.activatedAt, k.publishUntil]),
    [
      ['k1', 'retired', T0, t1 + DAY],
      ['k2', 'active', t1, null],
      ['k3', 'next', null, null],
    ],
  );
  // The next rotation, after k1's publication ended, drops it.
  const t2 = t1 + 30 * DAY;
  assert.deepEqual(h.run('rotate', { expectVersion: 2, next: key('k4', 'next'), retainMs: DAY }, t2), { ok: true, value: { version: 3 } });
  assert.deepEqual(h.ring()!.keys.map((k) => [k.kid, k.state]), [
    ['k2', 'retired'],
    ['k3', 'active'],
    ['k4', 'next'],
  ]);
  // A retired key still within its publication window is kept.
  assert.deepEqual(h.run('rotate', { expectVersion: 3, next: key('k5', 'next'), retainMs: DAY }, t2 + 1), { ok: true, value: { version: 4 } });
  assert.deepEqual(h.ring()!.keys.map((k) => k.kid), ['k2', 'k3', 'k4', 'k5']);
});

test('rotate is compare-and-set on the version: a stale rotation is a CONFLICT and changes nothing', () => {
  const h = harness();
  h.refused('rotate', { expectVersion: 1, next: key('k3', 'next'), retainMs: DAY }, 'NOT_FOUND');
  h.run('init', { active: key('k1', 'active'), next: key('k2', 'next') });
  h.run('rotate', { expectVersion: 1, next: key('k3', 'next'), retainMs: DAY }, T0 + 1);
  // A second leader racing the same scheduled rotation.
  h.refused('rotate', { expectVersion: 1, next: key('k9', 'next'), retainMs: DAY }, 'CONFLICT', /version 2/, T0 + 2);
  h.refused('rotate', { expectVersion: 2, next: key('k2', 'next'), retainMs: DAY }, 'INVALID_ARGUMENT', /already in the ring/, T0 + 2);
});

test('rotate requires exactly one active and one next key', () => {
  const h = harness();
  // A ring that apply never makes, planted directly: apply must still refuse to rotate it.
  h.st.m.set(`${SIGNING_KEYS_KEYSPACE}\u0000${RING_KEY}`, packValue({ version: 7, keys: [key('k1', 'active'), key('k2', 'retired')] } satisfies SigningKeyRing));
  h.refused('rotate', { expectVersion: 7, next: key('k3', 'next'), retainMs: DAY }, 'CONFLICT', /exactly one active and one next/);
});

test('the ring is bounded: a rotation that would exceed the key limit is refused', () => {
  const h = harness();
  h.run('init', { active: key('k0', 'active'), next: key('k1', 'next') });
  let v = 1;
  // Retired keys published for a long time pile up: 2 live keys + (MAX - 2) retired fit.
  for (let i = 2; i < MAX_SIGNING_KEYS; i++) {
    assert.deepEqual(h.run('rotate', { expectVersion: v, next: key(`k${i}`, 'next'), retainMs: 300 * DAY }, T0 + i), { ok: true, value: { version: v + 1 } });
    v++;
  }
  assert.equal(h.ring()!.keys.length, MAX_SIGNING_KEYS);
  h.refused('rotate', { expectVersion: v, next: key('ky', 'next'), retainMs: 300 * DAY }, 'INVALID_ARGUMENT', /more than 16 keys/, T0 + 101);
  // Once the oldest retired key's publication has ended, rotation proceeds (it is dropped).
  assert.deepEqual(h.run('rotate', { expectVersion: v, next: key('ky', 'next'), retainMs: 300 * DAY }, T0 + 2 + 300 * DAY), { ok: true, value: { version: v + 1 } });
  assert.equal(h.ring()!.keys.length, MAX_SIGNING_KEYS);
});

test('SigningKeyRecord validation refuses bad keys and changes nothing', () => {
  const h = harness();
  const cases: [string, unknown, unknown, RegExp][] = [
    ['kid too long', key('k'.repeat(129), 'active'), key('k2', 'next'), /active\.kid/],
    ['kid with a space', key('k 1', 'active'), key('k2', 'next'), /active\.kid/],
    ['alg RS256', key('k1', 'active', { alg: 'RS256' as never }), key('k2', 'next'), /active\.alg/],
    ['private JWK', key('k1', 'active', { publicJwk: { kty: 'EC', d: 'x' } }), key('k2', 'next'), /publicJwk.*'d'/],
    ['JWK without kty', key('k1', 'active', { publicJwk: { crv: 'P-256' } }), key('k2', 'next'), /kty/],
    ['JWK kid mismatch', key('k1', 'active', { publicJwk: { kty: 'EC', kid: 'other' } }), key('k2', 'next'), /publicJwk\.kid/],
    ['sealed private too large', key('k1', 'active', { sealedPrivate: new Uint8Array(16 * 1024 + 1) }), key('k2', 'next'), /sealedPrivate/],
    ['sealed private empty', key('k1', 'active', { sealedPrivate: new Uint8Array(0) }), key('k2', 'next'), /sealedPrivate/],
    ['bad state', key('k1', 'active', { state: 'revoked' as never }), key('k2', 'next'), /state/],
    ['active in next slot', key('k1', 'active'), key('k2', 'active'), /next\.state must be next/],
    ['next in active slot', key('k1', 'next'), key('k2', 'next'), /active\.state must be active/],
    ['next key with activatedAt', key('k1', 'active'), key('k2', 'next', { activatedAt: T0 }), /activatedAt/],
    ['active key without activatedAt', key('k1', 'active', { activatedAt: null }), key('k2', 'next'), /activatedAt/],
    ['same kid', key('k1', 'active'), key('k1', 'next'), /differ/],
    ['extra field', { ...key('k1', 'active'), privateJwk: {} }, key('k2', 'next'), /unknown field privateJwk/],
  ];
  for (const [, active, next, field] of cases) h.refused('init', { active, next }, 'INVALID_ARGUMENT', field);
  assert.equal(h.ring(), null);
  h.run('init', { active: key('k1', 'active'), next: key('k2', 'next') });
  h.refused('rotate', { expectVersion: 1, next: key('k3', 'next'), retainMs: -1 }, 'INVALID_ARGUMENT', /retainMs/);
  h.refused('rotate', { expectVersion: '1', next: key('k3', 'next'), retainMs: DAY }, 'INVALID_ARGUMENT', /expectVersion/);
  h.refused('rotate', { expectVersion: 1, next: key('k3', 'active'), retainMs: DAY }, 'INVALID_ARGUMENT', /next\.state/);
  h.refused('nope', {}, 'UNKNOWN_OPERATION');
  assert.equal(unpackValue<SigningKeyRing>(h.st.get(SIGNING_KEYS_KEYSPACE, RING_KEY)!).version, 1);
});
