import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CryptoNotReady, CryptoRuntime, DATA_KEYS_TABLE, RING_KEY, SIGNING_KEYS_TABLE } from '../../../src/crypto/runtime.ts';
import { MasterKeyRing, SealError, newDataKey, unwrapRing } from '../../../src/crypto/seal.ts';
import { generateSigningKey } from '../../../src/crypto/signing-keys.ts';
import { CachePublisher } from '../../../src/server/read-cache.ts';
import { packValue, unpackValue } from '../../../src/state/command.ts';
import type { DataKeyRing, SigningKeyRing, WrappedDataKey } from '../../../src/state/oauth-ops.ts';

const T0 = Date.parse('2026-11-23T12:00:00Z');
const enc = new TextEncoder();

/** A read cache as workers hold it, counting reads so a rebuild (which reads the ring) is visible. */
class CountingCache {
  readonly pub = new CachePublisher();
  reads = 0;
  get(table: string, key: string): unknown {
    this.reads++;
    return this.pub.local.get(table, key);
  }
  version(table: string): number {
    return this.pub.local.version(table);
  }
  /** Push a ring the way the primary does (a msgpack round trip, as over IPC: byte fields arrive as Buffers). */
  push(table: string, ring: unknown): void {
    this.pub.publish(table, [[RING_KEY, unpackValue(packValue(ring))]]);
  }
}

function wrapped(master: MasterKeyRing, dk: { id: string; key: Uint8Array }): WrappedDataKey {
  return { id: dk.id, ...master.wrap(dk.key, dk.id), createdAt: T0 };
}

test('CryptoNotReady until the rings are pushed; then sealer and signing keys work', () => {
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'm');
  const cache = new CountingCache();
  const rt = new CryptoRuntime(cache, master);
  assert.equal(rt.master, master);
  assert.throws(() => rt.sealer(), CryptoNotReady);
  assert.throws(() => rt.signingKeys(), CryptoNotReady);

  const dk = newDataKey();
  cache.push(DATA_KEYS_TABLE, { version: 1, activeId: dk.id, keys: [wrapped(master, dk)] } satisfies DataKeyRing);
  const sealed = rt.sealer().seal(enc.encode('x'), 'a');
  assert.equal(Buffer.from(unwrapRing({ version: 1, activeId: dk.id, keys: [wrapped(master, dk)] }, master).open(sealed, 'a')).toString(), 'x');
  // Data keys but no signing keys yet.
  assert.throws(() => rt.signingKeys(), CryptoNotReady);
  // A signing_keys table pushed without a ring entry is not ready either.
  cache.pub.publish(SIGNING_KEYS_TABLE, []);
  assert.throws(() => rt.signingKeys(), CryptoNotReady);

  const sealer = rt.sealer();
  const active = generateSigningKey('ES256', sealer, T0, 'active');
  const next = generateSigningKey('ES256', sealer, T0, 'next');
  cache.push(SIGNING_KEYS_TABLE, { version: 1, keys: [active, next] } satisfies SigningKeyRing);
  assert.equal(rt.signingKeys().active().kid, active.kid);
  assert.equal(rt.signingKeys().version, 1);
});

test('the sealer and the signing keys are rebuilt only when their table version changes', () => {
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'm');
  const cache = new CountingCache();
  const rt = new CryptoRuntime(cache, master);
  const dk1 = newDataKey();
  cache.push(DATA_KEYS_TABLE, { version: 1, activeId: dk1.id, keys: [wrapped(master, dk1)] } satisfies DataKeyRing);
  const s1 = rt.sealer();
  const a = generateSigningKey('EdDSA', s1, T0, 'active');
  const b = generateSigningKey('EdDSA', s1, T0, 'next');
  cache.push(SIGNING_KEYS_TABLE, { version: 1, keys: [a, b] } satisfies SigningKeyRing);
  const k1 = rt.signingKeys();

  const reads = cache.reads;
  for (let i = 0; i < 100; i++) {
    assert.equal(rt.sealer(), s1);
    assert.equal(rt.signingKeys(), k1);
  }
  assert.equal(cache.reads, reads, 'no ring read while the versions are unchanged');

  // A new data-key ring (a second key, now active): a new sealer that still opens the old blobs.
  const old = s1.seal(enc.encode('old'), 'a');
  const dk2 = newDataKey();
  cache.push(DATA_KEYS_TABLE, { version: 2, activeId: dk2.id, keys: [wrapped(master, dk1), wrapped(master, dk2)] } satisfies DataKeyRing);
  const s2 = rt.sealer();
  assert.notEqual(s2, s1);
  assert.equal(Buffer.from(s2.open(old, 'a')).toString(), 'old');
  const fresh = s2.seal(enc.encode('new'), 'a');
  assert.equal(Buffer.from(fresh.subarray(2, 2 + fresh[1]!)).toString(), dk2.id);
  // The signing ring did not change: same object.
  assert.equal(rt.signingKeys(), k1);

  // Rotation: a new signing ring version.
  const c = generateSigningKey('EdDSA', s2, T0 + 1, 'next');
  cache.push(SIGNING_KEYS_TABLE, { version: 2, keys: [{ ...a, state: 'retired', publishUntil: T0 + 10 }, { ...b, state: 'active', activatedAt: T0 + 1 }, c] } satisfies SigningKeyRing);
  const k2 = rt.signingKeys();
  assert.notEqual(k2, k1);
  assert.equal(k2.version, 2);
  assert.equal(k2.active().kid, b.kid);
  assert.equal(rt.signingKeys(), k2);
});

test('a data-key ring the master key cannot unwrap fails loudly on every call, and recovers when fixed', () => {
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'm');
  const stranger = MasterKeyRing.parse(MasterKeyRing.generateText(), 's');
  const cache = new CountingCache();
  const rt = new CryptoRuntime(cache, master);
  const dk = newDataKey();
  cache.push(DATA_KEYS_TABLE, { version: 1, activeId: dk.id, keys: [wrapped(stranger, dk)] } satisfies DataKeyRing);
  assert.throws(() => rt.sealer(), SealError);
  assert.throws(() => rt.sealer(), SealError);
  cache.push(DATA_KEYS_TABLE, { version: 1, activeId: dk.id, keys: [wrapped(master, dk)] } satisfies DataKeyRing);
  assert.ok(rt.sealer());
});
