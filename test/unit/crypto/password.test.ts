import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { MAX_PASSWORD_CHARS, hashPassword, needsRehash, verifyDummy, verifyPassword } from '../../../src/crypto/password.ts';
import type { ScryptParams } from '../../../src/crypto/password.ts';

const P: ScryptParams = { ln: 10, r: 8, p: 1 };
const PHC = /^\$scrypt\$ln=10,r=8,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$/;

test('hashPassword makes a PHC string that is scrypt(NFKC(password), salt) and verifies', async () => {
  const phc = await hashPassword('correct horse battery staple', P);
  const m = PHC.exec(phc);
  assert.ok(m, phc);
  const salt = Buffer.from(m[1]!, 'base64');
  assert.equal(salt.length, 16);
  const expected = scryptSync('correct horse battery staple', salt, 32, { N: 1024, r: 8, p: 1 });
  assert.equal(Buffer.from(m[2]!, 'base64').toString('hex'), expected.toString('hex'));
  assert.equal(await verifyPassword('correct horse battery staple', phc), true);
  assert.equal(await verifyPassword('correct horse battery stapler', phc), false);
  assert.equal(await verifyPassword('', phc), false);
  // A fresh salt each time.
  assert.notEqual(await hashPassword('correct horse battery staple', P), phc);
});

test('passwords are NFKC-normalized (NIST SP 800-63B §5.1.1.2)', async () => {
  // "é" precomposed vs e + combining acute; the "ﬁ" ligature vs "fi"; full-width digits vs ASCII.
  const phc = await hashPassword('caf\u00e9 \ufb01 \uff11\uff12', { ln: 10, r: 1, p: 1 });
  assert.match(phc, /^\$scrypt\$ln=10,r=1,p=1\$/);
  assert.equal(await verifyPassword('cafe\u0301 fi 12', phc), true);
  assert.equal(await verifyPassword('cafe fi 12', phc), false);
});

test('the parameters come from the stored string; other parameters verify too', async () => {
  const phc = await hashPassword('pw', { ln: 11, r: 4, p: 2 });
  assert.match(phc, /^\$scrypt\$ln=11,r=4,p=2\$/);
  assert.equal(await verifyPassword('pw', phc), true);
  assert.equal(await verifyPassword('pw', phc.replace('ln=11', 'ln=10')), false);
});

test('hashPassword refuses out-of-range parameters and over-long passwords', async () => {
  for (const bad of [
    { ln: 9, r: 8, p: 1 },
    { ln: 21, r: 8, p: 1 },
    { ln: 10, r: 0, p: 1 },
    { ln: 10, r: 33, p: 1 },
    { ln: 10, r: 8, p: 0 },
    { ln: 10, r: 8, p: 17 },
    { ln: 10.5, r: 8, p: 1 },
    { ln: 20, r: 9, p: 1 }, // each in range, but 128·2^20·9 bytes is over the 1 GiB cap
    { ln: 19, r: 32, p: 1 },
  ]) {
    await assert.rejects(hashPassword('pw', bad), RangeError, JSON.stringify(bad));
  }
  await assert.rejects(hashPassword('x'.repeat(MAX_PASSWORD_CHARS + 1), P), /at most 1024 characters/);
  const longest = await hashPassword('x'.repeat(MAX_PASSWORD_CHARS), P);
  assert.equal(await verifyPassword('x'.repeat(MAX_PASSWORD_CHARS), longest), true);
  assert.equal(await verifyPassword('x'.repeat(MAX_PASSWORD_CHARS + 1), longest), false);
});

test('a malformed or out-of-bounds PHC string is false, never an exception', async () => {
  const good = await hashPassword('pw', P);
  const [, , params, salt, hash] = good.split('$') as [string, string, string, string, string];
  const cases = [
    '',
    'pw',
    good + '$',
    good.replace('$scrypt$', '$argon2id$'),
    `$scrypt$${params}$${salt}`,
    `$scrypt$ln=10,r=8$${salt}$${hash}`,
    `$scrypt$r=8,ln=10,p=1$${salt}$${hash}`,
    `$scrypt$ln=010,r=8,p=1$${salt}$${hash}`,
    `$scrypt$ln=30,r=8,p=1$${salt}$${hash}`, // would need 2^30 × 1 KiB of memory
    `$scrypt$ln=10,r=99,p=1$${salt}$${hash}`,
    `$scrypt$ln=10,r=8,p=99$${salt}$${hash}`,
    `$scrypt$ln=20,r=32,p=1$${salt}$${hash}`, // 4 GiB: over the memory cap, refused without running
    `$scrypt$ln=10,r=8,p=1$${salt}==$${hash}`, // padded
    `$scrypt$ln=10,r=8,p=1$${salt.replace(/\//g, '_').replace(/\+/g, '-')}x$${hash}`,
    `$scrypt$ln=10,r=8,p=1$AAAA$${hash}`, // 3-byte salt
    `$scrypt$ln=10,r=8,p=1$${salt}$AAAA`, // 3-byte hash
    `$scrypt$ln=10,r=8,p=1$${salt}$${'A'.repeat(300)}`, // too long
    `$scrypt$ln=10,r=8,p=1$${salt}$${hash.slice(0, -1)}${hash.endsWith('A') ? 'B' : 'A'}`, // non-canonical or wrong
  ];
  for (const c of cases) assert.equal(await verifyPassword('pw', c), false, c);
  assert.equal(await verifyPassword('pw', null as unknown as string), false);
  assert.equal(await verifyPassword(undefined as unknown as string, good), false);
  assert.equal(await verifyPassword('pw', good), true);
});

test('verifyDummy does a real scrypt of the given cost and returns false', async () => {
  assert.equal(await verifyDummy(P), false);
  await assert.rejects(verifyDummy({ ln: 30, r: 8, p: 1 }), RangeError);
  // That it costs what a real verification costs is by construction (the same derive() call with the
  // same params and sizes); a timing assertion would be a timed test on shared cores, which this
  // project keeps out of the suite (speed is measured in benchmarks).
});

test('needsRehash: other parameters or an unreadable string need a rehash', async () => {
  const phc = await hashPassword('pw', P);
  assert.equal(needsRehash(phc, P), false);
  assert.equal(needsRehash(phc, { ...P, ln: 11 }), true);
  assert.equal(needsRehash(phc, { ...P, r: 4 }), true);
  assert.equal(needsRehash(phc, { ...P, p: 2 }), true);
  assert.equal(needsRehash('garbage', P), true);
  // A readable hash with a non-standard salt size (8 bytes) verifies but is upgraded.
  const salt = Buffer.alloc(8, 7);
  const hash = scryptSync('pw', salt, 32, { N: 1024, r: 8, p: 1 });
  const odd = `$scrypt$ln=10,r=8,p=1$${salt.toString('base64').replace(/=+$/, '')}$${hash.toString('base64').replace(/=+$/, '')}`;
  assert.equal(await verifyPassword('pw', odd), true);
  assert.equal(needsRehash(odd, P), true);
});
