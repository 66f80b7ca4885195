import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codesNeeded, jwtHeader, MAX_CODES } from './grants.ts';

test('codesNeeded covers warm-up and window at the expected rate plus one per client, within bounds', () => {
  assert.equal(codesNeeded(100, 2_000, 10_000, 16), 1_216);
  assert.equal(codesNeeded(0, 2_000, 10_000, 1), 200); // the floor
  assert.equal(codesNeeded(1e9, 2_000, 10_000, 64), MAX_CODES);
});

test('jwtHeader reads the JOSE header of a compact JWS, and nothing else', () => {
  const h = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt' })).toString('base64url');
  assert.deepEqual(jwtHeader(`${h}.e30.sig`), { alg: 'ES256', typ: 'at+jwt' });
  assert.equal(jwtHeader('opaque-token'), null);
  assert.equal(jwtHeader('a.b'), null);
  assert.equal(jwtHeader('!!!.e30.sig'), null);
  assert.equal(jwtHeader(undefined), null);
});
