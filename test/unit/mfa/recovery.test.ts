// Recovery codes (src/mfa/recovery.ts): format, entropy, normalisation and hashing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenHash } from '../../../src/crypto/tokens.ts';
import { RECOVERY_ALPHABET, RECOVERY_CODE_BITS, RECOVERY_CODE_COUNT, generateRecoveryCodes, normalizeRecoveryCode, recoveryHash } from '../../../src/mfa/recovery.ts';

test('ten distinct codes of at least 50 bits, grouped xxxxx-xxxxx, hashes match', () => {
  assert.equal(RECOVERY_CODE_COUNT, 10);
  assert.equal(new Set(RECOVERY_ALPHABET).size, 32);
  assert.ok(RECOVERY_CODE_BITS >= 50);
  for (const ch of '01lo') assert.ok(!RECOVERY_ALPHABET.includes(ch), `no look-alike ${ch}`);
  const { codes, hashes } = generateRecoveryCodes();
  assert.equal(codes.length, 10);
  assert.equal(new Set(codes).size, 10);
  for (const c of codes) assert.match(c, /^[a-km-np-z2-9]{5}-[a-km-np-z2-9]{5}$/);
  assert.deepEqual(hashes, codes.map(recoveryHash));
  assert.equal(new Set(hashes).size, 10);
});

test('codes are uniform over the alphabet (chi-square over 2000 codes)', () => {
  const counts = new Map<string, number>();
  let n = 0;
  for (let i = 0; i < 200; i++) {
    for (const c of generateRecoveryCodes().codes) {
      for (const ch of c.replace('-', '')) {
        counts.set(ch, (counts.get(ch) ?? 0) + 1);
        n++;
      }
    }
  }
  const expected = n / 32;
  let chi = 0;
  for (const ch of RECOVERY_ALPHABET) chi += ((counts.get(ch) ?? 0) - expected) ** 2 / expected;
  // 31 degrees of freedom: P(chi² > 80) ≈ 4e-6 for a uniform source (crypto randomness: no seed to print).
  assert.ok(chi < 80, `chi-square ${chi.toFixed(1)}`);
});

test('typing variants hash alike: case, dashes and spaces do not matter', () => {
  const h = tokenHash('abcdefghjk');
  for (const typed of ['abcde-fghjk', 'ABCDE-FGHJK', 'abcde fghjk', ' abcdefghjk ', 'Abc-De-Fghjk', 'abcde\tfghjk']) {
    assert.equal(normalizeRecoveryCode(typed), 'abcdefghjk', typed);
    assert.equal(recoveryHash(typed), h, typed);
  }
  assert.notEqual(recoveryHash('abcde-fghjm'), h);
  assert.notEqual(recoveryHash(''), h);
});
