import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import * as jose from 'jose';
import { JwtVerifyError, MAX_JWT_CHARS, signJwt, verifyJwt } from '../../../src/crypto/jws.ts';
import type { JwtVerifyErrorCode, SigningKey, VerifyOptions } from '../../../src/crypto/jws.ts';
import type { SigningAlg } from '../../../src/state/oauth-ops.ts';

const ISS = 'https://auth.example.com';
const NOW = 1_800_000_000;

function keyPair(alg: SigningAlg, kid = `k-${alg}`): { signing: SigningKey; pub: KeyObject; jwk: jose.JWK } {
  const { publicKey, privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as jose.JWK), kid, alg, use: 'sig' };
  return { signing: { kid, alg, privateKey }, pub: publicKey, jwk };
}

const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ iss: ISS, sub: 'u1', aud: 'api', iat: NOW, exp: NOW + 600, jti: 'j1', ...extra });
const opts = (extra: Partial<VerifyOptions> = {}): VerifyOptions => ({ issuer: ISS, audience: 'api', nowS: NOW, algorithms: ['ES256', 'EdDSA'], typ: 'at+jwt', ...extra });

function refuses(code: JwtVerifyErrorCode, f: () => unknown, why = ''): void {
  assert.throws(f, (e: unknown) => e instanceof JwtVerifyError && e.code === code, `expected ${code} ${why}`);
}

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const parts = (t: string): [string, string, string] => t.split('.') as [string, string, string];

for (const alg of ['ES256', 'EdDSA'] as const) {
  test(`${alg}: signJwt output verifies with jose (createLocalJWKSet), and jose's tokens verify with verifyJwt`, async () => {
    const k = keyPair(alg);
    const token = signJwt(k.signing, claims(), 'at+jwt');
    const [h, , s] = parts(token);
    // Header members in the order alg, kid, typ.
    assert.equal(Buffer.from(h, 'base64url').toString(), `{"alg":"${alg}","kid":"k-${alg}","typ":"at+jwt"}`);
    assert.equal(Buffer.from(s, 'base64url').length, 64); // ES256: R||S (RFC 7518 §3.4); Ed25519: 64 bytes
    const jwks = jose.createLocalJWKSet({ keys: [k.jwk] });
    const r = await jose.jwtVerify(token, jwks, { issuer: ISS, audience: 'api', typ: 'at+jwt', currentDate: new Date(NOW * 1000), algorithms: [alg] });
    assert.equal(r.payload.sub, 'u1');
    assert.equal(r.protectedHeader.kid, `k-${alg}`);
    assert.deepEqual(verifyJwt(token, (kid) => (kid === k.signing.kid ? k.pub : undefined), opts()), claims());

    // The other direction: jose signs, we verify.
    const jk = await jose.generateKeyPair(alg === 'ES256' ? 'ES256' : 'EdDSA', { extractable: true });
    const pubJwk = await jose.exportJWK(jk.publicKey);
    const joseToken = await new jose.SignJWT(claims({ sub: 'from-jose' })).setProtectedHeader({ alg, kid: 'jose-key', typ: 'application/at+jwt' }).sign(jk.privateKey);
    const pub = createPublicKey({ key: pubJwk as JsonWebKey, format: 'jwk' });
    assert.equal(verifyJwt(joseToken, (kid) => (kid === 'jose-key' ? pub : undefined), opts()).sub, 'from-jose');
    // Our key does not verify jose's token.
    refuses('bad_signature', () => verifyJwt(joseToken, () => k.pub, opts()));
  });
}

test('tampered header, payload or signature is refused', () => {
  const k = keyPair('ES256');
  const keyFor = (kid: string): KeyObject | undefined => (kid === k.signing.kid ? k.pub : undefined);
  const token = signJwt(k.signing, claims(), 'at+jwt');
  const [h, p, s] = parts(token);
  refuses('bad_signature', () => verifyJwt(`${h}.${b64(claims({ sub: 'admin' }))}.${s}`, keyFor, opts()), 'payload');
  refuses('bad_signature', () => verifyJwt(`${b64({ alg: 'ES256', kid: k.signing.kid, typ: 'at+jwt', x: 1 })}.${p}.${s}`, keyFor, opts()), 'header');
  const sig = Buffer.from(s, 'base64url');
  for (const i of [0, 31, 32, 63]) {
    const t = Buffer.from(sig);
    t[i] ^= 1;
    refuses('bad_signature', () => verifyJwt(`${h}.${p}.${t.toString('base64url')}`, keyFor, opts()), `sig byte ${i}`);
  }
  // DER-encoded or truncated ECDSA signatures are not R||S.
  refuses('bad_signature', () => verifyJwt(`${h}.${p}.${sig.subarray(0, 63).toString('base64url')}`, keyFor, opts()));
  refuses('bad_signature', () => verifyJwt(`${h}.${p}.${Buffer.concat([sig, Buffer.from([0])]).toString('base64url')}`, keyFor, opts()));
  // A signature with stray trailing bits is a second spelling of the same bytes: refused.
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = s[s.length - 1]!;
  const variant = s.slice(0, -1) + A[A.indexOf(last) ^ 1];
  assert.throws(() => verifyJwt(`${h}.${p}.${variant}`, keyFor, opts()), JwtVerifyError);
  // Untouched, it verifies.
  assert.equal(verifyJwt(token, keyFor, opts()).sub, 'u1');
});

test('alg none, algorithms not allowed, and key/alg mismatches are refused', () => {
  const es = keyPair('ES256', 'es');
  const ed = keyPair('EdDSA', 'ed');
  const keyFor = (kid: string): KeyObject | undefined => (kid === 'es' ? es.pub : kid === 'ed' ? ed.pub : undefined);
  const p = b64(claims());
  refuses('malformed', () => verifyJwt(`${b64({ alg: 'none', kid: 'es', typ: 'at+jwt' })}.${p}.`, keyFor, opts()), 'none, empty sig');
  refuses('malformed', () => verifyJwt(`${b64({ alg: 'none', kid: 'es', typ: 'at+jwt' })}.${p}.AAAA`, keyFor, opts()), 'none');
  refuses('malformed', () => verifyJwt(`${b64({ alg: 'HS256', kid: 'es', typ: 'at+jwt' })}.${p}.AAAA`, keyFor, opts()), 'HS256');
  refuses('malformed', () => verifyJwt(`${b64({ kid: 'es', typ: 'at+jwt' })}.${p}.AAAA`, keyFor, opts()), 'no alg');
  const edToken = signJwt(ed.signing, claims(), 'at+jwt');
  refuses('malformed', () => verifyJwt(edToken, keyFor, opts({ algorithms: ['ES256'] })), 'EdDSA not in algorithms');
  // The token claims ES256 under kid "ed": the Ed25519 key is never used as if it were P-256.
  const [, ep, esig] = parts(edToken);
  refuses('bad_signature', () => verifyJwt(`${b64({ alg: 'ES256', kid: 'ed', typ: 'at+jwt' })}.${ep}.${esig}`, keyFor, opts()));
  // crit is refused (RFC 7515 §4.1.11), even with b64:false.
  const crit = signJwt({ ...es.signing }, claims(), 'at+jwt');
  refuses('malformed', () => verifyJwt(`${b64({ alg: 'ES256', kid: 'es', typ: 'at+jwt', crit: ['b64'], b64: false })}.${parts(crit)[1]}.${parts(crit)[2]}`, keyFor, opts()));
  // signJwt refuses a key that does not fit its alg.
  assert.throws(() => signJwt({ kid: 'x', alg: 'ES256', privateKey: ed.signing.privateKey }, claims(), 'at+jwt'), TypeError);
  assert.throws(() => signJwt({ kid: 'x', alg: 'EdDSA', privateKey: es.pub }, claims(), 'at+jwt'), TypeError);
});

test('typ is compared as a media type (RFC 7515 §4.1.9); a wrong or missing typ is refused', () => {
  const k = keyPair('EdDSA');
  const keyFor = (): KeyObject => k.pub;
  for (const typ of ['at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/AT+jwt']) {
    assert.equal(verifyJwt(signJwt(k.signing, claims(), typ), keyFor, opts()).sub, 'u1', typ);
  }
  assert.equal(verifyJwt(signJwt(k.signing, claims(), 'at+jwt'), keyFor, opts({ typ: 'application/at+jwt' })).sub, 'u1');
  refuses('malformed', () => verifyJwt(signJwt(k.signing, claims(), 'JWT'), keyFor, opts()), 'JWT for at+jwt');
  refuses('malformed', () => verifyJwt(signJwt(k.signing, claims(), 'text/at+jwt'), keyFor, opts()), 'text/');
  refuses('malformed', () => verifyJwt(signJwt(k.signing, claims(), 'logout+jwt'), keyFor, opts()), 'logout+jwt');
  // No typ expected: any typ is fine.
  assert.equal(verifyJwt(signJwt(k.signing, claims(), 'JWT'), keyFor, opts({ typ: undefined })).sub, 'u1');
});

test('kid must be present and known', () => {
  const k = keyPair('ES256');
  const token = signJwt(k.signing, claims(), 'at+jwt');
  refuses('unknown_key', () => verifyJwt(token, () => undefined, opts()));
  const [, p, s] = parts(token);
  refuses('malformed', () => verifyJwt(`${b64({ alg: 'ES256', typ: 'at+jwt' })}.${p}.${s}`, () => k.pub, opts()));
  refuses('malformed', () => verifyJwt(`${b64({ alg: 'ES256', kid: 7, typ: 'at+jwt' })}.${p}.${s}`, () => k.pub, opts()));
});

test('claims: iss, aud, exp required, nbf, iat, with tolerance', () => {
  const k = keyPair('ES256');
  const keyFor = (): KeyObject => k.pub;
  const v = (c: Record<string, unknown>, o: Partial<VerifyOptions> = {}): Record<string, unknown> => verifyJwt(signJwt(k.signing, c, 'at+jwt'), keyFor, opts(o));
  refuses('claim', () => v(claims({ iss: 'https://evil.example.com' })));
  refuses('claim', () => v(claims({ iss: undefined })));
  refuses('claim', () => v(claims({ aud: 'other' })));
  refuses('claim', () => v(claims({ aud: undefined })));
  assert.equal(v(claims({ aud: ['other', 'api'] })).sub, 'u1');
  refuses('claim', () => v(claims({ aud: ['other'] })));
  assert.equal(v(claims({ aud: undefined }), { audience: undefined }).sub, 'u1');
  refuses('claim', () => v(claims({ exp: undefined })));
  refuses('claim', () => v(claims({ exp: String(NOW + 600) })));
  // RFC 7519 §4.1.4: valid strictly before exp.
  assert.equal(v(claims({ exp: NOW + 1 })).sub, 'u1');
  refuses('expired', () => v(claims({ exp: NOW })));
  refuses('expired', () => v(claims({ exp: NOW - 5 })));
  assert.equal(v(claims({ exp: NOW - 5 }), { clockToleranceS: 10 }).sub, 'u1');
  refuses('expired', () => v(claims({ exp: NOW - 10 }), { clockToleranceS: 10 }));
  assert.equal(v(claims({ nbf: NOW })).sub, 'u1');
  refuses('not_yet_valid', () => v(claims({ nbf: NOW + 1 })));
  assert.equal(v(claims({ nbf: NOW + 5 }), { clockToleranceS: 5 }).sub, 'u1');
  refuses('claim', () => v(claims({ nbf: 'soon' })));
  refuses('not_yet_valid', () => v(claims({ iat: NOW + 60 })));
  assert.equal(v(claims({ iat: NOW + 60 }), { clockToleranceS: 60 }).sub, 'u1');
  refuses('claim', () => v(claims({ iat: null })));
  assert.throws(() => v(claims(), { clockToleranceS: -1 }), RangeError);
});

test('malformed tokens: parts, base64url, JSON, size', () => {
  const k = keyPair('ES256');
  const keyFor = (): KeyObject => k.pub;
  const token = signJwt(k.signing, claims(), 'at+jwt');
  const [h, p, s] = parts(token);
  for (const bad of ['', 'a', 'a.b', `${h}.${p}`, `${h}.${p}.${s}.x`, `${h}.${p}.${s}.x.y`, `${h}..${s}`, `.${p}.${s}`, `${h}.${p}.${s}=`, `${h}+.${p}.${s}`, `${b64('str')}.${p}.${s}`, `${b64([1])}.${p}.${s}`, `${Buffer.from('{"alg":').toString('base64url')}.${p}.${s}`]) {
    refuses('malformed', () => verifyJwt(bad, keyFor, opts()), JSON.stringify(bad.slice(0, 40)));
  }
  // Invalid UTF-8 in the header.
  refuses('malformed', () => verifyJwt(`${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.${p}.${s}`, keyFor, opts()));
  // A payload that is not an object, correctly signed.
  const arr = signJwt(k.signing, [1, 2] as unknown as Record<string, unknown>, 'at+jwt');
  refuses('malformed', () => verifyJwt(arr, keyFor, opts()));
  // Size bound: a validly signed token over 16 KiB is refused before any work.
  const big = signJwt(k.signing, claims({ pad: 'x'.repeat(MAX_JWT_CHARS) }), 'at+jwt');
  assert.ok(big.length > MAX_JWT_CHARS);
  refuses('malformed', () => verifyJwt(big, keyFor, opts()));
  const fits = signJwt(k.signing, claims({ pad: 'x'.repeat(MAX_JWT_CHARS / 2) }), 'at+jwt');
  assert.equal(verifyJwt(fits, keyFor, opts()).sub, 'u1');
});

test('the header cache keys on alg, kid and typ', () => {
  const a = keyPair('ES256', 'same');
  const b = keyPair('EdDSA', 'same');
  const ta = signJwt(a.signing, claims(), 'at+jwt');
  const tb = signJwt(b.signing, claims(), 'at+jwt');
  const tc = signJwt(a.signing, claims(), 'JWT');
  assert.equal(JSON.parse(Buffer.from(parts(ta)[0], 'base64url').toString()).alg, 'ES256');
  assert.equal(JSON.parse(Buffer.from(parts(tb)[0], 'base64url').toString()).alg, 'EdDSA');
  assert.equal(JSON.parse(Buffer.from(parts(tc)[0], 'base64url').toString()).typ, 'JWT');
  assert.equal(verifyJwt(tb, () => b.pub, opts()).sub, 'u1');
  // More distinct headers than the cache holds: still correct.
  for (let i = 0; i < 100; i++) {
    const t = signJwt({ ...a.signing, kid: `k${i}` }, claims(), 'at+jwt');
    assert.equal(JSON.parse(Buffer.from(parts(t)[0], 'base64url').toString()).kid, `k${i}`);
    assert.equal(verifyJwt(t, (kid) => (kid === `k${i}` ? a.pub : undefined), opts()).sub, 'u1');
  }
});
