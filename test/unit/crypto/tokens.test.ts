import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { USER_CODE_ALPHABET, normalizeUserCode, randomId, randomToken, randomUserCode, safeEqual, tokenHash } from '../../../src/crypto/tokens.ts';

test('randomToken is base64url of 32 random bytes by default, and distinct each time', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const t = randomToken();
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(t, 'base64url').length, 32);
    seen.add(t);
  }
  assert.equal(seen.size, 200);
  assert.equal(Buffer.from(randomToken(48), 'base64url').length, 48);
  assert.throws(() => randomToken(8), RangeError);
  assert.throws(() => randomToken(1.5), RangeError);
  assert.throws(() => randomToken(4096), RangeError);
});

test('randomId is base64url of 16 bytes by default', () => {
  const id = randomId();
  assert.match(id, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(randomId(12).length, 16);
  assert.notEqual(randomId(), randomId());
  assert.throws(() => randomId(4), RangeError);
});

test('tokenHash is base64url(SHA-256(utf8))', () => {
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  assert.equal(Buffer.from(tokenHash('abc'), 'base64url').toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(tokenHash('é'), createHash('sha256').update(Buffer.from([0xc3, 0xa9])).digest('base64url'));
  assert.notEqual(tokenHash('a'), tokenHash('b'));
});

test('safeEqual compares content, and different lengths are unequal', () => {
  assert.equal(safeEqual('abc', 'abc'), true);
  assert.equal(safeEqual('', ''), true);
  assert.equal(safeEqual('abc', 'abd'), false);
  assert.equal(safeEqual('abc', 'abcd'), false);
  assert.equal(safeEqual('abcd', 'abc'), false);
  // Same UTF-16 length, different UTF-8 length.
  assert.equal(safeEqual('é', 'e'), false);
});

test('user codes are XXXX-XXXX over the RFC 8628 §6.1 base-20 alphabet, roughly uniform', () => {
  assert.equal(USER_CODE_ALPHABET, 'BCDFGHJKLMNPQRSTVWXZ');
  const counts = new Map<string, number>();
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const c = randomUserCode();
    assert.match(c, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    for (const ch of c.replace('-', '')) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  // 16000 draws over 20 letters: 800 expected each, sd ≈ 27.6; ±200 is > 7 sd (never by chance).
  assert.equal(counts.size, 20);
  for (const [ch, k] of counts) assert.ok(k > 600 && k < 1000, `letter ${ch} drawn ${k} times`);
});

test('normalizeUserCode is lenient with case, dashes and spaces, strict with everything else', () => {
  assert.equal(normalizeUserCode('WDJB-MJHT'), 'WDJBMJHT');
  assert.equal(normalizeUserCode('wdjb-mjht'), 'WDJBMJHT');
  assert.equal(normalizeUserCode(' wdjb mjht\t'), 'WDJBMJHT');
  assert.equal(normalizeUserCode('W-D-J-B-M-J-H-T'), 'WDJBMJHT');
  const c = randomUserCode();
  assert.equal(normalizeUserCode(c), c.replace('-', ''));
  assert.equal(normalizeUserCode('WDJB-MJH'), null); // 7
  assert.equal(normalizeUserCode('WDJB-MJHTB'), null); // 9
  assert.equal(normalizeUserCode('WDJA-MJHT'), null); // vowel
  assert.equal(normalizeUserCode('WDJ1-MJHT'), null); // digit
  assert.equal(normalizeUserCode('WDJB_MJHT'), null); // other punctuation is not dropped
  assert.equal(normalizeUserCode('WDJBMJHſ'), null); // 'ſ'.toUpperCase() is 'S': ASCII only
  assert.equal(normalizeUserCode(''), null);
  assert.equal(normalizeUserCode('WDJBMJHT' + ' '.repeat(100)), null); // input bound
});
