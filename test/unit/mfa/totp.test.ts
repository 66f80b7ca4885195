// TOTP (src/mfa/totp.ts): RFC 6238 test vectors, the ±1 step window, strict code syntax, the
// secret, the otpauth URI and the QR code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TOTP_WINDOW, TOTP_PERIOD_S, generateTotpSecret, matchTotpStep, totpCodeAt, totpQrSvg, totpStep, totpUri } from '../../../src/mfa/totp.ts';

/** RFC 6238 Appendix B: the SHA-1 seed "12345678901234567890" (ASCII), base32. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
/** RFC 6238 Appendix B, SHA-1 column (8 digits; a 6-digit code is the last six, RFC 4226 §5.3). */
const VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

test('RFC 6238 Appendix B vectors (SHA-1, last six digits)', () => {
  for (const [t, code8] of VECTORS) {
    const step = totpStep(t * 1000);
    assert.equal(step, Math.floor(t / 30));
    assert.equal(totpCodeAt(RFC_SECRET, step), code8.slice(2), `T=${t}`);
    assert.equal(matchTotpStep(RFC_SECRET, code8.slice(2), t * 1000), step, `T=${t}`);
  }
});

test('the window is ±1 step: skew of one step is accepted, two steps is not (unless asked, up to 2)', () => {
  const secret = generateTotpSecret();
  const now = Date.parse('2026-11-23T12:00:10Z');
  const s = totpStep(now);
  for (const d of [-1, 0, 1]) assert.equal(matchTotpStep(secret, totpCodeAt(secret, s + d), now), s + d, `skew ${d}`);
  for (const d of [-2, 2, -3, 3]) assert.equal(matchTotpStep(secret, totpCodeAt(secret, s + d), now), null, `skew ${d}`);
  assert.equal(matchTotpStep(secret, totpCodeAt(secret, s + 2), now, 2), s + 2);
  assert.equal(matchTotpStep(secret, totpCodeAt(secret, s - 1), now, 0), null);
  // An expired code: the code of a step three periods ago.
  assert.equal(matchTotpStep(secret, totpCodeAt(secret, s), now + 3 * TOTP_PERIOD_S * 1000), null);
  assert.throws(() => matchTotpStep(secret, '000000', now, MAX_TOTP_WINDOW + 1), RangeError);
  assert.throws(() => matchTotpStep(secret, '000000', now, -1), RangeError);
});

test('only exactly six ASCII digits are a code', () => {
  const t = 1111111111 * 1000;
  const good = '050471';
  assert.equal(matchTotpStep(RFC_SECRET, good, t), totpStep(t));
  const bad = [` ${good}`, `${good} `, `${good}\n`, '05047', '0504711', '14050471', '\uFF10\uFF15\uFF10\uFF14\uFF17\uFF11', '05-0471', '', '+50471', '5e4710'];
  for (const code of bad) assert.equal(matchTotpStep(RFC_SECRET, code, t), null, JSON.stringify(code));
  // A wrong six-digit code (and one of the neighbouring steps is not one of ours either).
  assert.equal(matchTotpStep(RFC_SECRET, '000000', t), null);
});

test('secrets: 20 random bytes in base32 (32 characters, RFC 4648 alphabet), never repeated', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const s = generateTotpSecret();
    assert.match(s, /^[A-Z2-7]{32}$/);
    seen.add(s);
  }
  assert.equal(seen.size, 50);
});

test('otpauth URI: issuer in the label and as a parameter, account encoded, parameters explicit', () => {
  const secret = generateTotpSecret();
  const uri = totpUri({ secret, issuer: 'login.example.com:8443', account: 'alice smith@example.com' });
  const u = new URL(uri);
  assert.equal(u.protocol, 'otpauth:');
  assert.equal(u.host, 'totp');
  // The label's separator is the one literal ':'; a colon inside a part is percent-encoded.
  const parts = u.pathname.slice(1).split(':');
  assert.deepEqual(parts.map(decodeURIComponent), ['login.example.com:8443', 'alice smith@example.com']);
  assert.ok(!uri.includes('+'), 'spaces as %20, not +');
  assert.equal(u.searchParams.get('secret'), secret);
  assert.equal(u.searchParams.get('issuer'), 'login.example.com:8443');
  assert.equal(u.searchParams.get('algorithm'), 'SHA1');
  assert.equal(u.searchParams.get('digits'), '6');
  assert.equal(u.searchParams.get('period'), '30');
  assert.throws(() => totpUri({ secret, issuer: '', account: 'a' }), RangeError);
  assert.throws(() => totpUri({ secret: 'not base32!', issuer: 'x', account: 'a' }), RangeError);
});

test('the QR code is an SVG that depends on the URI', async () => {
  const a = await totpQrSvg('otpauth://totp/x:a?secret=AAAA&issuer=x');
  const b = await totpQrSvg('otpauth://totp/x:b?secret=AAAA&issuer=x');
  assert.match(a, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(a, /<path/);
  assert.notEqual(a, b);
  assert.equal(a, await totpQrSvg('otpauth://totp/x:a?secret=AAAA&issuer=x'));
});
