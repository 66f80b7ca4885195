import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import { Sealer, SealError } from '../../../src/crypto/seal.ts';
import { SigningKeys, generateSigningKey, jwkThumbprint } from '../../../src/crypto/signing-keys.ts';
import { signJwt, verifyJwt } from '../../../src/crypto/jws.ts';
import { packValue, unpackValue } from '../../../src/state/command.ts';
import type { SigningAlg, SigningKeyRecord, SigningKeyRing } from '../../../src/state/oauth-ops.ts';

const T0 = Date.parse('2026-11-23T12:00:00Z');
const ISS = 'https://auth.example.com';
const newSealer = (): Sealer => new Sealer(new Map([['dk1', randomBytes(32)]]), 'dk1');

for (const alg of ['ES256', 'EdDSA'] as const) {
  test(`${alg}: generateSigningKey makes a record with an RFC 7638 kid, a public JWK and a sealed private JWK`, async () => {
    const sealer = newSealer();
    const r = generateSigningKey(alg, sealer, T0, 'active');
    assert.equal(r.alg, alg);
    assert.equal(r.state, 'active');
    assert.equal(r.createdAt, T0);
    assert.equal(r.activatedAt, T0);
    assert.equal(r.publishUntil, null);
    assert.equal(r.kid, await jose.calculateJwkThumbprint(r.publicJwk as jose.JWK, 'sha256'));
    assert.equal(r.kid, jwkThumbprint(r.publicJwk));
    const expected = alg === 'ES256' ? ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'] : ['alg', 'crv', 'kid', 'kty', 'use', 'x'];
    assert.deepEqual(Object.keys(r.publicJwk).sort(), expected);
    assert.equal(r.publicJwk.crv, alg === 'ES256' ? 'P-256' : 'Ed25519');
    assert.equal(r.publicJwk.kty, alg === 'ES256' ? 'EC' : 'OKP');
    assert.deepEqual([r.publicJwk.kid, r.publicJwk.alg, r.publicJwk.use], [r.kid, alg, 'sig']);
    const priv = sealer.openValue<Record<string, unknown>>(r.sealedPrivate, `sk:${r.kid}`);
    assert.equal(typeof priv.d, 'string');
    assert.equal(priv.x, r.publicJwk.x);
    assert.throws(() => sealer.open(r.sealedPrivate, 'sk:other'), SealError);
    assert.equal(Buffer.from(r.sealedPrivate).includes(Buffer.from(String(priv.d))), false);
    const next = generateSigningKey(alg, sealer, T0, 'next');
    assert.equal(next.activatedAt, null);
    assert.notEqual(next.kid, r.kid);
  });
}

function ring(version: number, keys: SigningKeyRecord[]): SigningKeyRing {
  return { version, keys };
}

test('SigningKeys signs with the active key and verifies with any key of the ring; its JWKS verifies in jose', async () => {
  const sealer = newSealer();
  const active = generateSigningKey('ES256', sealer, T0, 'active');
  const next = generateSigningKey('ES256', sealer, T0, 'next');
  // As the ring arrives from the cache: msgpack-decoded (Buffers).
  const keys = SigningKeys.fromRing(unpackValue<SigningKeyRing>(packValue(ring(1, [active, next]))), sealer);
  assert.equal(keys.version, 1);
  assert.equal(keys.active().kid, active.kid);
  assert.equal(keys.active().alg, 'ES256');
  const token = signJwt(keys.active(), { iss: ISS, exp: T0 / 1000 + 600, sub: 'u' }, 'at+jwt');
  assert.equal(verifyJwt(token, (kid) => keys.publicKey(kid), { issuer: ISS, nowS: T0 / 1000, algorithms: ['ES256'] }).sub, 'u');
  assert.ok(keys.publicKey(next.kid));
  assert.equal(keys.publicKey('nope'), undefined);
  const jwks = keys.jwks(T0);
  assert.deepEqual(
    jwks.keys.map((k) => k.kid),
    [active.kid, next.kid],
  );
  for (const k of jwks.keys) assert.equal('d' in k, false);
  const r = await jose.jwtVerify(token, jose.createLocalJWKSet(jwks as jose.JSONWebKeySet), { issuer: ISS, currentDate: new Date(T0) });
  assert.equal(r.payload.sub, 'u');
  // Callers get copies: altering one does not alter the next answer.
  jwks.keys[0]!.kid = 'mutated';
  assert.equal(keys.jwks(T0).keys[0]!.kid, active.kid);
});

test('rotation states: next is published, retired keys are published until publishUntil, then dropped from the JWKS', () => {
  const sealer = newSealer();
  const a = generateSigningKey('EdDSA', sealer, T0, 'active');
  const b = generateSigningKey('EdDSA', sealer, T0, 'next');
  const v1 = SigningKeys.fromRing(ring(1, [a, b]), sealer);
  const tokenA = signJwt(v1.active(), { iss: ISS, exp: T0 / 1000 + 600 }, 'at+jwt');

  // What apply's rotate does: next → active, active → retired until T1 + retain, a new next.
  const T1 = T0 + 30 * 86_400_000;
  const retain = 3_600_000;
  const c = generateSigningKey('EdDSA', sealer, T1, 'next');
  const v2 = SigningKeys.fromRing(
    ring(2, [
      { ...a, state: 'retired', publishUntil: T1 + retain },
      { ...b, state: 'active', activatedAt: T1 },
      c,
    ]),
    sealer,
  );
  assert.equal(v2.version, 2);
  assert.equal(v2.active().kid, b.kid);
  assert.deepEqual(
    v2.jwks(T1).keys.map((k) => k.kid),
    [b.kid, c.kid, a.kid],
  );
  // A token signed by the retired key still verifies.
  assert.ok(verifyJwt(tokenA, (kid) => v2.publicKey(kid), { issuer: ISS, nowS: T0 / 1000, algorithms: ['EdDSA'] }));
  // At publishUntil the retired key leaves the JWKS (publishUntil > now, strictly).
  assert.deepEqual(
    v2.jwks(T1 + retain - 1).keys.map((k) => k.kid),
    [b.kid, c.kid, a.kid],
  );
  assert.deepEqual(
    v2.jwks(T1 + retain).keys.map((k) => k.kid),
    [b.kid, c.kid],
  );
  // Signing after the rotation uses the new active key.
  const tokenB = signJwt(v2.active(), { iss: ISS, exp: T1 / 1000 + 600 }, 'at+jwt');
  assert.equal(JSON.parse(Buffer.from(tokenB.split('.')[0]!, 'base64url').toString()).kid, b.kid);
});

test('fromRing refuses a ring without exactly one active key, a swapped sealed key, an altered public key', () => {
  const sealer = newSealer();
  const mk = (alg: SigningAlg, state: 'next' | 'active'): SigningKeyRecord => generateSigningKey(alg, sealer, T0, state);
  const a = mk('ES256', 'active');
  const b = mk('ES256', 'next');
  assert.throws(() => SigningKeys.fromRing(ring(1, [b]), sealer), /0 active keys/);
  assert.throws(() => SigningKeys.fromRing(ring(1, [a, { ...b, state: 'active' }]), sealer), /2 active keys/);
  assert.throws(() => SigningKeys.fromRing(ring(1, [a, a]), sealer), /appears twice/);
  // b's sealed private key under a's record: the aad ("sk:" + kid) does not match.
  assert.throws(() => SigningKeys.fromRing(ring(1, [{ ...a, sealedPrivate: b.sealedPrivate }]), sealer), SealError);
  // A public JWK replaced by another key's (kid kept): the kid is no longer its thumbprint.
  assert.throws(() => SigningKeys.fromRing(ring(1, [{ ...a, publicJwk: { ...b.publicJwk, kid: a.kid } }]), sealer), /not the thumbprint/);
  // Private material in the public JWK.
  assert.throws(() => SigningKeys.fromRing(ring(1, [{ ...a, publicJwk: { ...a.publicJwk, d: 'x' } }]), sealer), /private material/);
  // A ring sealed under another data key.
  assert.throws(() => SigningKeys.fromRing(ring(1, [a, b]), new Sealer(new Map([['dk2', randomBytes(32)]]), 'dk2')), /unknown data key id/);
  assert.throws(() => SigningKeys.fromRing(ring(1, [{ ...a, alg: 'RS256' as SigningAlg }]), sealer), /unknown alg/);
  assert.throws(() => SigningKeys.fromRing({ version: 1 } as unknown as SigningKeyRing, sealer), /bad format/);
  // The well-formed ring loads.
  assert.equal(SigningKeys.fromRing(ring(1, [a, b]), sealer).active().kid, a.kid);
});

test('jwkThumbprint matches RFC 8037 Appendix A.3 and refuses key types we do not make', () => {
  const jwk = {
    kty: 'RSA',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    e: 'AQAB',
  };
  // RFC 7638 covers RSA; we only make EC and OKP keys, so RSA is refused rather than mis-hashed.
  assert.throws(() => jwkThumbprint(jwk), TypeError);
  // RFC 8037 Appendix A.3: the Ed25519 example key's thumbprint.
  assert.equal(jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }), 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
});
